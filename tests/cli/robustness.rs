//! The command line never panics (exit 101): not on non-UTF-8 arguments, not when stdout or
//! stderr is a closed pipe or a full disk. Every run ends with 0, 1 or 2.

use std::ffi::OsString;
use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::process::Stdio;

use crate::support::cli::{PROFILE, command, run_in, stderr, stdout};
use crate::support::fixture::Fixture;

/// `caf\xe9`: Latin-1, not UTF-8.
fn latin1(prefix: &str) -> OsString {
    let mut bytes = prefix.as_bytes().to_vec();
    bytes.extend_from_slice(b"caf\xe9");
    OsString::from_vec(bytes)
}

fn os(words: &[&str]) -> Vec<OsString> {
    words.iter().map(OsString::from).collect()
}

/// Every subcommand, each with a non-UTF-8 word where text or a path is expected.
fn every_command_with_a_non_utf8_word() -> Vec<Vec<OsString>> {
    let request = |command: &str, extra: Vec<OsString>| {
        let mut words = os(&[
            command,
            "career_path_navigator",
            "--user",
            "7",
            "--vars",
            PROFILE,
        ]);
        words.extend(extra);
        words
    };
    vec![
        vec!["validate".into(), "--config".into(), latin1("/tmp/")],
        vec!["validate".into(), "--prompts".into(), latin1("/tmp/")],
        request("resolve", vec!["--var".into(), latin1("q=")]),
        request("resolve", vec!["--attr".into(), latin1("sector=")]),
        request("resolve", vec!["--attrs".into(), latin1("{\"a\":\"")]),
        request("resolve", vec!["--version".into(), latin1("")]),
        request("resolve", vec!["--config".into(), latin1("/tmp/")]),
        vec!["resolve".into(), latin1(""), "--user".into(), "1".into()],
        vec![
            "resolve".into(),
            "career_path_navigator".into(),
            "--user".into(),
            latin1(""),
        ],
        request(
            "complete",
            vec!["--mock".into(), "--var".into(), latin1("q=")],
        ),
        request(
            "complete",
            vec![
                "--mock".into(),
                "--telemetry".into(),
                latin1("/nonexistent/"),
            ],
        ),
        vec!["demo".into(), "--requests".into(), latin1("")],
        vec!["demo".into(), "--config".into(), latin1("/tmp/")],
        vec!["stats".into(), latin1("/tmp/")],
        vec!["stats".into(), "x.jsonl".into(), "--by".into(), latin1("")],
        vec![
            "stats".into(),
            "x.jsonl".into(),
            "--since".into(),
            latin1(""),
        ],
        vec![
            "release".into(),
            "career_path_navigator".into(),
            latin1("3."),
        ],
        vec!["rollback".into(), latin1(""), "--to".into(), "1.0.0".into()],
        vec![
            "rollback".into(),
            "career_path_navigator".into(),
            "--to".into(),
            latin1(""),
        ],
        vec![
            "rollback".into(),
            "career_path_navigator".into(),
            latin1(""),
        ],
        vec!["completions".into(), latin1("")],
        vec![latin1("")],
        vec!["validate".into(), latin1("--")],
    ]
}

/// Every subcommand used correctly or wrongly, to run with broken output streams.
fn every_command() -> Vec<Vec<OsString>> {
    let mut commands: Vec<Vec<OsString>> = [
        &["validate"][..],
        &["validate", "--config", "/nonexistent"],
        &[
            "resolve",
            "career_path_navigator",
            "--user",
            "7",
            "--vars",
            PROFILE,
        ],
        &[
            "resolve",
            "career_path_navigator",
            "--user",
            "7",
            "--vars",
            PROFILE,
            "--json",
        ],
        &["resolve", "nope", "--user", "7"],
        &["resolve", "nope", "--user", "7", "--json"],
        &[
            "complete",
            "career_path_navigator",
            "--user",
            "7",
            "--vars",
            PROFILE,
            "--mock",
        ],
        &[
            "complete",
            "career_path_navigator",
            "--user",
            "7",
            "--vars",
            PROFILE,
        ],
        &["demo", "--requests", "40"],
        &["stats", "prompt_config_telemetry.jsonl"],
        &["stats", "/nonexistent.jsonl", "--json"],
        &["release", "career_path_navigator", "2.0.0"],
        &["rollback", "career_path_navigator", "1.0.0"],
        &["rollback", "career_path_navigator", "--to", "0.9.0"],
        &["completions", "bash"],
        &["--help"],
        &["--version"],
        &["resolve", "--help"],
        &["frobnicate"],
        &[],
    ]
    .iter()
    .map(|words| os(words))
    .collect();
    commands.extend(every_command_with_a_non_utf8_word());
    commands
}

fn assert_no_panic(code: Option<i32>, args: &[OsString], how: &str, stderr: &str) {
    assert!(
        matches!(code, Some(0..=2)),
        "{args:?} with {how} exited {code:?}:\n{stderr}"
    );
    assert!(
        !stderr.contains("panicked"),
        "{args:?} with {how}: {stderr}"
    );
}

#[test]
fn non_utf8_arguments_exit_zero_one_or_two_never_101() {
    let fixture = Fixture::new();
    for args in every_command_with_a_non_utf8_word() {
        let output = run_in(&fixture.root, &args);
        assert_no_panic(
            output.status.code(),
            &args,
            "plain output",
            &stderr(&output),
        );
    }
}

#[test]
fn a_non_utf8_var_is_a_usage_error_naming_the_option() {
    let fixture = Fixture::new();
    let mut args = os(&[
        "resolve",
        "career_path_navigator",
        "--user",
        "7",
        "--vars",
        PROFILE,
    ]);
    args.extend(["--var".into(), latin1("q=")]);
    let output = run_in(&fixture.root, &args);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--var <NAME=VALUE> must be UTF-8"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_non_utf8_user_is_a_usage_error_naming_the_option() {
    let fixture = Fixture::new();
    let args = vec![
        "resolve".into(),
        "career_path_navigator".into(),
        "--user".into(),
        latin1(""),
    ];
    let output = run_in(&fixture.root, &args);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--user <ID> must be UTF-8"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_non_utf8_config_path_is_a_path_like_any_other() {
    let fixture = Fixture::new();
    let config = fixture.root.join(latin1("config-"));
    std::fs::rename(fixture.config_dir(), &config).unwrap();
    let args = vec![
        "validate".into(),
        "--config".into(),
        config.into_os_string(),
    ];
    let output = run_in(&fixture.root, &args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("ok: 2 features"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn a_missing_non_utf8_config_path_is_a_config_error_not_a_panic() {
    let fixture = Fixture::new();
    let args = vec![
        "validate".into(),
        "--config".into(),
        latin1("/nonexistent/"),
    ];
    let output = run_in(&fixture.root, &args);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("error [config_invalid]"),
        "{}",
        stderr(&output)
    );
}

/// The write end of a pipe whose read end is already closed: every write fails with EPIPE.
fn closed_pipe() -> Stdio {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors `pipe` writes.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(read);
    Stdio::from(write)
}

/// Makes a fresh stream for a child's stdout or stderr.
type Stream = fn() -> Stdio;

fn full_disk() -> Stdio {
    Stdio::from(File::options().write(true).open("/dev/full").unwrap())
}

#[test]
fn closed_or_full_stdout_and_stderr_never_make_a_panic() {
    let fixture = Fixture::new();
    let streams: [(&str, Stream, Stream); 4] = [
        ("closed stdout and stderr", closed_pipe, closed_pipe),
        ("/dev/full stdout and stderr", full_disk, full_disk),
        ("closed stdout", closed_pipe, Stdio::piped),
        ("closed stderr", Stdio::piped, closed_pipe),
    ];
    for args in every_command() {
        for (how, out, err) in &streams {
            let output = command(&fixture.root)
                .args(&args)
                .stdout(out())
                .stderr(err())
                .output()
                .unwrap();
            assert_no_panic(output.status.code(), &args, how, &stderr(&output));
        }
    }
}

#[test]
fn a_failing_command_with_a_closed_stderr_still_exits_one() {
    let fixture = Fixture::new();
    let output = command(&fixture.root)
        .args(["resolve", "nope", "--user", "7"])
        .stderr(closed_pipe())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn a_failing_command_with_stderr_on_a_full_disk_still_exits_one() {
    let fixture = Fixture::new();
    let output = command(&fixture.root)
        .args(["validate", "--config", "/nonexistent"])
        .stderr(full_disk())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn output_to_a_full_disk_is_a_failure_not_a_success() {
    let fixture = Fixture::new();
    let output = command(&fixture.root)
        .args(["validate"])
        .stdout(full_disk())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    let fixture = Fixture::new();
    let output = command(&fixture.root)
        .args(["completions", "bash"])
        .stdout(closed_pipe())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
}

#[test]
fn non_utf8_environment_variables_never_make_a_panic() {
    let fixture = Fixture::new();
    for args in every_command() {
        let output = command(&fixture.root)
            .args(&args)
            .env("PROMPT_CONFIG_DIR", latin1("/tmp/"))
            .env("PROMPT_PROMPTS_DIR", latin1("/tmp/"))
            .env("OPENAI_API_KEY", latin1("sk-"))
            .env("ANTHROPIC_API_KEY", latin1("sk-"))
            .env("OPENAI_BASE_URL", latin1("http://"))
            .env("ANTHROPIC_BASE_URL", latin1("http://"))
            .output()
            .unwrap();
        assert_no_panic(
            output.status.code(),
            &args,
            "non-UTF-8 environment",
            &stderr(&output),
        );
    }
}
