//! `prompt-config stats`: reads telemetry files and prints figures per group and experiment
//! verdicts, as aligned tables for people or as JSON.

use std::path::PathBuf;

use serde_json::json;

use super::{Failure, output};
use prompt_config::telemetry::stats::{DEFAULT_BY, StatsError, StatsOptions, analyze, parse_since};

/// Runs `stats FILE... [--by DIMENSION,...] [--since T] [--json]`.
pub fn run(
    files: &[PathBuf],
    by: &[String],
    since: Option<&str>,
    json: bool,
) -> Result<(), Failure> {
    let options = StatsOptions::default()
        .with_by(dimensions(by)?)
        .with_since(since.map(parse_since).transpose().map_err(failure)?);
    let report = analyze(files, &options).map_err(failure)?;
    if json {
        output::print_json(&report);
    } else {
        say!("{}", report.to_string().trim_end());
    }
    Ok(())
}

/// The same kinds as the library's errors: `io` for a file, `invalid_argument` for an option.
fn failure(error: StatsError) -> Failure {
    match &error {
        StatsError::Read { path, .. } => Failure::failed(
            prompt_config::ErrorKind::Io,
            error.to_string(),
            json!({"path": path.display().to_string()}),
        ),
        StatsError::InvalidSince(value) => Failure::invalid_argument(error.to_string())
            .with_details(json!({"argument": "--since", "value": value})),
        StatsError::UnknownDimension { name, known } => {
            Failure::invalid_argument(error.to_string())
                .with_details(json!({"argument": "--by", "value": name, "known": known}))
        }
        // `StatsError` is `#[non_exhaustive]`; every kind it has today is matched above.
        _ => Failure::invalid_argument(error.to_string()),
    }
}

/// `--by` values, comma-separated and repeatable, else the default dimensions.
fn dimensions(values: &[String]) -> Result<Vec<String>, Failure> {
    if values.is_empty() {
        return Ok(DEFAULT_BY.iter().map(|name| name.to_string()).collect());
    }
    let names: Vec<String> = values
        .iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect();
    if names.is_empty() {
        return Err(Failure::invalid_argument(
            "--by needs at least one dimension",
        ));
    }
    Ok(names)
}
