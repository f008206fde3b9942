//! The state backend on the command line: `--redis URL`, else `$PROMPT_CONFIG_REDIS_URL`
//! (issue 11). A URL that does not parse is a usage error naming where it came from, with any
//! password masked; a valid one is accepted, and calls do not fail because Redis is down: the
//! command says so in one warning on stderr and serves from local state.

use crate::support::cli::{PROFILE, command, run, stderr};
use crate::support::fixture::Fixture;

fn resolve_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "resolve",
        "career_path_navigator",
        "--user",
        "42",
        "--vars",
        PROFILE,
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn a_redis_url_that_does_not_parse_is_a_usage_error_naming_redis() {
    let fixture = Fixture::new();
    let output = run(&fixture, &resolve_args(&["--redis", "http://cache:6379/"]));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("--redis"), "{}", stderr(&output));
}

#[test]
fn a_bad_url_in_the_environment_names_the_variable_and_masks_the_password() {
    let fixture = Fixture::new();
    let output = command(&fixture.root)
        .args(resolve_args(&[]))
        .env("PROMPT_CONFIG_REDIS_URL", "rediss://app:s3cret@cache:6380/")
        .output()
        .unwrap();
    let error = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{error}");
    assert!(error.contains("PROMPT_CONFIG_REDIS_URL"), "{error}");
    assert!(!error.contains("s3cret"), "{error}");
}

#[test]
fn a_call_does_not_fail_because_the_named_redis_is_down() {
    let fixture = Fixture::new();
    // Port 1 on loopback: nothing listens there.
    let output = run(
        &fixture,
        &[
            "complete",
            "career_path_navigator",
            "--user",
            "42",
            "--vars",
            PROFILE,
            "--mock",
            "--redis",
            "redis://127.0.0.1:1/",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
}

#[test]
fn a_malformed_url_is_not_echoed_so_its_password_cannot_leak() {
    let fixture = Fixture::new();
    for url in [
        "redis:/:s3cret@cache/",
        "redis://127.0.0.1:1/?password=s3cret&protocol=bad",
    ] {
        let output = run(&fixture, &resolve_args(&["--redis", url, "--json"]));
        let (out, error) = (String::from_utf8_lossy(&output.stdout), stderr(&output));
        assert_eq!(output.status.code(), Some(2), "{url}: {error}");
        assert!(
            !out.contains("s3cret") && !error.contains("s3cret"),
            "{url}: {out}{error}"
        );
    }
}

#[test]
fn a_redis_url_that_is_not_utf8_is_refused_without_quoting_it() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let fixture = Fixture::new();
    let url = OsStr::from_bytes(b"redis://:s3cret@127.0.0.1:1/\xff");
    let from_argument = command(&fixture.root)
        .args(resolve_args(&[]))
        .arg("--redis")
        .arg(url)
        .output()
        .unwrap();
    let from_environment = command(&fixture.root)
        .args(resolve_args(&[]))
        .env("PROMPT_CONFIG_REDIS_URL", url)
        .output()
        .unwrap();
    for output in [from_argument, from_environment] {
        let error = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{error}");
        assert!(
            error.contains("UTF-8") && !error.contains("s3cret"),
            "{error}"
        );
    }
}

fn complete_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "complete",
        "career_path_navigator",
        "--user",
        "42",
        "--vars",
        PROFILE,
        "--mock",
    ];
    args.extend_from_slice(extra);
    args
}

/// The stderr lines that are shared-state warnings.
fn warnings(output: &std::process::Output) -> Vec<String> {
    stderr(output)
        .lines()
        .filter(|line| line.starts_with("warning: shared state unavailable"))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_complete_on_a_down_redis_warns_once_on_stderr_naming_the_masked_server() {
    let fixture = Fixture::new();
    let output = run(
        &fixture,
        &complete_args(&["--redis", "redis://:secret@127.0.0.1:1/"]),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let warnings = warnings(&output);
    assert_eq!(warnings.len(), 1, "{}", stderr(&output));
    assert!(
        warnings[0].starts_with("warning: shared state unavailable (redis://:***@127.0.0.1:1/): "),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[0].ends_with("; serving from local state"),
        "{}",
        warnings[0]
    );
    assert!(!stderr(&output).contains("secret"), "{}", stderr(&output));
}

#[test]
fn a_complete_on_a_down_redis_with_json_output_still_prints_one_json_object() {
    let fixture = Fixture::new();
    let output = run(
        &fixture,
        &complete_args(&["--redis", "redis://127.0.0.1:1/", "--json"]),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(warnings(&output).len(), 1, "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str::<serde_json::Value>(&stdout).expect("stdout is one JSON object");
}

#[test]
fn a_password_in_the_url_query_is_masked_in_the_warning_and_the_telemetry() {
    let fixture = Fixture::new();
    let log = fixture.root.join("telemetry.jsonl");
    let log_arg = log.to_string_lossy().to_string();
    let output = run(
        &fixture,
        &complete_args(&[
            "--redis",
            "redis://127.0.0.1:1/?password=secret2",
            "--telemetry",
            &log_arg,
        ]),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let error = stderr(&output);
    assert!(
        error.contains("(redis://127.0.0.1:1/?password=***)"),
        "{error}"
    );
    assert!(!error.contains("secret2"), "{error}");
    let telemetry = std::fs::read_to_string(&log).unwrap();
    assert!(telemetry.contains("state.degraded"), "{telemetry}");
    assert!(telemetry.contains("?password=***"), "{telemetry}");
    assert!(!telemetry.contains("secret2"), "{telemetry}");
}

#[test]
fn a_resolve_that_never_reaches_redis_prints_no_warning() {
    let fixture = Fixture::new();
    let output = run(
        &fixture,
        &resolve_args(&["--redis", "redis://127.0.0.1:1/"]),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(warnings(&output).is_empty(), "{}", stderr(&output));
}

#[test]
fn a_redis_url_over_4096_bytes_is_a_usage_error_naming_redis_without_echoing_it() {
    let fixture = Fixture::new();
    let url = format!("redis://{}:6379/", "h".repeat(100_000));
    let output = run(&fixture, &resolve_args(&["--redis", &url]));
    let error = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{error}");
    assert!(
        error.contains("--redis") && error.contains("4096"),
        "{error}"
    );
    assert!(error.len() < 1_000, "{} bytes of stderr", error.len());
}

#[test]
fn the_redis_help_of_complete_and_resolve_says_what_the_fleet_shares() {
    let fixture = Fixture::new();
    for subcommand in ["complete", "resolve"] {
        let output = run(&fixture, &[subcommand, "--help"]);
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(!help.contains("Not used by calls"), "{subcommand}: {help}");
        assert!(
            help.contains("budgets, rate limits, circuit breakers and the response cache"),
            "{subcommand}: {help}"
        );
    }
}
