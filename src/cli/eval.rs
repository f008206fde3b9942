//! `prompt-config eval`: runs a feature's datasets against its versions
//! ([`Engine::evaluate_with_progress`]) and prints the report for people (a table of cases per
//! version, the version's figures, the comparisons), as JSON (`--json`), and as JUnit XML
//! (`--junit FILE`); the exit code is 0 only when every version met its thresholds. Also the
//! evaluation gate of `release --require-eval` and the datasets both commands load.
//!
//! Progress goes to stderr only (stdout carries the report): a bar rewritten in place on a
//! terminal, a plain line per tenth of the runs otherwise. A small line of our own does what
//! is needed; a progress-bar crate would add a dependency for one line.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use clap::builder::TypedValueParser;

use super::args::{Dirs, Text};
use super::{Failure, count, engine_options, output};
use prompt_config::eval::{CaseReport, Dataset, EvalOptions, EvalReport, Progress, VersionReport};
use prompt_config::{Engine, EngineOptions, ErrorKind};

/// The most runs per case and version `--repeat` accepts.
const MAX_REPEAT: u32 = 10_000;
/// The most runs in flight `--concurrency` accepts.
const MAX_CONCURRENCY: usize = 256;
/// The widest case-id column of the text report; longer ids are cut with `…`.
const ID_COLUMN: usize = 44;

/// The arguments of `prompt-config eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// The feature to evaluate.
    #[arg(value_parser = Text)]
    pub feature: String,
    /// A dataset file (JSONL, one case per line), repeatable [default: every
    /// config/evals/FEATURE/*.jsonl].
    #[arg(long = "dataset", value_name = "FILE.jsonl")]
    pub datasets: Vec<PathBuf>,
    /// The versions to run, comma-separated or repeated (drafts included); the first is the
    /// baseline the others are compared with [default: the active version].
    /// Each item is trimmed (`2.0.0, 2.2.0`); an empty one is a usage error.
    #[arg(long, value_name = "VERSION,...", value_parser = Text.try_map(version_item), value_delimiter = ',')]
    pub versions: Vec<String>,
    /// Runs per case and version (1-10000); a case passes when enough of them pass.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = parse_repeat)]
    pub repeat: u32,
    /// Route every provider to the mock provider (no key, no network; judge verdicts are
    /// skipped).
    #[arg(long)]
    pub mock: bool,
    /// A model of providers.json replacing every version's chain (provider/name).
    #[arg(long, value_name = "PROVIDER/NAME", value_parser = parse_model)]
    pub model: Option<String>,
    /// Runs in flight at once (1-256).
    #[arg(long, value_name = "C", default_value_t = 4, value_parser = parse_concurrency)]
    pub concurrency: usize,
    /// The share of repeats a case needs when it sets none (0..1) [default: 1, or 0.8 for a
    /// case with a judge assertion].
    #[arg(long, value_name = "X", value_parser = parse_rate)]
    pub pass_rate: Option<f64>,
    /// The share of cases each version must pass (0..1).
    #[arg(long, value_name = "X", default_value_t = 1.0, value_parser = parse_rate)]
    pub min_pass_rate: f64,
    /// Write the report as JUnit XML to this file (one testsuite per version, one testcase
    /// per case).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Append the calls' telemetry (and the eval.case / eval.run events) to this JSONL file.
    #[arg(long, value_name = "FILE")]
    pub telemetry: Option<PathBuf>,
    #[command(flatten)]
    pub dirs: Dirs,
}

pub fn parse_repeat(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(repeat) if (1..=MAX_REPEAT).contains(&repeat) => Ok(repeat),
        _ => Err(format!(
            "must be a whole number of runs from 1 to {MAX_REPEAT}"
        )),
    }
}

/// One item of `--versions`, trimmed; an empty item (`--versions ,`, `2.0.0,,2.2.0`) is a
/// usage mistake, not a version named "".
fn version_item(text: String) -> Result<String, String> {
    let version = text.trim();
    if version.is_empty() {
        return Err("an empty version: write the versions comma-separated (2.0.0,2.2.0)".into());
    }
    Ok(version.to_string())
}

/// `provider/name`, both parts non-empty (whether providers.json lists it is checked when the
/// configuration is loaded: `unknown_model`).
fn parse_model(text: &str) -> Result<String, String> {
    match text.split_once('/') {
        Some((provider, name)) if !provider.is_empty() && !name.is_empty() => Ok(text.to_string()),
        _ => Err("must be written provider/name, as in providers.json (openai/gpt-4o)".into()),
    }
}

fn parse_concurrency(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(runs) if (1..=MAX_CONCURRENCY).contains(&runs) => Ok(runs),
        _ => Err(format!(
            "must be a whole number of runs in flight from 1 to {MAX_CONCURRENCY}"
        )),
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err("must be a share from 0 to 1 (0.8 for 80%)".to_string()),
    }
}

/// Runs `eval`: exit 0 when the report passed, 1 when it did not (the report is printed
/// either way).
pub fn run(args: &EvalArgs) -> Result<(), Failure> {
    let mut options = engine_options(&args.dirs).with_mock(args.mock);
    if let Some(path) = &args.telemetry {
        options = options.with_telemetry(path);
    }
    let engine = Engine::open(options.clone())?;
    // An unknown feature is said as such, not as a missing dataset folder.
    super::cache::known_feature(&engine.snapshot().feature_names(), &args.feature)?;
    let dataset = load_dataset(&options, &args.feature, &args.datasets)?;
    let mut eval = EvalOptions::default()
        .versions(args.versions.iter().cloned())
        .repeat(args.repeat)
        .concurrency(args.concurrency)
        .min_pass_rate(args.min_pass_rate);
    if let Some(model) = &args.model {
        eval = eval.model(model.clone());
    }
    if let Some(rate) = args.pass_rate {
        eval = eval.case_pass_rate(rate);
    }
    // Opened before any case runs: a path that cannot be written costs nothing, rather than
    // an evaluation already paid for.
    let junit = args.junit.as_deref().map(JunitFile::open).transpose()?;
    let report = match evaluate(&engine, &args.feature, &dataset, &eval) {
        Ok(report) => report,
        Err(failure) => {
            if let Some(junit) = junit {
                junit.abandon();
            }
            return Err(failure);
        }
    };
    if let Some(junit) = junit {
        junit.write(&report)?;
    }
    if args.json {
        output::print_json(&report);
    } else {
        for line in report_lines(&report) {
            say!("{line}");
        }
    }
    if report.passed {
        return Ok(());
    }
    let failed = report.failed_cases();
    Err(Failure::failed(
        ErrorKind::EvaluationFailed,
        format!(
            "{} did not meet its thresholds ({} failing: {})",
            args.feature,
            count(failed.len(), "case"),
            failed.join(", ")
        ),
        serde_json::json!({"failed_cases": failed}),
    )
    .reported_in_json())
}

/// The dataset of `files`, or of every `config/evals/<feature>/*.jsonl` when none is given
/// (none there is `invalid_dataset`, naming the folder).
pub fn load_dataset(
    options: &EngineOptions,
    feature: &str,
    files: &[PathBuf],
) -> Result<Dataset, Failure> {
    let files = if files.is_empty() {
        Dataset::feature_files(&options.paths.config_dir, feature)?
    } else {
        files.to_vec()
    };
    Ok(Dataset::load_all(&files)?)
}

/// Runs the evaluation with progress on stderr.
pub fn evaluate(
    engine: &Engine,
    feature: &str,
    dataset: &Dataset,
    options: &EvalOptions,
) -> Result<EvalReport, Failure> {
    let bar = ProgressLine::new();
    let report =
        engine.evaluate_with_progress(feature, dataset, options, &|progress| bar.show(progress));
    bar.finish();
    Ok(report?)
}

/// The `--junit` file, opened for writing before the evaluation runs and written whole after
/// it. Opened without truncating, so a run that stops before its report leaves an existing
/// file as it was; a file this run created is removed then.
struct JunitFile {
    path: PathBuf,
    file: std::fs::File,
    created: bool,
}

impl JunitFile {
    fn open(path: &Path) -> Result<JunitFile, Failure> {
        let created = std::fs::symlink_metadata(path).is_err();
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map(|file| JunitFile {
                path: path.to_path_buf(),
                file,
                created,
            })
            .map_err(|error| junit_failure(path, &error))
    }

    /// Replaces the file's content with the report.
    fn write(mut self, report: &EvalReport) -> Result<(), Failure> {
        use std::io::Seek;
        let xml = report.to_junit();
        self.file
            .set_len(0)
            .and_then(|()| self.file.rewind())
            .and_then(|()| self.file.write_all(xml.as_bytes()))
            .and_then(|()| self.file.flush())
            .map_err(|error| junit_failure(&self.path, &error))
    }

    /// No report: the file this run created goes away (an empty file is not a JUnit report).
    fn abandon(self) {
        if self.created {
            drop(self.file);
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn junit_failure(path: &Path, error: &std::io::Error) -> Failure {
    Failure::failed(
        ErrorKind::Io,
        format!("--junit {}: cannot write the file: {error}", path.display()),
        serde_json::json!({"path": path.to_string_lossy()}),
    )
}

/// A progress bar on stderr when it is a terminal; otherwise a plain line per tenth of the
/// runs, so a CI log shows the run advancing without a line per run.
struct ProgressLine {
    terminal: bool,
    /// The highest tenth shown, and whether anything was; under a lock, so lines from the
    /// runs' threads never go backwards.
    shown: Mutex<Option<usize>>,
}

impl ProgressLine {
    fn new() -> ProgressLine {
        ProgressLine {
            terminal: std::io::stderr().is_terminal(),
            shown: Mutex::new(None),
        }
    }

    fn show(&self, progress: Progress) {
        let total = progress.total.max(1);
        let step = if self.terminal {
            // A bar cell each: redrawn in place, so more steps cost nothing.
            progress.completed * 30 / total
        } else {
            progress.completed * 10 / total
        };
        let mut shown = self.shown.lock();
        if shown.is_some_and(|last| last >= step) {
            return;
        }
        *shown = Some(step);
        let filled = progress.completed * 30 / total;
        let bar = format!("{}{}", "#".repeat(filled), ".".repeat(30 - filled.min(30)));
        let text = format!(
            "eval [{bar}] {}/{} runs ({} failed)",
            progress.completed, progress.total, progress.failed
        );
        let mut stderr = std::io::stderr().lock();
        // Progress is a courtesy: a closed stderr must not stop the run.
        let _ = if self.terminal {
            write!(stderr, "\r{text}\x1b[K")
        } else {
            writeln!(stderr, "{text}")
        };
        let _ = stderr.flush();
    }

    fn finish(&self) {
        if self.terminal && self.shown.lock().is_some() {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// The text report: a heading, per version its cases and figures, then the comparisons and
/// the result.
pub fn report_lines(report: &EvalReport) -> Vec<String> {
    let mut lines = vec![format!(
        "{} on dataset {}: {} per case and version, concurrency {}{}{} in {:.1} s",
        report.feature,
        report.dataset,
        count(report.repeat as usize, "run"),
        report.concurrency,
        report
            .model
            .as_deref()
            .map(|model| format!(", model {model}"))
            .unwrap_or_default(),
        if report.mock { ", mock providers" } else { "" },
        report.duration_ms / 1000.0,
    )];
    for version in &report.versions {
        lines.push(String::new());
        lines.extend(version_lines(version, report.min_pass_rate));
    }
    if !report.comparisons.is_empty() {
        lines.push(String::new());
        lines.push("comparisons (McNemar on the cases, alpha 0.05):".to_string());
        for comparison in &report.comparisons {
            // The summary names both versions, the difference, p and the verdict.
            lines.push(format!("  {}", comparison.summary));
        }
    }
    lines.push(String::new());
    let failed = report.failed_cases();
    lines.push(if report.passed {
        format!("result: passed ({} of {})", report.feature, report.dataset)
    } else {
        format!(
            "result: FAILED ({} failing: {})",
            count(failed.len(), "case"),
            failed.join(", ")
        )
    });
    lines
}

fn version_lines(version: &VersionReport, min_pass_rate: f64) -> Vec<String> {
    let width = version
        .cases
        .iter()
        .map(|case| case.id.chars().count())
        .max()
        .unwrap_or(4)
        .clamp(4, ID_COLUMN);
    let mut lines = vec![
        format!(
            "version {}: {} ({} of {} cases)",
            version.version,
            if version.passed { "passed" } else { "FAILED" },
            version.cases_passed,
            version.cases_total
        ),
        format!(
            "        {:<width$}  {:>15}  {:>8}  score",
            "case", "runs passed", "needed"
        ),
    ];
    for case in &version.cases {
        lines.push(case_line(case, width));
        if !case.passed {
            for reason in case.failure_reasons() {
                lines.extend(reason_lines(&reason, "         "));
            }
        }
    }
    lines.push(format!(
        "  pass rate {} (needs {}), mean score {}, cost ${:.6}{}, latency p50 {:.0} ms p95 {:.0} \
         ms, invalid output {}, {}",
        percent(version.pass_rate),
        percent(min_pass_rate),
        version
            .mean_score
            .map_or_else(|| "-".to_string(), |score| format!("{score:.2}")),
        version.cost_usd,
        if version.judge_cost_usd > 0.0 {
            format!(" (+ judge ${:.6})", version.judge_cost_usd)
        } else {
            String::new()
        },
        version.latency_ms.p50,
        version.latency_ms.p95,
        percent(version.invalid_output_rate),
        count(version.errors, "call error"),
    ));
    if version.skipped_assertions > 0 {
        lines.push(format!(
            "  {} skipped (judge verdicts are not graded on the mock)",
            count(version.skipped_assertions, "assertion grade")
        ));
    }
    lines
}

/// A failure reason as lines starting with `indent`: a call error's later lines (its attempts,
/// themselves indented) stay under the reason, and so under their case, not at the version's
/// column.
pub fn reason_lines(reason: &str, indent: &str) -> Vec<String> {
    reason
        .lines()
        .map(|line| format!("{indent}{line}"))
        .collect()
}

fn case_line(case: &CaseReport, width: usize) -> String {
    let id: String = if case.id.chars().count() > width {
        case.id.chars().take(width - 1).chain(['…']).collect()
    } else {
        case.id.clone()
    };
    // Control characters in an id would garble the terminal: show them escaped.
    let id: String = id.chars().flat_map(char::escape_debug).collect::<String>();
    format!(
        "  {}  {id:<width$}  {:>15}  {:>8}  {}",
        if case.passed { "ok  " } else { "FAIL" },
        format!(
            "{}/{} {}",
            case.passes,
            case.runs.len(),
            percent(case.pass_rate)
        ),
        percent(case.required_pass_rate),
        case.mean_score
            .map_or_else(|| "-".to_string(), |score| format!("{score:.2}")),
    )
}

/// `0.9` as `90%`, `0.955` as `95.5%`.
fn percent(share: f64) -> String {
    let text = format!("{:.1}", share * 100.0);
    format!("{}%", text.trim_end_matches(".0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multi_line_reason_keeps_its_later_lines_under_the_case() {
        let reason = "run 1: error [rate_limited]: rate limited by anthropic, openai\n  attempt \
                      1 openai/gpt-4o-mini: 429\n  attempt 2 anthropic/claude: 429";
        assert_eq!(
            reason_lines(reason, "         "),
            [
                "         run 1: error [rate_limited]: rate limited by anthropic, openai",
                "           attempt 1 openai/gpt-4o-mini: 429",
                "           attempt 2 anthropic/claude: 429",
            ]
        );
    }
}
