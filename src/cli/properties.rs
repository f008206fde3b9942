//! Property tests of the command line's parsers: no argv makes the parser panic, `--attr`
//! values are strings whatever they look like, and JSON rounding keeps values close.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use clap::Parser;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::args::{Cli, Command};
use super::resolve::context_from_args;

/// Words that steer the parser into every command and option, mixed with arbitrary bytes.
fn word() -> impl Strategy<Value = OsString> {
    prop_oneof![
        prop::sample::select(vec![
            "validate",
            "resolve",
            "complete",
            "demo",
            "stats",
            "release",
            "rollback",
            "completions",
            "help",
            "--help",
            "-h",
            "--version",
            "--user",
            "--attr",
            "--attrs",
            "--var",
            "--vars",
            "--version",
            "--json",
            "--mock",
            "--to",
            "--by",
            "--since",
            "--config",
            "--prompts",
            "--telemetry",
            "--requests",
            "eval",
            "dataset",
            "from-telemetry",
            "--dataset",
            "--versions",
            "--repeat",
            "--concurrency",
            "--pass-rate",
            "--min-pass-rate",
            "--junit",
            "--require-eval",
            "--feature",
            "--feedback-below",
            "--limit",
            "--",
            "-",
            "=",
            "bash",
        ])
        .prop_map(OsString::from),
        prop::collection::vec(any::<u8>(), 0..12).prop_map(OsString::from_vec),
        ".{0,12}".prop_map(OsString::from),
    ]
}

proptest! {
    #[test]
    fn no_argv_makes_the_parser_panic(words in prop::collection::vec(word(), 0..8)) {
        let argv = std::iter::once(OsString::from("prompt-config")).chain(words);
        if let Err(error) = Cli::try_parse_from(argv) {
            // Rendering the error (help, usage, suggestions) must not panic either.
            let _ = error.render().to_string();
            prop_assert!(matches!(error.exit_code(), 0 | 2));
        }
    }

    #[test]
    fn attr_values_are_always_strings(name in "[a-z_]{1,10}", value in ".{0,20}") {
        let pair = format!("{name}={value}");
        let cli = Cli::try_parse_from(["prompt-config", "resolve", "f", "--user", "1", "--attr", &pair])
            .map_err(|error| TestCaseError::fail(error.to_string()))?;
        let Command::Resolve(request) = cli.command else {
            return Err(TestCaseError::fail("not resolve"));
        };
        let context = context_from_args(&request).map_err(|failure| TestCaseError::fail(failure.message))?;
        prop_assert_eq!(context.attributes().get(&name), Some(&Value::String(value)));
    }

    #[test]
    fn rounded_milliseconds_stay_within_half_a_microsecond(ms in 0.0f64..1e9) {
        let mut value = json!({"latency_ms": ms});
        super::output::round_for_test(&mut value);
        let rounded = value["latency_ms"].as_f64().unwrap_or(f64::NAN);
        prop_assert!((rounded - ms).abs() <= 0.0005 + ms * 1e-15, "{} -> {}", ms, rounded);
        let mut again = value.clone();
        super::output::round_for_test(&mut again);
        prop_assert_eq!(again, value);
    }
}
