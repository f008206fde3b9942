//! Command dispatch for `prompt-config`. Errors go to stderr with a non-zero exit: 1 for a
//! failed command, 2 for a usage mistake.

/// Prints a line to stdout; a closed pipe (`| head`) ends the program quietly, not in a panic.
macro_rules! say {
    ($($argument:tt)*) => {
        $crate::cli::write_line(format_args!($($argument)*))
    };
}

mod args;
mod complete;
mod demo;
mod resolve;
mod stats;

use std::io::Write;

use std::path::PathBuf;

use args::Args;
use prompt_config::config::{EditOutcome, release_version, rollback_active_version};
use prompt_config::{Engine, EngineOptions};

const USAGE: &str = "\
prompt-config: resolve, call and manage LLM feature configs and prompts

usage:
  prompt-config validate [--config DIR] [--prompts DIR]
  prompt-config resolve FEATURE --user ID [--attr KEY=VALUE]... [--var KEY=VALUE]...
                        [--vars JSON] [--version V] [--json]
  prompt-config complete FEATURE --user ID [--attr KEY=VALUE]... [--var KEY=VALUE]...
                         [--vars JSON] [--version V] [--json] [--mock]
  prompt-config demo [--requests N] [--telemetry FILE]
  prompt-config stats FILE... [--by feature,version,variant,provider,model,ATTRIBUTE]
                      [--since T] [--json]
  prompt-config release FEATURE VERSION [--json]
  prompt-config rollback FEATURE --to VERSION [--json]

--config defaults to $PROMPT_CONFIG_DIR or ./config, --prompts to $PROMPT_PROMPTS_DIR or
./prompts. VALUEs that parse as JSON (numbers, true, [\"a\",\"b\"]) are JSON, others are text.";

/// A failed command: what to print and the exit code.
pub struct Failure {
    message: String,
    code: i32,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: format!("{}\n\n{USAGE}", message.into()),
            code: 2,
        }
    }
}

impl From<prompt_config::Error> for Failure {
    fn from(error: prompt_config::Error) -> Failure {
        Failure {
            message: format!("error [{}]: {error}", error.kind()),
            code: 1,
        }
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure::usage(message)
    }
}

/// Writes one line to stdout, exiting quietly when the reader has gone away.
pub fn write_line(arguments: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = writeln!(stdout, "{arguments}") {
        let code = if error.kind() == std::io::ErrorKind::BrokenPipe {
            0
        } else {
            1
        };
        std::process::exit(code);
    }
}

/// Runs one command line and returns the process exit code.
pub fn run(raw: impl IntoIterator<Item = String>) -> i32 {
    match dispatch(raw) {
        Ok(()) => 0,
        Err(failure) => {
            eprintln!("{}", failure.message);
            failure.code
        }
    }
}

fn dispatch(raw: impl IntoIterator<Item = String>) -> Result<(), Failure> {
    let args = Args::parse(raw)?;
    let Some(command) = args.positional.first() else {
        return Err(Failure::usage("no command given"));
    };
    match command.as_str() {
        "validate" => validate(&args),
        "resolve" => resolve::run(&args),
        "complete" => complete::run(&args),
        "demo" => demo::run(&args),
        "stats" => stats::run(&args),
        "release" => release(&args),
        "rollback" => rollback(&args),
        "help" => {
            say!("{USAGE}");
            Ok(())
        }
        other => Err(Failure::usage(format!("unknown command \"{other}\""))),
    }
}

/// `--config` / `--prompts`, else the environment, else `./config` and `./prompts`.
fn engine_options(args: &Args) -> EngineOptions {
    let pick = |option: &str, variable: &str, default: &str| {
        args.value(option)
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os(variable)
                    .filter(|value| !value.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| PathBuf::from(default))
    };
    let options = EngineOptions::new(
        pick("config", "PROMPT_CONFIG_DIR", "config"),
        pick("prompts", "PROMPT_PROMPTS_DIR", "prompts"),
    );
    match args.value("telemetry") {
        Some(path) => options.with_telemetry(path),
        None => options,
    }
}

fn validate(args: &Args) -> Result<(), Failure> {
    args.allow(&["config", "prompts"], &["json"])?;
    let options = engine_options(args);
    let summary = Engine::validate(&options)?;
    say!(
        "ok: {} feature{}, {} versions, {} running experiment{}, {} rules, {} rollout{}, {} providers (revision {}) in {}",
        summary.features,
        plural(summary.features),
        summary.versions,
        summary.running_experiments,
        plural(summary.running_experiments),
        summary.rules,
        summary.rollouts,
        plural(summary.rollouts),
        summary.providers,
        summary.revision,
        options.config_dir.display(),
    );
    Ok(())
}

fn release(args: &Args) -> Result<(), Failure> {
    args.allow(&["config", "prompts"], &["json"])?;
    let [_, feature, version] = args.positional.as_slice() else {
        return Err(Failure::usage("release needs FEATURE VERSION"));
    };
    print_edit(
        args,
        &release_version(&engine_options(args), feature, version)?,
    );
    Ok(())
}

fn rollback(args: &Args) -> Result<(), Failure> {
    args.allow(&["config", "prompts", "to"], &["json"])?;
    let [_, feature] = args.positional.as_slice() else {
        return Err(Failure::usage("rollback needs FEATURE"));
    };
    let to = args
        .value("to")
        .ok_or_else(|| Failure::usage("rollback needs --to VERSION"))?;
    print_edit(
        args,
        &rollback_active_version(&engine_options(args), feature, to)?,
    );
    Ok(())
}

/// An edit's outcome: its summary (what changed, and for a rollback its reach) or, with
/// `--json`, the same as data.
fn print_edit(args: &Args, outcome: &EditOutcome) {
    if args.flag("json") {
        say!(
            "{}",
            serde_json::to_string_pretty(outcome).unwrap_or_default()
        );
    } else {
        say!("{outcome}");
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}
