//! `prompt-config load` (issue 11): a fixed arrival rate against `complete()`, reported as a
//! table or one JSON object; bad arguments and inputs files are usage errors (exit 2) naming
//! the argument or `file:line`; `--redis URL` puts the run on shared state.

use std::fs;

use serde_json::Value;

use crate::support::cli::{PROFILE, run, stderr, stdout};
use crate::support::fixture::Fixture;
use crate::support::one_feature::OneFeature;
use crate::support::redis_server::RedisServer;

const FEATURE: &str = "career_path_navigator";

/// `load career_path_navigator --mock` with `extra` arguments.
fn load_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["load", FEATURE, "--mock"];
    args.extend_from_slice(extra);
    args
}

/// Runs a load that must succeed and returns its JSON report.
fn load_json(fixture: &Fixture, extra: &[&str]) -> Value {
    let mut args = load_args(extra);
    args.push("--json");
    let output = run(fixture, &args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    serde_json::from_str(&stdout(&output)).expect("one JSON object")
}

/// Asserts a usage error (exit 2) whose message contains every one of `needles`.
fn assert_usage_error(fixture: &Fixture, args: &[&str], needles: &[&str]) {
    let output = run(fixture, args);
    let error = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {error}");
    assert!(!error.contains("panicked"), "{args:?}: {error}");
    for needle in needles {
        assert!(
            error.contains(needle),
            "{args:?} should name {needle}: {error}"
        );
    }
}

#[test]
fn a_short_mock_run_sends_rps_times_duration_requests_and_reports_every_field() {
    let fixture = Fixture::new();
    let report = load_json(&fixture, &["--rps", "50", "--duration", "1s"]);
    assert_eq!(report["requests"], 50, "{report}");
    assert_eq!(report["answered"], 50, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_eq!(report["errors_by_kind"], serde_json::json!({}), "{report}");
    assert!(report["throughput_rps"].as_f64().unwrap() > 0.0, "{report}");
    for percentile in ["p50", "p95", "p99"] {
        assert!(
            report["latency_ms"][percentile].as_f64().unwrap() > 0.0,
            "{report}"
        );
    }
    assert_eq!(report["cache_hit_rate"], 0.0, "{report}");
    assert!(report["cost_usd"].as_f64().unwrap() > 0.0, "{report}");
    assert_eq!(report["state"], "memory", "{report}");
}

#[test]
fn a_fractional_rate_over_a_duration_in_milliseconds_sends_the_rounded_product() {
    let fixture = Fixture::new();
    let report = load_json(&fixture, &["--rps", "2.5", "--duration", "1600ms"]);
    assert_eq!(report["requests"], 4, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
}

#[test]
fn the_table_shows_throughput_percentiles_errors_cache_hits_and_cost() {
    let fixture = Fixture::new();
    let output = run(
        &fixture,
        &load_args(&["--rps", "20", "--duration", "500ms"]),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let table = stdout(&output);
    for row in [
        "requests",
        "throughput",
        "latency p50",
        "latency p95",
        "latency p99",
        "errors",
        "cache hits",
        "cost",
    ] {
        assert!(table.contains(row), "{row}: {table}");
    }
}

#[test]
fn progress_lines_go_to_stderr_once_a_second() {
    let fixture = Fixture::new();
    let output = run(
        &fixture,
        &load_args(&["--rps", "10", "--duration", "1500ms"]),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let progress = stderr(&output);
    assert!(progress.contains("1 s: sent"), "{progress}");
    assert!(progress.contains("errors 0"), "{progress}");
}

#[test]
fn an_arrival_that_finds_every_worker_busy_and_the_queue_full_counts_as_dropped() {
    let fixture = Fixture::new();
    // One worker and one queue slot against mock answers taking 350 ms or more.
    let report = load_json(
        &fixture,
        &["--rps", "40", "--duration", "1s", "--concurrency", "1"],
    );
    let dropped = report["errors_by_kind"]["dropped"].as_u64().unwrap_or(0);
    assert!(dropped > 20, "{report}");
    assert_eq!(report["requests"], 40, "{report}");
    assert_eq!(
        report["answered"].as_u64().unwrap() + report["errors"].as_u64().unwrap(),
        40,
        "{report}"
    );
}

#[test]
fn rates_that_are_zero_negative_not_numbers_or_huge_are_usage_errors_naming_rps() {
    let fixture = Fixture::new();
    for rate in ["0", "-5", "fast", "NaN", "1e9"] {
        assert_usage_error(
            &fixture,
            &load_args(&["--rps", rate, "--duration", "1s"]),
            &["--rps"],
        );
    }
}

#[test]
fn durations_that_are_zero_negative_or_unknown_are_usage_errors_naming_duration() {
    let fixture = Fixture::new();
    for duration in ["0s", "0", "-1s", "10 parsecs", "1d", "ms"] {
        assert_usage_error(
            &fixture,
            &load_args(&["--rps", "5", "--duration", duration]),
            &["--duration"],
        );
    }
}

#[test]
fn a_concurrency_of_zero_or_a_word_is_a_usage_error_naming_concurrency() {
    let fixture = Fixture::new();
    for workers in ["0", "-2", "many", "100000"] {
        assert_usage_error(
            &fixture,
            &load_args(&["--rps", "5", "--duration", "1s", "--concurrency", workers]),
            &["--concurrency"],
        );
    }
}

#[test]
fn a_rate_and_duration_that_send_nothing_are_a_usage_error() {
    let fixture = Fixture::new();
    assert_usage_error(
        &fixture,
        &load_args(&["--rps", "0.1", "--duration", "1s"]),
        &["--rps", "--duration"],
    );
}

#[test]
fn a_missing_inputs_file_is_a_usage_error_naming_it() {
    let fixture = Fixture::new();
    assert_usage_error(
        &fixture,
        &load_args(&["--rps", "5", "--duration", "1s", "--inputs", "absent.jsonl"]),
        &["--inputs", "absent.jsonl"],
    );
}

#[test]
fn a_line_that_is_not_json_names_the_file_and_line() {
    let fixture = Fixture::new();
    let line = format!(r#"{{"user_id": 1, "variables": {PROFILE}}}"#);
    fs::write(fixture.root.join("in.jsonl"), format!("{line}\n\n{{oops\n")).unwrap();
    assert_usage_error(
        &fixture,
        &load_args(&["--rps", "5", "--duration", "1s", "--inputs", "in.jsonl"]),
        &["--inputs in.jsonl:3", "invalid JSON"],
    );
}

#[test]
fn a_line_that_is_not_a_context_names_the_file_and_line() {
    let fixture = Fixture::new();
    let line = format!(r#"{{"user_id": 1, "variables": {PROFILE}}}"#);
    for (bad, needle) in [
        (
            r#"{"user_id": 2.5}"#,
            r#""user_id" must be a string or an integer"#,
        ),
        (
            r#"{"user_id": 1, "colour": "red"}"#,
            r#"unknown field "colour""#,
        ),
        ("[1]", "not a context"),
        (
            r#"{"variables": {}}"#,
            r#""user_id" (or "user") is missing"#,
        ),
    ] {
        fs::write(fixture.root.join("in.jsonl"), format!("{line}\n{bad}\n")).unwrap();
        assert_usage_error(
            &fixture,
            &load_args(&["--rps", "5", "--duration", "1s", "--inputs", "in.jsonl"]),
            &["in.jsonl:2", needle],
        );
    }
}

#[test]
fn an_inputs_file_with_no_context_is_a_usage_error() {
    let fixture = Fixture::new();
    fs::write(fixture.root.join("in.jsonl"), "\n  \n").unwrap();
    assert_usage_error(
        &fixture,
        &load_args(&["--rps", "5", "--duration", "1s", "--inputs", "in.jsonl"]),
        &["in.jsonl", "no context"],
    );
}

#[test]
fn contexts_from_an_inputs_file_are_sent_in_turn() {
    let fixture = Fixture::new();
    let lines = [
        format!(r#"{{"user_id": 1, "variables": {PROFILE}}}"#),
        format!(
            r#"{{"user": "u-2", "attributes": {{"sector": "finance"}}, "variables": {PROFILE}}}"#
        ),
    ];
    fs::write(fixture.root.join("in.jsonl"), lines.join("\n")).unwrap();
    let report = load_json(
        &fixture,
        &["--rps", "20", "--duration", "500ms", "--inputs", "in.jsonl"],
    );
    assert_eq!(report["requests"], 10, "{report}");
    assert_eq!(report["answered"], 10, "{report}");
}

#[test]
fn a_feature_the_built_in_profiles_do_not_fit_asks_for_inputs() {
    let providers = serde_json::json!({"providers": {"mock": {"kind": "mock",
        "models": {"m": {"input_per_million": 1.0, "output_per_million": 2.0}}}}});
    let config = OneFeature::new(&providers, "mock", "m");
    let output = crate::support::cli::run_in(
        &config.root,
        &["load", "ask", "--rps", "5", "--duration", "1s"],
    );
    let error = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{error}");
    assert!(error.contains("--inputs"), "{error}");
}

#[test]
fn with_redis_the_run_uses_redis_state_and_answers_every_call() {
    let redis = RedisServer::start();
    let fixture = Fixture::new();
    let report = load_json(
        &fixture,
        &["--rps", "20", "--duration", "1s", "--redis", &redis.url()],
    );
    assert_eq!(report["state"], "redis", "{report}");
    assert_eq!(report["requests"], 20, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
}

#[test]
fn calls_refused_by_a_rate_limit_are_counted_under_their_error_kind() {
    let providers = serde_json::json!({"providers": {"mock": {"kind": "mock",
        "models": {"m": {"input_per_million": 1.0, "output_per_million": 2.0}},
        "rate_limit": {"requests_per_minute": 2, "max_wait_ms": 0},
        "mock": {"latency_ms": 1, "jitter_ms": 0}}}});
    let config = OneFeature::new(&providers, "mock", "m");
    fs::write(
        config.root.join("in.jsonl"),
        r#"{"user": 1, "variables": {"question": "why?"}}"#,
    )
    .unwrap();
    let output = crate::support::cli::run_in(
        &config.root,
        &[
            "load",
            "ask",
            "--rps",
            "20",
            "--duration",
            "1s",
            "--inputs",
            "in.jsonl",
            "--json",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let limited = report["errors_by_kind"]["rate_limited"]
        .as_u64()
        .unwrap_or(0);
    assert!(limited >= 15, "{report}");
    assert_eq!(report["errors"].as_u64().unwrap(), limited, "{report}");
    assert_eq!(report["requests"], 20, "{report}");
}

#[test]
fn telemetry_records_every_call_of_the_run() {
    let fixture = Fixture::new();
    let log = fixture.root.join("load.jsonl");
    let log_arg = log.to_str().unwrap();
    load_json(
        &fixture,
        &["--rps", "20", "--duration", "500ms", "--telemetry", log_arg],
    );
    let requests = fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|line| line.contains(r#""event":"llm.request""#))
        .count();
    assert_eq!(requests, 10);
}

#[test]
fn a_usage_error_with_json_is_one_json_object_on_stdout() {
    let fixture = Fixture::new();
    let output = run(
        &fixture,
        &load_args(&["--rps", "0", "--duration", "1s", "--json"]),
    );
    assert_eq!(output.status.code(), Some(2));
    let error: Value = serde_json::from_str(&stdout(&output)).expect("JSON on stdout");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--rps"),
        "{error}"
    );
}

#[test]
fn a_first_context_the_feature_refuses_names_the_inputs_file_and_line() {
    let fixture = Fixture::new();
    fs::write(fixture.root.join("in.jsonl"), "\n\n{\"user_id\": 1}").unwrap();
    let output = run(
        &fixture,
        &load_args(&["--rps", "5", "--duration", "1s", "--inputs", "in.jsonl"]),
    );
    let error = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{error}");
    assert!(error.contains("--inputs in.jsonl:3"), "{error}");
}

/// Trial 2, finding 6: `--rps 20 --concurrency 1` printed `done 19, 19 rps` after a second
/// while about one answer a second came back: dropped arrivals were counted as done.
#[test]
fn progress_counts_dropped_arrivals_as_errors_not_as_done_or_answers() {
    let fixture = Fixture::new();
    let output = run(
        &fixture,
        &load_args(&["--rps", "20", "--duration", "2s", "--concurrency", "1"]),
    );
    let progress = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{progress}");
    let lines: Vec<&str> = progress
        .lines()
        .filter(|l| l.contains(" s: sent"))
        .collect();
    assert!(!lines.is_empty(), "{progress}");
    for line in lines {
        // `   1 s: sent 21, done 1, errors 18, 1 rps`
        let numbers: Vec<u64> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|part| part.parse().ok())
            .collect();
        let [seconds, sent, done, errors, rps] = numbers[..] else {
            panic!("{line}");
        };
        // One worker on mock answers of 350 ms or more: at most 3 calls back per second.
        assert!(done <= 3 * seconds, "{line}");
        assert!(rps <= 3, "{line}");
        // Not yet done or dropped: the call in flight, the one queued for the worker and the
        // arrival being handed over when the line is printed.
        assert!(errors >= sent.saturating_sub(done + 3), "{line}");
    }
}

/// Trial 2, finding 8: `load nosuch` said the built-in profiles fit career_path_navigator and
/// asked for --inputs, and read the inputs before looking at the feature.
#[test]
fn an_unknown_feature_is_unknown_feature_naming_the_known_ones_without_an_inputs_hint() {
    let fixture = Fixture::new();
    let output = run(
        &fixture,
        &["load", "nosuch", "--rps", "5", "--duration", "1s", "--mock"],
    );
    let error = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{error}");
    assert!(error.contains("[unknown_feature]"), "{error}");
    assert!(error.contains(FEATURE), "{error}");
    assert!(!error.contains("--inputs"), "{error}");
}

#[test]
fn an_unknown_feature_is_checked_before_the_inputs_file_is_read() {
    let fixture = Fixture::new();
    // Not even a file: the feature is checked first.
    let output = run(
        &fixture,
        &[
            "load",
            "nosuch",
            "--rps",
            "5",
            "--duration",
            "1s",
            "--mock",
            "--inputs",
            "absent.jsonl",
            "--json",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let error: Value = serde_json::from_str(&stdout(&output)).expect("JSON on stdout");
    assert_eq!(error["error"]["kind"], "unknown_feature", "{error}");
    assert_eq!(error["error"]["details"]["known"][0], FEATURE, "{error}");
    assert!(
        !error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--inputs"),
        "{error}"
    );
}

/// Trial 2, finding 3: a file starting with a UTF-8 BOM, which `cache warm` reads, was
/// `not JSON` at line 1 for `load`.
#[test]
fn an_inputs_file_starting_with_a_bom_is_read() {
    let fixture = Fixture::new();
    let line = format!(r#"{{"user_id": 1, "variables": {PROFILE}}}"#);
    fs::write(fixture.root.join("in.jsonl"), format!("\u{FEFF}{line}\n")).unwrap();
    let report = load_json(
        &fixture,
        &["--rps", "10", "--duration", "500ms", "--inputs", "in.jsonl"],
    );
    assert_eq!(report["answered"], 5, "{report}");
}

/// Trial 2, finding 5: a non-UTF-8 file said `stream did not contain valid UTF-8`, no line.
#[test]
fn a_line_that_is_not_utf8_names_the_file_and_line() {
    let fixture = Fixture::new();
    let line = format!(r#"{{"user_id": 1, "variables": {PROFILE}}}"#);
    let mut bytes = format!("{line}\n{line}\n").into_bytes();
    bytes.extend_from_slice(b"{\"user\": \"caf\xe9\"}\n");
    fs::write(fixture.root.join("in.jsonl"), bytes).unwrap();
    assert_usage_error(
        &fixture,
        &load_args(&["--rps", "5", "--duration", "1s", "--inputs", "in.jsonl"]),
        &["--inputs in.jsonl:3", "not UTF-8"],
    );
}

/// Trial 2, finding 4: a line with both `user` and `user_id` got serde's
/// ``unknown field `user` ``.
#[test]
fn a_line_with_both_user_and_user_id_is_a_usage_error_saying_give_one() {
    let fixture = Fixture::new();
    fs::write(
        fixture.root.join("in.jsonl"),
        format!(r#"{{"user_id": 1, "user": 1, "variables": {PROFILE}}}"#),
    )
    .unwrap();
    assert_usage_error(
        &fixture,
        &load_args(&["--rps", "5", "--duration", "1s", "--inputs", "in.jsonl"]),
        &["in.jsonl:1", r#"both "user_id" and "user""#],
    );
}

#[test]
fn an_empty_user_is_a_user_as_complete_has_it() {
    let fixture = Fixture::new();
    fs::write(
        fixture.root.join("in.jsonl"),
        format!(r#"{{"user": "", "variables": {PROFILE}}}"#),
    )
    .unwrap();
    let report = load_json(
        &fixture,
        &["--rps", "10", "--duration", "300ms", "--inputs", "in.jsonl"],
    );
    assert_eq!(report["answered"], 3, "{report}");
}

/// Trial 2, finding 9: `--rps 200 --duration 24h` was refused by a cap the docs never named.
#[test]
fn a_run_past_ten_million_requests_is_a_usage_error_naming_the_cap() {
    let fixture = Fixture::new();
    assert_usage_error(
        &fixture,
        &load_args(&["--rps", "200", "--duration", "24h"]),
        &["--rps × --duration", "17280000", "at most 10000000 per run"],
    );
}

#[test]
fn the_help_of_rps_and_duration_names_the_ten_million_request_cap() {
    let fixture = Fixture::new();
    let output = run(&fixture, &["load", "--help"]);
    let help = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{help}");
    assert_eq!(
        help.matches("at most 10,000,000 requests per run").count(),
        2,
        "{help}"
    );
}

/// Trial 2, finding 7: `--duration -5s` got clap's `unexpected argument '-5' found` (only
/// `--duration=-5s` reached the command's own message).
#[test]
fn a_negative_duration_after_a_space_gets_the_duration_message() {
    let fixture = Fixture::new();
    assert_usage_error(
        &fixture,
        &load_args(&["--rps", "5", "--duration", "-5s"]),
        &["--duration", "must be a duration above 0"],
    );
}

#[test]
fn negative_rates_and_worker_counts_after_a_space_get_their_own_messages() {
    let fixture = Fixture::new();
    for (args, needle) in [
        (
            ["--rps", "-inf", "--duration", "1s"],
            "requests per second above 0",
        ),
        (
            ["--rps", "-0.5", "--duration", "1s"],
            "requests per second above 0",
        ),
        (
            ["--rps", "5", "--duration", "-1m"],
            "must be a duration above 0",
        ),
    ] {
        let output = run(&fixture, &load_args(&args));
        let error = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {error}");
        assert!(!error.contains("unexpected argument"), "{args:?}: {error}");
        assert!(error.contains(needle), "{args:?}: {error}");
    }
    assert_usage_error(
        &fixture,
        &load_args(&["--rps", "5", "--duration", "1s", "--concurrency", "-3"]),
        &["--concurrency", "worker threads from 1"],
    );
}

#[test]
fn an_option_where_a_number_belongs_says_the_value_is_missing() {
    let fixture = Fixture::new();
    assert_usage_error(
        &fixture,
        &["load", FEATURE, "--rps", "--mock", "--duration", "1s"],
        &["--rps", "a value is required, not the option --mock"],
    );
}

/// Trial 2, finding 11: the header said "on 1 workers".
#[test]
fn the_header_says_one_worker_in_the_singular() {
    let fixture = Fixture::new();
    let output = run(
        &fixture,
        &load_args(&["--rps", "2", "--duration", "1s", "--concurrency", "1"]),
    );
    let table = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(table.contains(" on 1 worker, "), "{table}");
}

/// Trial 2, finding 11: with Redis down the report still said `"state": "redis"`, nothing more.
#[test]
fn a_run_whose_redis_is_unreachable_reports_the_state_degraded() {
    let fixture = Fixture::new();
    let report = load_json(
        &fixture,
        &[
            "--rps",
            "4",
            "--duration",
            "500ms",
            "--redis",
            "redis://127.0.0.1:1/",
        ],
    );
    assert_eq!(report["state"], "redis", "{report}");
    assert_eq!(report["state_degraded"], true, "{report}");
    assert!(
        report["state_degradations"].as_u64().unwrap() >= 1,
        "{report}"
    );
}

#[test]
fn the_table_of_a_degraded_run_has_a_state_degraded_line() {
    let fixture = Fixture::new();
    let output = run(
        &fixture,
        &load_args(&[
            "--rps",
            "4",
            "--duration",
            "500ms",
            "--redis",
            "redis://127.0.0.1:1/",
        ]),
    );
    let table = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(table.contains("state         degraded"), "{table}");
}

#[test]
fn a_run_on_memory_state_or_a_healthy_redis_is_not_degraded() {
    let fixture = Fixture::new();
    let report = load_json(&fixture, &["--rps", "4", "--duration", "500ms"]);
    assert_eq!(report["state_degraded"], false, "{report}");
    assert_eq!(report["state_degradations"], 0, "{report}");
    let redis = RedisServer::start();
    let report = load_json(
        &fixture,
        &["--rps", "4", "--duration", "500ms", "--redis", &redis.url()],
    );
    assert_eq!(report["state_degraded"], false, "{report}");
}
