//! Delivery from the alerts thread: retries with backoff on 5xx, 429 and dropped connections,
//! a channel that keeps failing reported as an `alert.failed` line and a count, an unset
//! secret named, and requests never slowed by a channel that hangs.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::alert_engine::{
    breaker_alerts_fixture, lines_with_event, open_breaker, open_engine, set_env,
};
use prompt_config::telemetry::otlp::OtlpOptions;

use crate::support::alert_receiver::AlertReceiver;
use crate::support::fixture::context;
use crate::support::http_server::Reply;
use crate::support::otlp_collector::OtlpCollector;
use crate::support::temp_dir::TempDir;

const WAIT: Duration = Duration::from_secs(15);

fn slack_fixture(variable: &str) -> crate::support::fixture::Fixture {
    breaker_alerts_fixture(&json!({"team": {"type": "slack", "webhook_url_env": variable}}))
}

#[test]
fn a_receiver_answering_503_twice_gets_the_alert_on_the_third_request() {
    let slack = AlertReceiver::failing_then_ok(2, 503);
    set_env("PC_DL_RETRY_URL", &slack.url());
    let fixture = slack_fixture("PC_DL_RETRY_URL");
    let logs = TempDir::new("alerts_retry");
    let engine = open_engine(&fixture, &logs.log());

    open_breaker(&engine);
    assert_eq!(slack.wait_for(3, WAIT).len(), 3);
    engine.flush_telemetry();
    let sent = lines_with_event(&logs.log(), "alert.sent");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["prompt_config.alert.attempts"], 3);
    assert!(lines_with_event(&logs.log(), "alert.failed").is_empty());
}

#[test]
fn a_dropped_connection_is_retried() {
    let slack = AlertReceiver::dropping_then_ok(1);
    set_env("PC_DL_DROP_URL", &slack.url());
    let fixture = slack_fixture("PC_DL_DROP_URL");
    let logs = TempDir::new("alerts_drop");
    let engine = open_engine(&fixture, &logs.log());

    open_breaker(&engine);
    slack.wait_for(2, WAIT);
    engine.flush_telemetry();
    let sent = lines_with_event(&logs.log(), "alert.sent");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["prompt_config.alert.attempts"], 2);
}

#[test]
fn a_429_is_retried_after_its_retry_after() {
    let slack = AlertReceiver::throttled_then_ok(1, 1);
    set_env("PC_DL_429_URL", &slack.url());
    let fixture = slack_fixture("PC_DL_429_URL");
    let logs = TempDir::new("alerts_429");
    let engine = open_engine(&fixture, &logs.log());

    open_breaker(&engine);
    let first = slack.wait_for(1, WAIT);
    assert_eq!(first.len(), 1);
    let throttled_at = Instant::now();
    assert_eq!(slack.wait_for(2, WAIT).len(), 2);
    assert!(
        throttled_at.elapsed() >= Duration::from_millis(900),
        "retried after {:?}, before Retry-After: 1",
        throttled_at.elapsed()
    );
}

#[test]
fn a_channel_that_keeps_failing_is_an_alert_failed_line_and_a_failed_count() {
    let slack = AlertReceiver::answering(Reply::status(500));
    set_env("PC_DL_FAIL_URL", &slack.url());
    let fixture = slack_fixture("PC_DL_FAIL_URL");
    let logs = TempDir::new("alerts_fail");
    let engine = open_engine(&fixture, &logs.log());

    open_breaker(&engine);
    assert_eq!(
        slack.wait_for(5, WAIT).len(),
        5,
        "5 requests, then it gives up"
    );
    engine.flush_telemetry();
    let failed = lines_with_event(&logs.log(), "alert.failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["prompt_config.alert.channel"], "team");
    assert_eq!(failed[0]["prompt_config.alert.rule"], "openai-down");
    assert_eq!(failed[0]["prompt_config.alert.attempts"], 5);
    assert_eq!(failed[0]["http.response.status_code"], 500);
    let metrics = engine.metrics();
    assert_eq!(metrics.alert_deliveries.len(), 1);
    assert_eq!(metrics.alert_deliveries[0].channel, "team");
    assert_eq!(metrics.alert_deliveries[0].outcome, "failed");
    assert_eq!(metrics.alert_deliveries[0].deliveries, 1);
    assert!(
        engine.prometheus_text().contains(
            "prompt_config_alert_deliveries_total{channel=\"team\",outcome=\"failed\"} 1"
        )
    );
}

#[test]
fn an_unset_secret_is_an_alert_failed_line_naming_the_variable() {
    let fixture = slack_fixture("PC_DL_NEVER_SET");
    let logs = TempDir::new("alerts_unset");
    let engine = open_engine(&fixture, &logs.log());

    open_breaker(&engine);
    engine.flush_telemetry();
    let failed = lines_with_event(&logs.log(), "alert.failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0]["error.message"],
        "environment variable PC_DL_NEVER_SET is not set"
    );
    assert_eq!(failed[0]["prompt_config.alert.attempts"], 0);
}

#[test]
fn requests_are_not_slowed_by_a_channel_that_hangs() {
    let slack = AlertReceiver::answering(Reply::hang());
    set_env("PC_DL_HANG_URL", &slack.url());
    let fixture = slack_fixture("PC_DL_HANG_URL");
    let logs = TempDir::new("alerts_hang");
    let engine = open_engine(&fixture, &logs.log());

    open_breaker(&engine);
    assert_eq!(
        slack.wait_for(1, WAIT).len(),
        1,
        "the alerts thread is now stuck"
    );
    let mut slowest = Duration::ZERO;
    for _ in 0..50 {
        let started = Instant::now();
        engine
            .complete("career_path_navigator", &context("u2"))
            .expect("served by the mock");
        slowest = slowest.max(started.elapsed());
    }
    eprintln!("slowest of 50 complete() calls while the channel hangs: {slowest:?}");
    assert!(
        slowest < Duration::from_millis(250),
        "slowest call {slowest:?}"
    );
    // close gives the stuck delivery at most its 5 s, then returns.
    let closing = Instant::now();
    engine.close();
    assert!(
        closing.elapsed() < Duration::from_secs(7),
        "{:?}",
        closing.elapsed()
    );
    // The alert the receiver never answered is reported, not lost with the process.
    let failed = lines_with_event(&logs.log(), "alert.failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        failed[0]["error.message"],
        "not sent: the engine closed before the receiver answered"
    );
    assert_eq!(
        failed[0]["prompt_config.alert.attempts"], 1,
        "the unanswered request"
    );
}

#[test]
fn alert_lines_written_while_closing_are_exported_over_otlp() {
    let slack = AlertReceiver::ok();
    set_env("PC_DL_OTLP_URL", &slack.url());
    let fixture = slack_fixture("PC_DL_OTLP_URL");
    let logs = TempDir::new("alerts_otlp");
    let collector = OtlpCollector::start();
    let mut options = fixture.options().with_mock(true).with_telemetry(logs.log());
    options.otlp = Some(OtlpOptions::new(collector.endpoint()));
    let engine = prompt_config::Engine::open(options).expect("opens");

    open_breaker(&engine);
    // Closed at once: the alert is delivered, and its line written, during the close.
    engine.close();
    assert_eq!(lines_with_event(&logs.log(), "alert.sent").len(), 1);
    let exported: Vec<String> = collector
        .log_records()
        .into_iter()
        .map(|record| record.event_name)
        .collect();
    assert!(
        exported.iter().any(|event| event == "alert.sent"),
        "{exported:?}"
    );
}

#[test]
fn a_throttled_channel_does_not_delay_another_channels_alert() {
    // `slow` asks for a 30 s pause on every request; `fast` answers at once.
    let slow = AlertReceiver::answering(Reply::status(429).header("retry-after", "30"));
    let fast = AlertReceiver::ok();
    set_env("PC_DL_SLOW_URL", &slow.url());
    set_env("PC_DL_FAST_URL", &fast.url());
    let fixture = breaker_alerts_fixture(&json!({
        "a-slow": {"type": "slack", "webhook_url_env": "PC_DL_SLOW_URL"},
        "b-fast": {"type": "slack", "webhook_url_env": "PC_DL_FAST_URL"},
    }));
    let logs = TempDir::new("alerts_throttled");
    let engine = open_engine(&fixture, &logs.log());

    open_breaker(&engine);
    assert_eq!(
        slow.wait_for(1, WAIT).len(),
        1,
        "the slow channel is waiting"
    );
    let started = Instant::now();
    assert_eq!(fast.wait_for(1, WAIT).len(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the fast channel waited {:?} behind the slow one",
        started.elapsed()
    );
}

#[test]
fn an_alert_still_waiting_on_retry_after_at_close_is_an_alert_failed_line() {
    let slow = AlertReceiver::answering(Reply::status(429).header("retry-after", "30"));
    set_env("PC_DL_CLOSE_URL", &slow.url());
    let fixture = slack_fixture("PC_DL_CLOSE_URL");
    let logs = TempDir::new("alerts_close_waiting");
    let engine = open_engine(&fixture, &logs.log());

    open_breaker(&engine);
    assert_eq!(slow.wait_for(1, WAIT).len(), 1);
    let closing = Instant::now();
    engine.close();
    assert!(
        closing.elapsed() < Duration::from_secs(2),
        "close waited {:?} for a 30 s Retry-After it could never honour",
        closing.elapsed()
    );
    let failed = lines_with_event(&logs.log(), "alert.failed");
    assert_eq!(failed.len(), 1, "the alert is reported, not lost");
    assert_eq!(failed[0]["http.response.status_code"], 429);
    assert_eq!(failed[0]["prompt_config.alert.attempts"], 1);
}
