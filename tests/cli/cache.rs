//! `prompt-config cache warm | stats | clear` (issue 11), on a copy of the shipped feature with
//! a response cache keyed by role, degree and sector, normalised.

use std::fs;

use serde_json::{Value, json};

use crate::support::cli::{PROFILE, run, stderr, stdout};
use crate::support::fixture::Fixture;
use crate::support::redis_server::RedisServer;

pub(crate) fn cached_fixture() -> Fixture {
    let fixture = Fixture::new();
    fixture.edit_feature(|feature| {
        feature["cache"] = json!({
            "ttl_seconds": 3600,
            "key_variables": ["current_role", "degree", "sector"],
            "normalize": {"trim": true, "case_fold": true, "collapse_whitespace": true},
            "allow_temperature_above_zero": true
        });
    });
    fixture
}

/// One JSONL line for `role`.
pub(crate) fn line(user: &str, role: &str) -> String {
    let mut variables: Value = serde_json::from_str(PROFILE).unwrap();
    variables["current_role"] = role.into();
    json!({"user": user, "attributes": {"sector": "healthcare"}, "variables": variables})
        .to_string()
}

pub(crate) fn write_inputs(fixture: &Fixture, lines: &[String]) -> String {
    let path = fixture.root.join("inputs.jsonl");
    fs::write(&path, lines.join("\n") + "\n").unwrap();
    path.display().to_string()
}

/// `cache warm career_path_navigator --inputs INPUTS --mock` plus `extra`.
pub(crate) fn warm(fixture: &Fixture, inputs: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "cache",
        "warm",
        "career_path_navigator",
        "--inputs",
        inputs,
        "--mock",
    ];
    args.extend_from_slice(extra);
    run(fixture, &args)
}

pub(crate) fn json_of(output: &std::process::Output) -> Value {
    serde_json::from_str(&stdout(output))
        .unwrap_or_else(|error| panic!("{error}: {}{}", stdout(output), stderr(output)))
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn warm_fills_redis_then_stats_counts_the_entries_and_clear_deletes_them() {
    let server = RedisServer::start();
    let fixture = cached_fixture();
    let inputs = write_inputs(
        &fixture,
        &[
            line("1", "Data Analyst "),
            line("2", "data analyst"),
            line("3", "Nurse"),
        ],
    );
    let url = server.url();
    let warm = run(
        &fixture,
        &[
            "cache",
            "warm",
            "career_path_navigator",
            "--inputs",
            &inputs,
            "--concurrency",
            "1",
            "--mock",
            "--redis",
            &url,
            "--json",
        ],
    );
    assert!(warm.status.success(), "{}", stderr(&warm));
    let report = json_of(&warm);
    assert_eq!(report["backend"], "redis");
    assert_eq!(
        (
            report["completed"].clone(),
            report["already_cached"].clone()
        ),
        (json!(2), json!(1))
    );
    assert!(
        stderr(&warm).contains("3/3"),
        "progress on stderr: {}",
        stderr(&warm)
    );

    let stats = run(
        &fixture,
        &[
            "cache",
            "stats",
            "career_path_navigator",
            "--mock",
            "--redis",
            &url,
            "--json",
        ],
    );
    assert!(stats.status.success(), "{}", stderr(&stats));
    let entries = json_of(&stats)["entries"].clone();
    let total: u64 = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["entries"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 2, "{entries}");

    let clear = run(
        &fixture,
        &[
            "cache",
            "clear",
            "career_path_navigator",
            "--mock",
            "--redis",
            &url,
            "--json",
        ],
    );
    assert!(clear.status.success(), "{}", stderr(&clear));
    assert_eq!(json_of(&clear)["deleted"], 2);
}

#[test]
fn entries_warmed_with_mock_are_invisible_to_stats_and_clear_without_mock() {
    let server = RedisServer::start();
    let fixture = cached_fixture();
    let inputs = write_inputs(&fixture, &[line("1", "Nurse")]);
    let url = server.url();
    let warm = warm(&fixture, &inputs, &["--redis", &url, "--json"]);
    assert!(warm.status.success(), "{}", stderr(&warm));
    let clear = run(
        &fixture,
        &[
            "cache",
            "clear",
            "career_path_navigator",
            "--redis",
            &url,
            "--json",
        ],
    );
    assert!(clear.status.success(), "{}", stderr(&clear));
    assert_eq!(json_of(&clear)["deleted"], 0, "real entries only");
    let clear_mock = run(
        &fixture,
        &[
            "cache",
            "clear",
            "career_path_navigator",
            "--mock",
            "--redis",
            &url,
            "--json",
        ],
    );
    assert_eq!(json_of(&clear_mock)["deleted"], 1);
}

#[test]
fn a_bad_inputs_line_is_named_by_file_and_line() {
    let fixture = cached_fixture();
    let inputs = write_inputs(&fixture, &[line("1", "Nurse"), "{\"user\": ".to_string()]);
    let output = warm(&fixture, &inputs, &[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("inputs.jsonl:2: invalid JSON"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_inputs_line_with_an_unknown_field_is_named_by_file_and_line() {
    let fixture = cached_fixture();
    let inputs = write_inputs(&fixture, &[json!({"user": "1", "vars": {}}).to_string()]);
    let output = warm(&fixture, &inputs, &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("inputs.jsonl:1: unknown field \"vars\""),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_context_that_fails_is_reported_with_its_line_and_the_run_fails() {
    let fixture = cached_fixture();
    let inputs = write_inputs(
        &fixture,
        &[
            line("1", "Nurse"),
            json!({"user": "2", "variables": {}}).to_string(),
        ],
    );
    let output = warm(&fixture, &inputs, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stdout(&output));
    assert!(
        stdout(&output).contains("inputs.jsonl:2: [missing_variable]"),
        "{}",
        stdout(&output)
    );
    assert!(
        stdout(&output).contains("1 completed"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn a_concurrency_of_zero_is_a_usage_error() {
    let fixture = cached_fixture();
    let output = run(
        &fixture,
        &[
            "cache",
            "warm",
            "career_path_navigator",
            "--inputs",
            "x.jsonl",
            "--concurrency",
            "0",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--concurrency"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn clear_without_redis_explains_that_a_memory_cache_lives_in_its_process() {
    let fixture = cached_fixture();
    let output = run(&fixture, &["cache", "clear", "career_path_navigator"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("memory cache lives inside each"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn clear_of_an_unknown_version_names_the_known_ones() {
    let fixture = cached_fixture();
    let output = run(
        &fixture,
        &[
            "cache",
            "clear",
            "career_path_navigator",
            "--version",
            "9.9.9",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("9.9.9"), "{}", stderr(&output));
}

#[test]
fn stats_reads_hit_rate_and_savings_from_a_telemetry_log() {
    let fixture = cached_fixture();
    let log = fixture.root.join("log.jsonl").display().to_string();
    let inputs = write_inputs(&fixture, &[line("1", "Nurse"), line("2", " nurse ")]);
    let warm = run(
        &fixture,
        &[
            "cache",
            "warm",
            "career_path_navigator",
            "--inputs",
            &inputs,
            "--concurrency",
            "1",
            "--mock",
            "--telemetry",
            &log,
        ],
    );
    assert!(warm.status.success(), "{}", stderr(&warm));
    assert!(
        stdout(&warm).contains("in the memory cache"),
        "{}",
        stdout(&warm)
    );
    let text = run(&fixture, &["cache", "stats", "--telemetry", &log]);
    let table = stdout(&text);
    assert!(
        table.starts_with("read ") && table.lines().nth(1).unwrap().starts_with("feature "),
        "{table}"
    );
    assert!(table.contains("50.0%"), "{table}");
    let output = run(&fixture, &["cache", "stats", "--telemetry", &log, "--json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let lookups = json_of(&output)["lookups"].clone();
    assert_eq!(lookups[0]["lookups"], 2, "{lookups}");
    assert_eq!(lookups[0]["hits"], 1, "{lookups}");
    assert!(lookups[0]["saved_usd"].as_f64().unwrap() > 0.0, "{lookups}");
}

/// The trial's example: `cache stats nosuch --telemetry tw.jsonl` said "no lookups", exit 0.
#[test]
fn stats_of_an_unknown_feature_without_redis_is_unknown_feature() {
    let fixture = cached_fixture();
    let log = fixture.root.join("log.jsonl");
    fs::write(&log, "").unwrap();
    let log = log.display().to_string();
    let output = run(&fixture, &["cache", "stats", "nosuch", "--telemetry", &log]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("[unknown_feature]"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn stats_reports_unparseable_telemetry_lines_as_skipped() {
    let fixture = cached_fixture();
    let log = fixture.root.join("log.jsonl");
    fs::write(&log, "not json\n{\"half\": \n").unwrap();
    let log = log.display().to_string();
    let text = run(&fixture, &["cache", "stats", "--telemetry", &log]);
    assert!(text.status.success(), "{}", stderr(&text));
    assert!(
        stdout(&text).contains("skipped 2 unparseable"),
        "{}",
        stdout(&text)
    );
    let output = run(&fixture, &["cache", "stats", "--telemetry", &log, "--json"]);
    assert_eq!(json_of(&output)["lines_skipped"], 2, "{}", stdout(&output));
}

fn complete_on(fixture: &Fixture, url: &str) -> std::process::Output {
    run(
        fixture,
        &[
            "complete",
            "career_path_navigator",
            "--user",
            "42",
            "--vars",
            PROFILE,
            "--attr",
            "sector=healthcare",
            "--mock",
            "--redis",
            url,
        ],
    )
}

/// The trial's example: a hit printed `$0.000000` and no attempts, without saying why.
#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn complete_text_says_an_answer_came_from_the_response_cache_with_the_saved_cost() {
    let server = RedisServer::start();
    let fixture = cached_fixture();
    let first = complete_on(&fixture, &server.url());
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        !stdout(&first).contains("from the response cache"),
        "{}",
        stdout(&first)
    );
    let second = complete_on(&fixture, &server.url());
    assert!(second.status.success(), "{}", stderr(&second));
    let text = stdout(&second);
    let line = text
        .lines()
        .find(|line| line.starts_with("from the response cache: saved $"))
        .unwrap_or_else(|| panic!("{text}"));
    let saved: f64 = line["from the response cache: saved $".len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(saved > 0.0, "{line}");
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn complete_text_names_the_partition_of_a_cache_hit() {
    let server = RedisServer::start();
    let fixture = cached_fixture();
    fixture.edit_feature(|feature| feature["cache"]["partition_by"] = json!(["sector"]));
    complete_on(&fixture, &server.url());
    let second = complete_on(&fixture, &server.url());
    assert!(
        stdout(&second).contains("(partition sector=healthcare)"),
        "{}",
        stdout(&second)
    );
}

/// The trial's example: `--help` listed `cache  Print a shell completion script` and
/// `completions` without a description.
#[test]
fn top_level_help_describes_cache_and_completions_each_with_its_own_text() {
    let fixture = Fixture::new();
    let help = stdout(&run(&fixture, &["--help"]));
    let described = |command: &str| {
        help.lines()
            .find(|line| line.trim_start().starts_with(&format!("{command} ")))
            .map(|line| line.trim_start()[command.len()..].trim().to_string())
            .unwrap_or_default()
    };
    assert!(described("cache").contains("response cache"), "{help}");
    assert!(
        described("completions").contains("shell completion script"),
        "{help}"
    );
}

#[test]
fn every_cache_subcommand_option_and_feature_argument_has_help_text() {
    let fixture = Fixture::new();
    for command in ["warm", "stats", "clear"] {
        let help = stdout(&run(&fixture, &["cache", command, "--help"]));
        let undescribed: Vec<&str> = help
            .lines()
            .map(str::trim)
            .filter(|line| line.starts_with("--") || line.starts_with('<') || line.starts_with('['))
            // clap puts the text two spaces after the option; a bare option has none.
            .filter(|line| !line.contains("  "))
            .collect();
        assert!(
            undescribed.is_empty(),
            "cache {command}: no help for {undescribed:?}\n{help}"
        );
    }
}
