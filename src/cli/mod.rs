//! Command dispatch for `prompt-config`. Exit codes: 0 ok, 1 the command failed, 2 a usage
//! mistake. Errors go to stderr as `error [kind]: message`, or with `--json` to stdout as
//! `{"error": {"kind", "message", "details"}}`, so a program reading stdout always gets JSON.
//! Nothing here panics on any argv, environment or closed output stream.

/// Prints a line to stdout; a closed pipe or full disk never panics (see [`output`]).
macro_rules! say {
    ($($argument:tt)*) => {
        $crate::cli::output::write_line(format_args!($($argument)*))
    };
}

mod alerts;
mod args;
mod cache;
mod complete;
mod dataset;
mod demo;
mod edit;
mod eval;
#[cfg(unix)]
mod interrupt;
mod load;
mod otlp;
mod output;
#[cfg(all(test, unix))]
mod properties;
mod resolve;
mod stats;
mod stream;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{CommandFactory, Parser};
use serde_json::Value;

use args::{Cli, Command, Dirs};
use prompt_config::{EngineOptions, ErrorKind};

/// A failed command: its error kind, message, structured details and exit code.
#[derive(Debug)]
pub struct Failure {
    /// The library's `Error::kind()`, or `InvalidArgument` / `Io` for the CLI's own checks.
    kind: ErrorKind,
    message: String,
    /// Boxed: `Value` is large and every command returns `Result<_, Failure>`.
    details: Box<Value>,
    code: i32,
    /// With `--json`, print the error as one compact line (`complete --stream --json` writes
    /// JSON Lines), not as pretty JSON.
    json_line: bool,
    /// With `--json`, print nothing more: the command already printed its JSON (a failed
    /// evaluation's report says `"passed": false` itself), so stdout stays one document.
    json_printed: bool,
}

impl Failure {
    /// A value the parser accepted but the command cannot use (bad JSON in `--vars`, an unknown
    /// `--by` dimension): exit 2, kind `invalid_argument`, naming the argument.
    fn invalid_argument(message: impl Into<String>) -> Failure {
        Failure {
            kind: ErrorKind::InvalidArgument,
            message: message.into(),
            details: Box::new(Value::Null),
            code: 2,
            json_line: false,
            json_printed: false,
        }
    }

    /// A failed operation (exit 1) of the given kind.
    fn failed(kind: ErrorKind, message: impl Into<String>, details: Value) -> Failure {
        Failure {
            kind,
            message: message.into(),
            details: Box::new(details),
            code: 1,
            json_line: false,
            json_printed: false,
        }
    }

    fn with_details(mut self, details: Value) -> Failure {
        self.details = Box::new(details);
        self
    }

    /// The same failure, not printed again with `--json`: the command's JSON already says it.
    fn reported_in_json(mut self) -> Failure {
        self.json_printed = true;
        self
    }

    /// The same failure, printed with `--json` as one JSON Lines record.
    fn printed_as_json_line(mut self) -> Failure {
        self.json_line = true;
        self
    }
}

impl From<prompt_config::Error> for Failure {
    fn from(error: prompt_config::Error) -> Failure {
        Failure {
            kind: error.kind(),
            message: error.to_string(),
            details: Box::new(error.details()),
            code: 1,
            json_line: false,
            json_printed: false,
        }
    }
}

/// Runs one command line (without the program name) and returns the process exit code.
pub fn run(raw: impl IntoIterator<Item = OsString>) -> i32 {
    let raw: Vec<OsString> = raw.into_iter().collect();
    let json = raw.iter().any(|word| word == "--json");
    // `--stream --json` writes JSON Lines: even a usage error is one line.
    let json_line = json && raw.iter().any(|word| word == "--stream");
    let program = std::iter::once(OsString::from("prompt-config"));
    let code = match Cli::try_parse_from(program.chain(raw)) {
        Ok(cli) => match configure_otlp(&cli).and_then(|()| dispatch(cli.command)) {
            Ok(()) => 0,
            Err(failure) => report(&failure, json),
        },
        Err(error) => parse_failure(&error, json, json_line),
    };
    output::final_code(code)
}

/// Help and version go to stdout with exit 0; real parse errors are usage mistakes (exit 2).
fn parse_failure(error: &clap::Error, json: bool, json_line: bool) -> i32 {
    let code = error.exit_code();
    let text = error.render().to_string();
    if !error.use_stderr() {
        say!("{}", text.trim_end());
    } else if json {
        // The first paragraph is the error; the rest is the usage line and the help hint.
        let first = text.split("\n\n").next().unwrap_or_default();
        let message = first
            .trim_start_matches("error: ")
            .lines()
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ");
        let details = serde_json::json!({"usage": text});
        let error = output::error_json("usage", &message, &details);
        if json_line {
            output::print_json_line(&error);
        } else {
            output::print_json(&error);
        }
    } else {
        output::write_error(&text);
    }
    code
}

fn report(failure: &Failure, json: bool) -> i32 {
    if json && failure.json_printed {
        return failure.code;
    }
    if json {
        let error = output::error_json(failure.kind.as_str(), &failure.message, &failure.details);
        if failure.json_line {
            output::print_json_line(&error);
        } else {
            output::print_json(&error);
        }
    } else if failure.code == 2 {
        output::write_error(&format!(
            "error [{}]: {}\n\nFor more information, try '--help'.",
            failure.kind, failure.message
        ));
    } else {
        output::write_error(&format!("error [{}]: {}", failure.kind, failure.message));
    }
    failure.code
}

/// Reads the `OTEL_*` variables and `--otlp-*` flags for every command that opens an engine
/// (all but `validate`, `alerts test`, `stats` and `completions`, which check files, send a
/// test alert, read a log or print a script, and export nothing).
fn configure_otlp(cli: &Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Stats { .. }
        | Command::Completions { .. }
        | Command::Validate { .. }
        | Command::Alerts(_) => Ok(()),
        _ => otlp::configure(cli.otlp_endpoint.as_deref(), cli.otlp_protocol.as_deref()),
    }
}

fn dispatch(command: Command) -> Result<(), Failure> {
    match command {
        Command::Validate { dirs, json } => edit::validate(&dirs, json),
        Command::Resolve(request) => resolve::run(&request),
        Command::Complete {
            request,
            mock,
            stream: false,
            messages,
        } => complete::run(&request, mock, messages.as_deref()),
        Command::Complete {
            request,
            mock,
            stream: true,
            messages,
        } => stream::run(&request, mock, messages.as_deref()),
        Command::Load(load) => load::run(&load),
        Command::Demo {
            dirs,
            requests,
            telemetry,
        } => demo::run(&dirs, requests, telemetry),
        Command::Stats {
            files,
            by,
            since,
            json,
        } => stats::run(&files, &by, since.as_deref(), json),
        Command::Eval(args) => eval::run(&args),
        Command::Dataset(command) => dataset::run(command),
        Command::Release {
            feature,
            version,
            require_eval,
            repeat,
            mock,
            dirs,
            json,
        } => match require_eval {
            None => edit::release(&dirs, &feature, &version, json),
            Some(dataset) => edit::release_after_eval(
                &dirs,
                &feature,
                &version,
                dataset.as_deref(),
                repeat,
                mock,
                json,
            ),
        },
        Command::Rollback {
            feature,
            to,
            stray,
            dirs,
            json,
        } => match (to, stray) {
            (Some(to), None) => edit::rollback(&dirs, &feature, &to, json),
            (None, Some(version)) => Err(Failure::invalid_argument(format!(
                "--to <VERSION> is required: prompt-config rollback {feature} --to {version}"
            ))),
            (_, stray) => Err(Failure::invalid_argument(format!(
                "unexpected argument '{}': rollback takes FEATURE --to VERSION",
                stray.unwrap_or_default()
            ))),
        },
        Command::Cache(command) => cache::run(command),
        Command::Alerts(command) => alerts::run(command),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "prompt-config", &mut script);
            say!("{}", String::from_utf8_lossy(&script).trim_end());
            Ok(())
        }
    }
}

/// `--config` / `--prompts`, else the environment, else `./config` and `./prompts`; OTLP export
/// as the `OTEL_*` variables and `--otlp-*` flags say.
fn engine_options(dirs: &Dirs) -> EngineOptions {
    let pick = |given: &Option<PathBuf>, variable: &str, default: &str| {
        given
            .clone()
            .or_else(|| {
                std::env::var_os(variable)
                    .filter(|value| !value.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| PathBuf::from(default))
    };
    otlp::with_otlp(EngineOptions::new(
        pick(&dirs.config, "PROMPT_CONFIG_DIR", "config"),
        pick(&dirs.prompts, "PROMPT_PROMPTS_DIR", "prompts"),
    ))
}

/// `"1 rule"`, `"2 rules"`.
fn count(number: usize, noun: &str) -> String {
    if number == 1 {
        format!("{number} {noun}")
    } else {
        format!("{number} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn counts_are_singular_for_one_only() {
        assert_eq!(count(0, "rule"), "0 rules");
        assert_eq!(count(1, "rule"), "1 rule");
        assert_eq!(count(2, "rule"), "2 rules");
    }
}
