//! `prompt-config stats`: reads telemetry files and prints figures per group and experiment
//! verdicts, as aligned tables for people or as JSON.

use std::path::PathBuf;

use super::Failure;
use super::args::Args;
use prompt_config::telemetry::stats::{DEFAULT_BY, StatsError, StatsOptions, analyze, parse_since};

/// Runs `stats FILE... [--by DIMENSION,...] [--since T] [--json]`.
pub fn run(args: &Args) -> Result<(), Failure> {
    args.allow(&["by", "since"], &["json"])?;
    let paths: Vec<PathBuf> = args.positional.iter().skip(1).map(PathBuf::from).collect();
    if paths.is_empty() {
        return Err(Failure::usage("stats needs at least one telemetry FILE"));
    }
    let options = StatsOptions {
        by: dimensions(args.values("by"))?,
        since: args
            .value("since")
            .map(parse_since)
            .transpose()
            .map_err(|error| Failure::usage(error.to_string()))?,
    };
    let report = analyze(&paths, &options).map_err(|error| match error {
        StatsError::Read { .. } => Failure {
            message: format!("error [io]: {error}"),
            code: 1,
        },
        StatsError::InvalidSince(_) => Failure::usage(error.to_string()),
    })?;
    if args.flag("json") {
        say!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        say!("{}", report.to_string().trim_end());
    }
    Ok(())
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
        return Err(Failure::usage("--by needs at least one dimension"));
    }
    Ok(names)
}
