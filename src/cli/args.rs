//! The command line's grammar, declared with `clap` (derive): every command and option, their
//! help text with examples, and the checks that make a mistake a usage error (exit 2) naming
//! the argument at fault. Paths are taken as `OsString`/`PathBuf`, so any path the operating
//! system allows works; text values must be UTF-8 and say which argument is not.

use std::ffi::OsStr;
use std::path::PathBuf;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;
use clap::{Parser, Subcommand};

/// Text shown after the top-level help.
const EXAMPLES: &str = "\
Examples:
  prompt-config demo
  prompt-config validate --config config --prompts prompts
  prompt-config resolve career_path_navigator --user 42 --attr sector=healthcare --vars '{...}'
  prompt-config stats prompt_config_telemetry.jsonl --by feature,version,variant
  prompt-config completions bash > ~/.local/share/bash-completion/completions/prompt-config

--config defaults to $PROMPT_CONFIG_DIR, else ./config; --prompts to $PROMPT_PROMPTS_DIR, else
./prompts. Exit codes: 0 ok, 1 the command failed, 2 a usage mistake. With --json, output and
errors are JSON on stdout ({\"error\": {\"kind\", \"message\", \"details\"}}).";

/// `prompt-config`: resolve, call and manage LLM feature configs and prompts.
#[derive(Debug, Parser)]
#[command(
    name = "prompt-config",
    version,
    about = "Resolve, call and manage LLM feature configs and prompts",
    after_help = EXAMPLES,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
    /// Export spans, logs and metrics over OTLP/HTTP to this collector (a base URL such as
    /// http://localhost:4318) [default: $OTEL_EXPORTER_OTLP_ENDPOINT; unset: no export].
    #[arg(long, global = true, value_name = "URL", value_parser = SecretText)]
    pub otlp_endpoint: Option<String>,
    /// The OTLP encoding: http/protobuf or http/json [default: $OTEL_EXPORTER_OTLP_PROTOCOL,
    /// else http/protobuf].
    #[arg(long, global = true, value_name = "PROTOCOL", value_parser = Text)]
    pub otlp_protocol: Option<String>,
}

/// One command of `prompt-config`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every config file and prompt; print a one-line summary or every problem.
    #[command(after_help = "Examples:
  prompt-config validate
  prompt-config validate --config ./config --prompts ./prompts --json")]
    Validate {
        #[command(flatten)]
        dirs: Dirs,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Resolve a feature for one user: version, model chain and rendered messages.
    #[command(after_help = "Examples:
  prompt-config resolve career_path_navigator --user 42 --attr sector=healthcare \\
    --vars '{\"current_role\":\"Nurse\",\"degree\":\"BSc\",\"skills\":[\"care\"],\"sector\":\"healthcare\",\"goals\":\"data\"}'
  prompt-config resolve career_path_navigator --user 7 --version 2.0.0 --var years_experience=4 ...
  prompt-config resolve career_path_navigator --user 7 --attrs '{\"tier\":2}' --attr app_version=1.10

--attr values are always strings; --attrs gives typed JSON values. --attr wins over --attrs for
the same name, --var over --vars. A --var value that parses as JSON (4, true, [\"a\"]) is JSON.")]
    Resolve(Request),
    /// Resolve, then call the model chain once (real providers need their API keys).
    #[command(after_help = "Examples:
  prompt-config complete career_path_navigator --user 42 --vars '{...}' --mock
  prompt-config complete career_path_navigator --user 42 --vars '{...}' --json
  prompt-config complete career_path_navigator --user 42 --vars '{...}' --mock --stream
  prompt-config complete career_path_navigator --user 42 --vars '{...}' --stream --json
  prompt-config complete career_path_navigator --user 42 --vars '{...}' --messages chat.json

--stream prints the answer on stdout as it arrives and the summary on stderr at the end; with
--json it prints JSON Lines: {\"delta\": ...} per piece of text, {\"restart\": {...}} when the
chain starts over on the next model, then the completion object or {\"error\": ...}. Ctrl-C
stops the stream (kind cancelled). The exit code is 0 only when the stream completed.

--messages FILE sends the conversation so far after the template's messages: a JSON array of
{\"role\": \"user\"|\"assistant\"|\"tool\", \"content\", \"tool_calls\"?, \"tool_call_id\"?}. A version
with an output schema prints its parsed answer (data) pretty; tool calls the model asked for
are listed in the summary; --json carries both (data, tool_calls, repairs).

Without --mock, the providers' keys come from OPENAI_API_KEY / ANTHROPIC_API_KEY.")]
    Complete {
        #[command(flatten)]
        request: Request,
        /// Route every provider to the mock provider (no key, no network).
        #[arg(long)]
        mock: bool,
        /// Stream the answer: text on stdout as it arrives (JSON Lines with --json).
        #[arg(long)]
        stream: bool,
        /// The conversation so far: a JSON file holding an array of history messages (user,
        /// assistant and tool turns), sent after the template's messages.
        #[arg(long, value_name = "FILE")]
        messages: Option<PathBuf>,
    },
    /// Call a feature at a fixed arrival rate (open loop) and report throughput, latency
    /// percentiles, errors by kind, cache hit rate and cost.
    #[command(after_help = "Examples:
  prompt-config load career_path_navigator --rps 50 --duration 60s --mock
  prompt-config load career_path_navigator --rps 20 --duration 2m --inputs contexts.jsonl --json
  prompt-config load career_path_navigator --rps 100 --duration 30s --mock --redis redis://127.0.0.1:6379/

Arrival i is due at start + i/R whatever the answers do; latency counts from that due time, so
queueing shows. An arrival that finds every worker busy and the queue (one slot per worker)
full is counted as an error of kind `dropped`. Progress goes to stderr once a second.")]
    Load(super::load::LoadArgs),
    /// The staged demo: traffic, an OpenAI outage with failover, a budget downgrade, a table.
    #[command(after_help = "Examples:
  prompt-config demo
  prompt-config demo --requests 400 --telemetry /tmp/demo.jsonl

The demo starts its telemetry file afresh on every run (default prompt_config_telemetry.jsonl),
so each run tells the same story.")]
    Demo {
        #[command(flatten)]
        dirs: Dirs,
        /// Requests to send, at least 40 so every phase is staged.
        #[arg(long, value_name = "N", default_value_t = 200, value_parser = at_least_40)]
        requests: usize,
        /// Telemetry file to write [default: prompt_config_telemetry.jsonl].
        #[arg(long, value_name = "FILE")]
        telemetry: Option<PathBuf>,
    },
    /// Figures per group and experiment verdicts from telemetry logs.
    #[command(after_help = "Examples:
  prompt-config stats prompt_config_telemetry.jsonl
  prompt-config stats log.jsonl log.jsonl.1 --by provider,model --since 2026-11-27 --json

--by takes feature, version, variant, experiment, provider, model, source, or the name of an
attribute that the logged requests carry; anything else is an error.")]
    Stats {
        /// Telemetry files (JSON lines), rotated ones included.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
        /// Dimensions to group by, comma-separated or repeated.
        #[arg(long, value_name = "DIMENSION,...", value_parser = Text)]
        by: Vec<String>,
        /// Only events from this RFC 3339 time or date (midnight UTC) on.
        #[arg(long, value_name = "T", value_parser = Text)]
        since: Option<String>,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Run a feature's evaluation datasets against its versions: pass rates per case and
    /// version, a paired comparison, JUnit for CI; exit 0 only when every version passes.
    #[command(after_help = "Examples:
  prompt-config eval career_path_navigator --mock
  prompt-config eval career_path_navigator --versions 2.0.0,2.1.0 --repeat 5 --concurrency 8 --mock
  prompt-config eval career_path_navigator --dataset regressions.jsonl --junit eval.xml
  prompt-config eval career_path_navigator --model openai/gpt-4o-mini --min-pass-rate 0.9 --json

Without --dataset, every config/evals/FEATURE/*.jsonl is run. Each case runs --repeat times per
version; it passes when the share of passing runs reaches its pass rate (the case's, else
--pass-rate, else 100%, or 80% with a judge assertion). A version passes when the share of its
cases that pass reaches --min-pass-rate. Exit codes: 0 every version passed, 1 one did not (or
the run failed), 2 a usage mistake. Progress goes to stderr; the report to stdout.")]
    Eval(super::eval::EvalArgs),
    /// Build evaluation datasets (from-telemetry).
    #[command(subcommand)]
    Dataset(super::dataset::DatasetCommand),
    /// Mark a draft version released, recording the hashes of its files.
    #[command(after_help = "Examples:
  prompt-config release career_path_navigator 3.1.0
  prompt-config release career_path_navigator 3.1.0 --require-eval --mock
  prompt-config release career_path_navigator 3.1.0 --require-eval regressions.jsonl --repeat 3

--require-eval runs the version's evaluation first (the feature's config/evals/FEATURE/*.jsonl,
or the DATASET given) and refuses the release (kind evaluation_failed, exit 1, the feature file
untouched) unless every case passes.")]
    Release {
        /// The feature.
        #[arg(value_parser = Text)]
        feature: String,
        /// The draft version to release.
        #[arg(value_parser = Text)]
        version: String,
        /// Evaluate the version first and release only if it passes [DATASET: default every
        /// config/evals/FEATURE/*.jsonl].
        #[arg(long, value_name = "DATASET", num_args = 0..=1)]
        require_eval: Option<Option<PathBuf>>,
        /// With --require-eval: runs per case (1-10000).
        #[arg(long, value_name = "N", default_value_t = 1, requires = "require_eval",
              value_parser = super::eval::parse_repeat)]
        repeat: u32,
        /// With --require-eval: evaluate on the mock provider (no key, no network).
        #[arg(long, requires = "require_eval")]
        mock: bool,
        #[command(flatten)]
        dirs: Dirs,
        /// Print the outcome as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Set a feature's active_version to a released version.
    #[command(
        override_usage = "prompt-config rollback [OPTIONS] <FEATURE> --to <VERSION>",
        after_help = "Example:
  prompt-config rollback career_path_navigator --to 1.0.0"
    )]
    Rollback {
        /// The feature.
        #[arg(value_parser = Text)]
        feature: String,
        /// The released version to serve.
        #[arg(long, value_name = "VERSION", value_parser = Text, required_unless_present = "stray")]
        to: Option<String>,
        /// A version given without `--to` (`rollback F 1.0.0`): caught to say `--to` is required.
        #[arg(hide = true, value_parser = Text)]
        stray: Option<String>,
        #[command(flatten)]
        dirs: Dirs,
        /// Print the outcome (and the rollback's reach) as one JSON object.
        #[arg(long)]
        json: bool,
    },
    // --- the response cache ---
    /// Warm, inspect or clear the response cache (warm | stats | clear).
    #[command(subcommand)]
    Cache(CacheCommand),
    // --- end of the response cache block ---
    /// Alert channels of config/alerts.json (test).
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Print a shell completion script.
    #[command(after_help = "Examples:
  prompt-config completions bash > ~/.local/share/bash-completion/completions/prompt-config
  prompt-config completions zsh > ~/.zfunc/_prompt-config
  prompt-config completions fish > ~/.config/fish/completions/prompt-config.fish")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `prompt-config alerts ...`: the alert channels (issue 15).
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// Send a test alert to each channel of config/alerts.json (or one) and print ok or why not.
    #[command(after_help = "Examples:
  prompt-config alerts test
  prompt-config alerts test --channel team --json

Secrets are read from the environment variables alerts.json names (webhook_url_env,
routing_key_env, url_env, secret_env). Exit 1 (alert_delivery_failed) when a channel failed,
2 for a channel name alerts.json does not define.")]
    Test {
        /// Only this channel (its name in alerts.json).
        #[arg(long, value_name = "NAME", value_parser = Text)]
        channel: Option<String>,
        #[command(flatten)]
        dirs: Dirs,
        /// Print the outcome per channel as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// `prompt-config cache ...`: the response cache (issue 11).
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Fills the cache by completing every context of a JSONL file.
    #[command(after_help = "Examples:
  prompt-config cache warm career_path_navigator --inputs profiles.jsonl --concurrency 4
  prompt-config cache warm career_path_navigator --inputs profiles.jsonl --redis redis://cache:6379/

One JSON object per line: {\"user_id\": \"42\", \"attributes\": {...}, \"variables\": {...}}
(\"user_id\" or \"user\" required; attributes, variables and version optional). Progress goes
to stderr. Without --redis (or PROMPT_CONFIG_REDIS_URL) the cache is this process's memory and
is gone when it exits, so warming only helps with Redis.")]
    Warm {
        /// The feature to warm (its versions' `cache` settings decide what is stored).
        #[arg(value_parser = Text)]
        feature: String,
        /// The contexts to complete, one JSON object per line (a leading BOM is ignored).
        #[arg(long, value_name = "FILE.jsonl")]
        inputs: PathBuf,
        /// How many contexts are completed at once (1-64).
        #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        concurrency: u16,
        /// Route every provider to the built-in mock (no API keys, no cost).
        #[arg(long)]
        mock: bool,
        /// Redis holding the fleet's cache [default: $PROMPT_CONFIG_REDIS_URL; without either the
        /// cache is this process's memory and dies with it].
        #[arg(long, value_name = "URL", value_parser = SecretText)]
        redis: Option<String>,
        /// Append the calls' telemetry to this JSONL file.
        #[arg(long, value_name = "FILE")]
        telemetry: Option<PathBuf>,
        #[command(flatten)]
        dirs: Dirs,
        /// Print the report (stored, not stored, failures) as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Hit rate and savings from telemetry logs, and live entries in Redis.
    #[command(after_help = "Examples:
  prompt-config cache stats --telemetry prompt_config_telemetry.jsonl
  prompt-config cache stats career_path_navigator --redis redis://cache:6379/ --json

Live entries are counted in Redis only: a memory cache belongs to the process that filled it.")]
    Stats {
        /// Only this feature (checked against the config) [default: every feature].
        #[arg(value_parser = Text)]
        feature: Option<String>,
        /// A telemetry log to read hit rate and savings from (repeatable).
        #[arg(long, value_name = "FILE")]
        telemetry: Vec<PathBuf>,
        /// Redis to count live entries in [default: $PROMPT_CONFIG_REDIS_URL].
        #[arg(long, value_name = "URL", value_parser = SecretText)]
        redis: Option<String>,
        /// The mock's entries: `--mock` runs keep their own keys in Redis (`PREFIX:mock:...`),
        /// apart from real answers.
        #[arg(long)]
        mock: bool,
        #[command(flatten)]
        dirs: Dirs,
        /// Print lookups, entries and lines read/skipped as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Deletes a feature's cached answers (one version with --version).
    #[command(after_help = "Examples:
  prompt-config cache clear career_path_navigator --redis redis://cache:6379/
  prompt-config cache clear career_path_navigator --version 2.0.0

With Redis this clears the entries for the whole fleet. A memory cache lives inside each
application process: clear it there (Engine::cache_clear); this command cannot reach it.")]
    Clear {
        /// The feature whose cached answers are deleted.
        #[arg(value_parser = Text)]
        feature: String,
        /// Only this version's answers [default: every version of the feature].
        #[arg(long, value_name = "VERSION", value_parser = Text)]
        version: Option<String>,
        /// Redis holding the fleet's cache [default: $PROMPT_CONFIG_REDIS_URL; required].
        #[arg(long, value_name = "URL", value_parser = SecretText)]
        redis: Option<String>,
        /// The mock's entries: `--mock` runs keep their own keys in Redis (`PREFIX:mock:...`),
        /// apart from real answers.
        #[arg(long)]
        mock: bool,
        #[command(flatten)]
        dirs: Dirs,
        /// Print how many answers were deleted as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// Where the configuration and prompts live.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Dirs {
    /// Config directory [default: $PROMPT_CONFIG_DIR, else ./config].
    #[arg(long, value_name = "DIR")]
    pub config: Option<PathBuf>,
    /// Prompts directory [default: $PROMPT_PROMPTS_DIR, else ./prompts].
    #[arg(long, value_name = "DIR")]
    pub prompts: Option<PathBuf>,
}

/// The arguments of `resolve` and `complete`.
#[derive(Debug, Clone, clap::Args)]
pub struct Request {
    /// The feature to resolve.
    #[arg(value_parser = Text)]
    pub feature: String,
    /// The subject (user) id that experiments and rollouts bucket by (`--user -1` works).
    #[arg(long, value_name = "ID", value_parser = Text, allow_negative_numbers = true)]
    pub user: String,
    /// A targeting attribute; the value is always a string (repeatable).
    #[arg(long = "attr", value_name = "NAME=VALUE", value_parser = Text)]
    pub attr: Vec<String>,
    /// Targeting attributes as a JSON object, with typed values.
    #[arg(long, value_name = "JSON", value_parser = Text)]
    pub attrs: Option<String>,
    /// A template variable; a value that parses as JSON is JSON, else text (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = Text)]
    pub var: Vec<String>,
    /// Template variables as a JSON object.
    #[arg(long, value_name = "JSON", value_parser = Text)]
    pub vars: Option<String>,
    /// Pin a prompt version instead of resolving one.
    #[arg(long, value_name = "VERSION", value_parser = Text)]
    pub version: Option<String>,
    /// Join the caller's trace: a W3C Trace Context `traceparent` header value
    /// (00-<32 hex trace-id>-<16 hex parent-id>-<2 hex trace-flags>). The request's spans become
    /// children of that span, and every provider attempt is sent a `traceparent` in the trace.
    #[arg(long, value_name = "TRACEPARENT", value_parser = Text)]
    pub traceparent: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Append telemetry to this file.
    #[arg(long, value_name = "FILE")]
    pub telemetry: Option<PathBuf>,
    /// Share budgets, rate limits, circuit breakers and the response cache with the fleet
    /// through this Redis (redis://host:6379/, or comma-separated cluster seeds) [default:
    /// $PROMPT_CONFIG_REDIS_URL, else per process in memory]. If it does not answer, one
    /// warning goes to stderr and the call serves from local state.
    #[arg(long, value_name = "URL", value_parser = SecretText)]
    pub redis: Option<String>,
    #[command(flatten)]
    pub dirs: Dirs,
}

/// A UTF-8 text value; anything else is a usage error naming the argument.
#[derive(Debug, Clone, Copy)]
pub struct Text;

impl TypedValueParser for Text {
    type Value = String;

    fn parse_ref(
        &self,
        command: &clap::Command,
        argument: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<String, clap::Error> {
        utf8_text(command, argument, value, true)
    }
}

/// A UTF-8 text value that may hold a secret (a Redis URL with its password): a value that is
/// not UTF-8 is a usage error naming the argument without quoting the value.
#[derive(Debug, Clone, Copy)]
pub struct SecretText;

impl TypedValueParser for SecretText {
    type Value = String;

    fn parse_ref(
        &self,
        command: &clap::Command,
        argument: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<String, clap::Error> {
        utf8_text(command, argument, value, false)
    }
}

/// `value` as text, or a usage error naming the argument (quoting the value lossily only when
/// `quote` is set: a secret is never shown).
fn utf8_text(
    command: &clap::Command,
    argument: Option<&clap::Arg>,
    value: &OsStr,
    quote: bool,
) -> Result<String, clap::Error> {
    if let Some(text) = value.to_str() {
        return Ok(text.to_string());
    }
    let name = argument.map_or_else(|| "a value".to_string(), ToString::to_string);
    let message = if quote {
        format!(
            "{name} must be UTF-8 text, got \"{}\"\n",
            value.to_string_lossy()
        )
    } else {
        format!("{name} must be UTF-8 text (the value is not shown: it may hold a password)\n")
    };
    Err(clap::Error::raw(ErrorKind::InvalidUtf8, message).with_cmd(command))
}

fn at_least_40(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(count) if count >= 40 => Ok(count),
        _ => Err("must be a whole number of at least 40, to stage every phase".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn rollback_without_to_names_the_missing_option() {
        let error = Cli::try_parse_from(["prompt-config", "rollback", "career_path_navigator"])
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::MissingRequiredArgument);
        assert!(error.to_string().contains("--to <VERSION>"), "{error}");
    }

    #[test]
    fn eval_versions_are_comma_separated_or_repeated() {
        let cli = Cli::try_parse_from([
            "prompt-config",
            "eval",
            "f",
            "--versions",
            "2.0.0,2.1.0",
            "--versions",
            "3.0.0",
        ])
        .unwrap();
        let Command::Eval(args) = cli.command else {
            panic!("not eval");
        };
        assert_eq!(args.versions, ["2.0.0", "2.1.0", "3.0.0"]);
        assert_eq!(
            (args.repeat, args.concurrency, args.min_pass_rate),
            (1, 4, 1.0)
        );
    }

    #[test]
    fn eval_concurrency_zero_names_the_argument() {
        let error =
            Cli::try_parse_from(["prompt-config", "eval", "f", "--concurrency", "0"]).unwrap_err();
        assert!(error.to_string().contains("--concurrency <C>"), "{error}");
    }

    #[test]
    fn require_eval_takes_an_optional_dataset() {
        let parse = |extra: &[&str]| {
            let mut words = vec!["prompt-config", "release", "f", "1.0.0"];
            words.extend_from_slice(extra);
            match Cli::try_parse_from(words).unwrap().command {
                Command::Release { require_eval, .. } => require_eval,
                _ => panic!("not release"),
            }
        };
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&["--require-eval", "--mock"]), Some(None));
        assert_eq!(
            parse(&["--require-eval", "cases.jsonl"]),
            Some(Some(PathBuf::from("cases.jsonl")))
        );
    }

    #[test]
    fn from_telemetry_needs_a_file_and_a_feature() {
        let error =
            Cli::try_parse_from(["prompt-config", "dataset", "from-telemetry", "log.jsonl"])
                .unwrap_err();
        assert!(error.to_string().contains("--feature <FEATURE>"), "{error}");
        let error = Cli::try_parse_from([
            "prompt-config",
            "dataset",
            "from-telemetry",
            "--feature",
            "f",
        ])
        .unwrap_err();
        assert!(error.to_string().contains("<FILE>"), "{error}");
    }

    #[test]
    fn demo_requests_below_40_are_refused() {
        let error = Cli::try_parse_from(["prompt-config", "demo", "--requests", "10"]).unwrap_err();
        assert!(error.to_string().contains("at least 40"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn a_non_utf8_text_value_names_its_argument() {
        use std::os::unix::ffi::OsStrExt;
        let bad = OsStr::from_bytes(b"q=caf\xe9");
        let error = Cli::try_parse_from([
            OsStr::new("prompt-config"),
            OsStr::new("resolve"),
            OsStr::new("f"),
            OsStr::new("--user"),
            OsStr::new("1"),
            OsStr::new("--var"),
            bad,
        ])
        .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidUtf8);
        assert!(error.to_string().contains("--var <NAME=VALUE>"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn a_non_utf8_path_is_accepted() {
        use std::os::unix::ffi::OsStrExt;
        let path = OsStr::from_bytes(b"/tmp/caf\xe9");
        let cli = Cli::try_parse_from([
            OsStr::new("prompt-config"),
            OsStr::new("validate"),
            OsStr::new("--config"),
            path,
        ])
        .unwrap();
        let Command::Validate { dirs, .. } = cli.command else {
            panic!("not validate");
        };
        assert_eq!(dirs.config.unwrap().as_os_str(), path);
    }
}
