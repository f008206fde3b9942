//! The state backend on the command line: `--redis URL`, else `$PROMPT_CONFIG_REDIS_URL`
//! (issue 11). A URL that does not parse is a usage error naming where it came from, with any
//! password masked; a valid one is accepted, and calls do not fail because Redis is down
//! (`complete()` does not use shared state yet).

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
