//! `prompt-config dataset from-telemetry`: regression cases from recorded production requests
//! (`prompt_config::eval::cases_from_telemetry`), written as dataset JSONL to stdout or
//! `--output`, with a summary of what was read, kept and left out on stderr.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::args::{Dirs, Text};
use super::{Failure, count, engine_options, output};
use prompt_config::eval::{FromTelemetryOptions, TelemetryCases, cases_from_telemetry};
use prompt_config::{Engine, ErrorKind};

/// `prompt-config dataset ...`.
#[derive(Debug, clap::Subcommand)]
pub enum DatasetCommand {
    /// Cases from the recorded requests of a feature (where it opted into
    /// telemetry.record_text), so production failures become regression cases.
    #[command(after_help = "Examples:
  prompt-config dataset from-telemetry prompt_config_telemetry.jsonl --feature career_path_navigator
  prompt-config dataset from-telemetry log.jsonl log.jsonl.1 --feature career_path_navigator \\
    --feedback-below 3 --feedback-metric rating --limit 50 \\
    --output config/evals/career_path_navigator/regressions.jsonl

Each case is one llm.request line of the feature that carries its text and variables: id
telemetry-<request_id>, tags [\"from-telemetry\"], the context (subject id hashed, the recorded
attributes, variables and, when it can be told apart from the template, the history), and
assertions: finish_reason stop, json_schema on the versions with an output schema, and a judge
rubric made from a feedback comment (a text value). --feedback-below keeps requests whose
lowest numeric feedback (booleans 1/0; only --feedback-metric when given) is below X. A
request id seen again (logs given twice, rotated files that overlap) gives no second case.
--output names a new file: an existing one is refused (exit 1, io), never overwritten, and
the file is written whole or not at all. The summary (lines read, kept, left out and why) goes to stderr.")]
    FromTelemetry {
        /// Telemetry files (JSON lines), rotated ones included.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
        /// The feature whose requests become cases.
        #[arg(long, value_name = "FEATURE", value_parser = Text)]
        feature: String,
        /// Only requests whose feedback score is below X.
        #[arg(long, value_name = "X", value_parser = parse_score, allow_hyphen_values = true)]
        feedback_below: Option<f64>,
        /// The feedback metric that scores a request [default: the lowest of any metric].
        #[arg(long, value_name = "METRIC", value_parser = Text, requires = "feedback_below")]
        feedback_metric: Option<String>,
        /// At most N cases, the first in log order.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
        /// Write the cases to this new file instead of stdout (an existing file is refused,
        /// never overwritten).
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        dirs: Dirs,
    },
}

fn parse_score(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(score) if score.is_finite() => Ok(score),
        _ => Err("must be a number (a feedback score, e.g. 3 or 0.5)".to_string()),
    }
}

pub fn run(command: DatasetCommand) -> Result<(), Failure> {
    match command {
        DatasetCommand::FromTelemetry {
            files,
            feature,
            feedback_below,
            feedback_metric,
            limit,
            output,
            dirs,
        } => {
            if let Some(path) = &output {
                refuse_existing(path)?;
            }
            let engine = Engine::open(engine_options(&dirs))?;
            let mut options = FromTelemetryOptions::new(feature);
            if let Some(score) = feedback_below {
                options = options.feedback_below(score);
            }
            if let Some(metric) = feedback_metric {
                options = options.metric(metric);
            }
            if let Some(limit) = limit {
                options = options.limit(usize::try_from(limit).unwrap_or(usize::MAX));
            }
            let built = cases_from_telemetry(&engine.snapshot(), &files, &options)?;
            write_cases(&built, output.as_ref())?;
            output::write_error(&summary_line(&built, output.as_ref()));
            Ok(())
        }
    }
}

/// `--output` names a file that already exists: refused before any log is read (exit 1, kind
/// `io`: the file system, not the command line, is in the way), since a dataset is edited by
/// hand and a second run must not wipe the regressions the first one wrote.
fn refuse_existing(path: &Path) -> Result<(), Failure> {
    match std::fs::symlink_metadata(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        _ => Err(Failure::failed(
            ErrorKind::Io,
            format!(
                "--output {}: the file exists, and a dataset is never overwritten; nothing was \
                 written (name a new file, or move this one away first)",
                path.display()
            ),
            json!({"path": path.to_string_lossy()}),
        )),
    }
}

/// The cases as JSONL, to `path` or stdout. A file is written whole to a temporary file beside
/// it and renamed into place, so a failure (a full disk) leaves no half-written dataset.
fn write_cases(built: &TelemetryCases, path: Option<&PathBuf>) -> Result<(), Failure> {
    let lines: String = built
        .cases
        .iter()
        .map(|case| serde_json::to_string(case).unwrap_or_default() + "\n")
        .collect();
    let Some(path) = path else {
        output::write_text(&lines);
        return Ok(());
    };
    // Again at the end: the file may have appeared while the logs were read.
    refuse_existing(path)?;
    write_new_file(path, lines.as_bytes()).map_err(|error| {
        Failure::failed(
            ErrorKind::Io,
            format!(
                "--output {}: cannot write the file: {error}",
                path.display()
            ),
            json!({"path": path.to_string_lossy()}),
        )
    })
}

/// Writes `bytes` to `.<name>.<pid>.tmp` beside `path`, syncs it and renames it to `path`; the
/// temporary file is removed when any step fails.
fn write_new_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or_else(|| OsStr::new("dataset"));
    let mut temporary_name = OsString::from(".");
    temporary_name.push(name);
    temporary_name.push(format!(".{}.tmp", std::process::id()));
    let temporary = directory.join(temporary_name);
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

fn summary_line(built: &TelemetryCases, path: Option<&PathBuf>) -> String {
    let summary = &built.summary;
    let mut text = format!(
        "{} read ({} unreadable), {} of the feature: {} kept{}",
        count(summary.lines_read as usize, "line"),
        summary.lines_skipped,
        count(summary.requests as usize, "request"),
        summary.kept,
        path.map(|path| format!(" in {}", path.display()))
            .unwrap_or_default(),
    );
    for (number, why) in [
        (summary.evaluation, "made by an evaluation run"),
        (summary.no_text, "without recorded text (record_text off)"),
        (summary.no_variables, "without recorded variables"),
        (summary.feedback_not_below, "not below --feedback-below"),
        (summary.over_limit, "over --limit"),
        (
            summary.repeated,
            "as repeats of an earlier request id (overlapping logs)",
        ),
    ] {
        if number > 0 {
            text.push_str(&format!(", {number} left out {why}"));
        }
    }
    if summary.history_left_out > 0 {
        text.push_str(&format!(
            "; {} kept without their history (the version is gone or renders differently)",
            count(summary.history_left_out as usize, "case")
        ));
    }
    text
}
