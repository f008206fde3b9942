//! `stats`: reads telemetry logs back for analysis. It takes any number of files (several
//! processes, rotated files), skips and counts lines it cannot parse (a partial last line after
//! a crash, garbage), keeps `llm.request` events and the `feedback` events joined to them by
//! `request_id`, cuts them by the `--by` dimensions (requests, errors, latency percentiles,
//! tokens, cost, feedback means per group) and compares every variant of each running experiment
//! with its control, with p-values and a plain-language verdict. Structured output (invalid-output
//! rate and repairs) is read from the request lines per group and from the `llm.attempt` lines
//! per model. `eval.run` lines (issue 14) are reported apart: the latest evaluation of each
//! feature and version.

mod cache;
mod compare;
mod evaluations;
mod group;
mod output;
mod read;
mod report;
mod streams;
internal_mod!(significance);
#[cfg(test)]
mod tests;
mod text;

use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};

pub use cache::CacheStats;
pub use evaluations::EvaluationStats;
pub use output::{OutputGroupStats, OutputStats};
pub use report::{
    ExperimentComparison, FeedbackStats, FileSummary, GroupStats, LatencyPercentiles,
    MetricComparison, StatisticalTest, StatsReport, VariantComparison, VariantSummary,
};
pub use streams::{StreamGroupStats, TimeToFirstChunk};

/// The dimensions results are cut by when `--by` is not given.
pub const DEFAULT_BY: &[&str] = &["feature", "version", "variant"];

/// The `--by` names that read a field of the line; any other name reads that key of
/// `prompt_config.attributes`.
pub const DIMENSIONS: &[(&str, &str)] = &[
    ("feature", "gen_ai.prompt.name"),
    ("version", "gen_ai.prompt.version"),
    ("variant", "prompt_config.variant"),
    ("experiment", "prompt_config.experiment"),
    ("provider", "gen_ai.provider.name"),
    ("model", "gen_ai.request.model"),
    ("source", "prompt_config.source"),
    ("cache_partition", "prompt_config.cache.partition"),
];

/// What to analyze and how to cut it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StatsOptions {
    /// Dimensions to group by, in order: names from [`DIMENSIONS`] or attribute names.
    pub by: Vec<String>,
    /// Events older than this are left out.
    pub since: Option<DateTime<Utc>>,
}

impl Default for StatsOptions {
    fn default() -> StatsOptions {
        StatsOptions {
            by: DEFAULT_BY.iter().map(|name| name.to_string()).collect(),
            since: None,
        }
    }
}

impl StatsOptions {
    /// Groups by `by`, in order: names from [`DIMENSIONS`] or attribute names.
    pub fn with_by(mut self, by: Vec<String>) -> Self {
        self.by = by;
        self
    }

    /// Leaves out events older than `since` (`None`: keep every event).
    pub fn with_since(mut self, since: Option<DateTime<Utc>>) -> Self {
        self.since = since;
        self
    }
}

/// Why an analysis could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatsError {
    /// A telemetry file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        source: std::io::Error,
    },
    /// `--since` was neither an RFC 3339 timestamp nor a date.
    #[error("--since expects an RFC 3339 timestamp or a date like 2026-11-27, got \"{0}\"")]
    InvalidSince(String),
    /// A `--by` name that is neither a dimension nor an attribute any request in the files
    /// carries (a typo would otherwise print a column of `-`).
    #[error(
        "--by \"{name}\" is not a dimension ({}) nor an attribute of any request in the files",
        known.join(", ")
    )]
    UnknownDimension {
        /// The name given.
        name: String,
        /// The dimensions that always exist.
        known: Vec<String>,
    },
}

/// Parses `--since`: an RFC 3339 timestamp, or a date meaning its midnight UTC.
pub fn parse_since(text: &str) -> Result<DateTime<Utc>, StatsError> {
    if let Ok(timestamp) = DateTime::parse_from_rfc3339(text) {
        return Ok(timestamp.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|midnight| midnight.and_utc())
        .ok_or_else(|| StatsError::InvalidSince(text.to_string()))
}

/// Fails on an attribute dimension that no request carries, when there are requests at all.
fn check_dimensions(telemetry: &read::Telemetry, by: &[String]) -> Result<(), StatsError> {
    if telemetry.requests.is_empty() {
        return Ok(());
    }
    for (index, name) in by.iter().enumerate() {
        let known = DIMENSIONS.iter().any(|(dimension, _)| dimension == name);
        let carried = telemetry.requests.iter().any(|request| {
            request
                .key
                .get(index)
                .is_some_and(|value| value != read::MISSING)
        });
        if !known && !carried {
            return Err(StatsError::UnknownDimension {
                name: name.clone(),
                known: DIMENSIONS
                    .iter()
                    .map(|(dimension, _)| dimension.to_string())
                    .collect(),
            });
        }
    }
    Ok(())
}

/// Reads `paths` and reports per group and per experiment.
pub fn analyze(paths: &[PathBuf], options: &StatsOptions) -> Result<StatsReport, StatsError> {
    let telemetry = read::read_files(paths, &options.by)?;
    check_dimensions(&telemetry, &options.by)?;
    let files = telemetry.files.clone();
    let evaluation_requests = telemetry.evaluation_requests;
    let selection = read::select(telemetry, options.since);
    Ok(StatsReport {
        lines_read: files.iter().map(|file| file.lines_read).sum(),
        lines_skipped: files.iter().map(|file| file.lines_skipped).sum(),
        files,
        by: options.by.clone(),
        since: options.since,
        requests: selection.requests.len() as u64,
        evaluation_requests,
        feedback_events: selection.feedback.len() as u64,
        feedback_unmatched: selection.feedback_unmatched,
        dropped_before_since: selection.dropped_before_since,
        groups: group::summarize(&selection, &options.by),
        experiments: compare::compare_experiments(&selection),
        cache: cache::summarize(&selection),
        output: output::summarize(&selection),
        evaluations: evaluations::summarize(&selection),
    })
}
