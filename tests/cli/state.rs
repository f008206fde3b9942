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
