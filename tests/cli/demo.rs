//! The demo tells the truth, and the same story on every run: its own fresh telemetry, no
//! timestamps in the future, breaker states spelt as in telemetry, a table that shows the
//! model and says what its columns count, within 100 columns.

use std::fs;

use crate::support::cli::{run_in, stderr, stdout};
use crate::support::fixture::Fixture;
use chrono::{DateTime, Utc};
use serde_json::Value;

fn demo(fixture: &Fixture, extra: &[&str]) -> String {
    let mut args = vec!["demo"];
    args.extend(extra);
    let output = run_in(&fixture.root, &args);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    stdout(&output)
}

#[test]
fn a_second_run_in_the_same_folder_prints_the_same_story() {
    let fixture = Fixture::new();
    let first = demo(&fixture, &[]);
    let second = demo(&fixture, &[]);
    assert_eq!(first, second);
}

#[test]
fn an_earlier_log_with_todays_spend_does_not_change_the_story() {
    let clean = Fixture::new();
    let expected = demo(&clean, &["--requests", "60"]);

    let fixture = Fixture::new();
    let spend = format!(
        r#"{{"event":"llm.request","timestamp":"{}","request_id":"old","gen_ai.prompt.name":"career_path_navigator","prompt_config.outcome":"success","prompt_config.cost_usd":15.0}}"#,
        Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    fs::write(
        fixture.root.join("prompt_config_telemetry.jsonl"),
        spend + "\n",
    )
    .unwrap();
    assert_eq!(demo(&fixture, &["--requests", "60"]), expected);
}

#[test]
fn the_demo_log_holds_only_this_run() {
    let fixture = Fixture::new();
    demo(&fixture, &["--requests", "40"]);
    let once = fs::read_to_string(fixture.root.join("prompt_config_telemetry.jsonl")).unwrap();
    demo(&fixture, &["--requests", "40"]);
    let twice = fs::read_to_string(fixture.root.join("prompt_config_telemetry.jsonl")).unwrap();
    assert_eq!(once.lines().count(), twice.lines().count());
}

#[test]
fn simulated_timestamps_never_run_into_the_wall_clocks_future() {
    let fixture = Fixture::new();
    demo(&fixture, &["--telemetry", "demo.jsonl"]);
    let finished = Utc::now();
    let log = fs::read_to_string(fixture.root.join("demo.jsonl")).unwrap();
    let mut latest: Option<DateTime<Utc>> = None;
    for line in log.lines() {
        let value: Value = serde_json::from_str(line).unwrap();
        let stamp = DateTime::parse_from_rfc3339(value["timestamp"].as_str().unwrap()).unwrap();
        latest = latest.max(Some(stamp.with_timezone(&Utc)));
    }
    let latest = latest.expect("the demo wrote telemetry");
    assert!(
        latest <= finished,
        "{latest} is after the run ended at {finished}"
    );
    // ... and the story ends about now, not hours ago.
    assert!(
        finished - latest < chrono::Duration::seconds(60),
        "{latest} vs {finished}"
    );
}

#[test]
fn breaker_states_are_snake_case_like_telemetry() {
    let fixture = Fixture::new();
    let text = demo(&fixture, &["--requests", "120"]);
    assert!(
        text.contains("circuit openai: open -> half_open (open_timeout_elapsed)"),
        "{text}"
    );
    assert!(
        text.contains("breakers now: anthropic closed, mock closed, openai closed"),
        "{text}"
    );
    for camel in ["Closed", "HalfOpen", "Open "] {
        assert!(!text.contains(camel), "{camel:?} in:\n{text}");
    }
}

#[test]
fn the_table_has_a_model_column_that_shows_the_downgrade() {
    let fixture = Fixture::new();
    let text = demo(&fixture, &[]);
    let header = text
        .lines()
        .find(|line| line.starts_with("provider "))
        .unwrap();
    assert!(
        header.contains(" model ") && header.contains(" failed "),
        "{header}"
    );
    // The budget's downgrade moves traffic to the cheaper chain: its models get rows of their own.
    for (provider, model) in [
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-4.1-nano"),
        ("anthropic", "claude-3-5-haiku-20241022"),
    ] {
        let row = format!("{provider:<9} {model} ");
        assert!(
            text.lines().any(|line| line.starts_with(&row)),
            "no row for {model}:\n{text}"
        );
    }
}

#[test]
fn the_table_says_its_failed_column_counts_attempts_answered_by_failover() {
    let fixture = Fixture::new();
    let text = demo(&fixture, &[]);
    assert!(
        text.contains("failed: attempts that failed")
            && text.contains("answered by failover to the next model of the chain"),
        "{text}"
    );
}

#[test]
fn every_line_fits_in_100_columns() {
    let fixture = Fixture::new();
    for requests in ["40", "200", "1000"] {
        let text = demo(&fixture, &["--requests", requests]);
        for line in text.lines() {
            assert!(
                line.chars().count() <= 100,
                "{} columns: {line}",
                line.chars().count()
            );
        }
    }
}

#[test]
fn indentation_is_consistent() {
    let fixture = Fixture::new();
    let text = demo(&fixture, &[]);
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        assert!(indent == 0 || indent == 3, "indented by {indent}: {line:?}");
    }
}

#[test]
fn the_json_version_shows_a_parsed_answer_and_the_repair_rate() {
    let fixture = Fixture::new();
    let text = demo(&fixture, &["--requests", "200"]);
    assert!(
        text.contains("6. structured output: version 2.2.0"),
        "{text}"
    );
    let parsed = text
        .lines()
        .skip_while(|line| !line.contains("a parsed answer ("))
        .nth(1)
        .unwrap_or_default();
    assert!(parsed.starts_with("   1. "), "{text}");
    assert!(parsed.contains(": first step "), "{parsed}");
    let answers = text
        .lines()
        .find(|line| line.starts_with("   answers: "))
        .unwrap_or_default();
    assert!(
        answers.contains(" invalid (") && answers.contains(" repaired on the same model ("),
        "{text}"
    );
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        assert!(
            line.chars().count() <= 100 && (indent == 0 || indent == 3),
            "{line:?}"
        );
    }
}

#[test]
fn the_structured_step_is_left_out_without_a_json_version() {
    let fixture = Fixture::new();
    // 2.2.0 without its output schema (and the hashes that cover it): a prose version.
    fixture.edit_feature(|feature| {
        let version = &mut feature["versions"]["2.2.0"];
        if let Some(fields) = version.as_object_mut() {
            fields.remove("output");
        }
        if let Some(hashes) = version["sha256"].as_object_mut() {
            hashes.remove("output");
            hashes.remove("output.schema.json");
        }
    });
    let text = demo(&fixture, &["--requests", "40"]);
    assert!(!text.contains("structured output"), "{text}");
}

#[test]
fn with_alerts_configured_each_alert_reaches_its_channel_once() {
    // The demo rehearses silently before its real run: the rehearsal must not page anyone.
    let slack = crate::support::alert_receiver::AlertReceiver::ok();
    let fixture = Fixture::new();
    let alerts = serde_json::json!({
        "channels": {"team": {"type": "slack", "webhook_url_env": "PC_DEMO_SLACK_URL"}},
        "rules": [
            {"name": "budget", "type": "budget", "severity": "warning", "channels": ["team"]},
            {"name": "down", "type": "breaker_open", "severity": "critical", "channels": ["team"]}
        ]
    });
    fs::write(
        fixture.config_dir().join("alerts.json"),
        serde_json::to_string(&alerts).unwrap(),
    )
    .unwrap();
    let mut command = crate::support::cli::command(&fixture.root);
    command.args(["demo", "--requests", "60"]);
    command.env("PC_DEMO_SLACK_URL", slack.url());
    let output = command.output().expect("the binary runs");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let log = fs::read_to_string(fixture.root.join("prompt_config_telemetry.jsonl")).unwrap();
    let sent = log
        .lines()
        .filter(|line| line.contains(r#""event":"alert.sent""#))
        .count();
    assert!(sent > 0, "the demo's breaker and budget fire alerts");
    assert_eq!(
        slack.requests().len(),
        sent,
        "one request per alert.sent line"
    );
}
