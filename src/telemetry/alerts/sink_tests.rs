//! The alerts sink and its thread's delivery reporting, against loopback receivers (the
//! integration tests' std-only HTTP server, included by path).

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::*;
use crate::client::SystemClock;
use crate::telemetry::alerts::config::ChannelConfig;
use crate::telemetry::alerts::tests::sample_alert;
use crate::telemetry::event::{EventBody, SCHEMA_VERSION};
use crate::telemetry::metrics::Metrics;
use crate::telemetry::recent::RecentRequests;

#[path = "../../../tests/support/http_server.rs"]
mod http_server;

use http_server::{Reply, TestServer};

/// A secret with a recognisable shape, looked for in every output.
const SECRET_PATH: &str = "T0/B0/SECRET-xoxb-77aa";

/// Collects what the telemetry writes, in place of the log.
#[derive(Default)]
struct Recorded(Mutex<Vec<Arc<TelemetryRecord>>>);

impl RecordSink for Recorded {
    fn accept(&self, record: &Arc<TelemetryRecord>) {
        self.0.lock().push(Arc::clone(record));
    }
    fn flush(&self, _: Duration) -> bool {
        true
    }
    fn close(&self, _: Duration) {}
    fn after_fork(&self) {}
}

fn telemetry(recorded: &Arc<Recorded>) -> Arc<Telemetry> {
    Arc::new(Telemetry {
        writer: None,
        sinks: vec![Arc::clone(recorded) as Arc<dyn RecordSink>],
        metrics: Metrics::new(),
        recent: RecentRequests::default(),
    })
}

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        request_timeout: Duration::from_secs(2),
    }
}

fn worker(url: String, telemetry: &Arc<Telemetry>) -> Worker {
    let config = AlertsConfig {
        channels: BTreeMap::from([(
            "ops".to_string(),
            ChannelConfig::Slack {
                webhook_url_env: "OPS_SLACK_URL".into(),
            },
        )]),
        rules: Vec::new(),
    };
    let deadline = Arc::new(Deadline::new());
    let post = Post::new(
        fast_policy(),
        crate::telemetry::alerts::channel::lookup_from(move |_: &str| Some(url.clone())),
        Arc::new(SystemClock),
        Arc::downgrade(telemetry),
        Arc::clone(&deadline),
    );
    Worker {
        rules: AlertRules::new(&config, Dedup::new(None)),
        couriers: Couriers::new(Arc::new(channels(&config)), post),
        clock: Arc::new(SystemClock),
        telemetry: Arc::downgrade(telemetry),
        progress: Arc::new(Progress::default()),
        deadline,
    }
}

/// Hands `alerts` to the couriers and waits until they have reported.
fn deliver_and_settle(mut worker: Worker, alerts: Vec<Alert>) {
    worker.deliver_all(alerts);
    assert!(
        worker.settle(),
        "the couriers settle within SINK_CLOSE_TIMEOUT"
    );
}

fn record(event: &'static str) -> Arc<TelemetryRecord> {
    Arc::new(TelemetryRecord {
        schema_version: SCHEMA_VERSION,
        timestamp: chrono::Utc::now(),
        event,
        request_id: String::new(),
        body: EventBody::Reload(crate::telemetry::event::ReloadFields {
            outcome: "success",
            config_revision: "r1".into(),
            problems: Vec::new(),
        }),
    })
}

#[test]
fn a_delivered_alert_is_an_alert_sent_line_and_a_sent_count() {
    let receiver = TestServer::start_with_fallback(Vec::new(), Reply::text(200, "ok"));
    let recorded = Arc::new(Recorded::default());
    let telemetry = telemetry(&recorded);
    deliver_and_settle(
        worker(format!("{}/{SECRET_PATH}", receiver.url()), &telemetry),
        vec![sample_alert()],
    );

    let lines = recorded.0.lock().clone();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].event, "alert.sent");
    let line = serde_json::to_value(&*lines[0]).unwrap();
    assert_eq!(line["prompt_config.alert.channel"], "ops");
    assert_eq!(line["prompt_config.alert.attempts"], 1);
    assert_eq!(line["http.response.status_code"], 200);
    assert_eq!(receiver.requests().len(), 1);
    let metrics = telemetry.metrics.snapshot();
    assert_eq!(metrics.alert_deliveries.len(), 1);
    assert_eq!(metrics.alert_deliveries[0].outcome, "sent");
}

#[test]
fn a_channel_that_keeps_failing_is_an_alert_failed_line_and_count_without_its_url() {
    let receiver = TestServer::start_with_fallback(Vec::new(), Reply::status(503));
    let recorded = Arc::new(Recorded::default());
    let telemetry = telemetry(&recorded);
    deliver_and_settle(
        worker(format!("{}/{SECRET_PATH}", receiver.url()), &telemetry),
        vec![sample_alert()],
    );

    assert_eq!(receiver.requests().len(), 3, "the policy's 3 attempts");
    let lines = recorded.0.lock().clone();
    assert_eq!(lines[0].event, "alert.failed");
    let text = serde_json::to_string(&*lines[0]).unwrap();
    let line: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(line["error.message"], "the receiver answered HTTP 503");
    assert_eq!(line["http.response.status_code"], 503);
    assert_eq!(line["prompt_config.alert.attempts"], 3);
    assert!(!text.contains("SECRET"), "{text}");
    let prometheus = telemetry.metrics.prometheus_text();
    assert!(
        prometheus
            .contains("prompt_config_alert_deliveries_total{channel=\"ops\",outcome=\"failed\"} 1"),
        "{prometheus}"
    );
    assert!(!prometheus.contains("SECRET"));
}

#[test]
fn a_rule_naming_an_undefined_channel_is_reported_as_failed() {
    let recorded = Arc::new(Recorded::default());
    let telemetry = telemetry(&recorded);
    let mut alert = sample_alert();
    alert.channels = vec!["nowhere".into()];
    deliver_and_settle(worker(String::new(), &telemetry), vec![alert]);
    let line = serde_json::to_value(&*recorded.0.lock()[0]).unwrap();
    assert_eq!(line["event"], "alert.failed");
    assert_eq!(
        line["error.message"],
        "no channel named nowhere in alerts.json"
    );
}

fn unstarted_sink() -> AlertsSink {
    AlertsSink::new(
        AlertsConfig {
            channels: BTreeMap::new(),
            rules: Vec::new(),
        },
        Arc::new(SystemClock),
        crate::telemetry::alerts::channel::lookup_from(|_: &str| None),
        fast_policy(),
    )
}

#[test]
fn a_full_queue_drops_and_counts_and_alert_lines_are_never_queued() {
    let sink = unstarted_sink();
    for _ in 0..QUEUE_CAPACITY + 5 {
        sink.accept(&record("config.reload"));
    }
    assert_eq!(sink.progress.dropped.load(Ordering::Relaxed), 5);
    let sink = unstarted_sink();
    for _ in 0..QUEUE_CAPACITY + 5 {
        sink.accept(&record("alert.failed"));
    }
    assert_eq!(sink.progress.dropped.load(Ordering::Relaxed), 0);
}

#[test]
fn accept_only_queues_and_returns_in_microseconds() {
    let recorded = Arc::new(Recorded::default());
    let telemetry = telemetry(&recorded);
    let sink = unstarted_sink();
    sink.start(Arc::downgrade(&telemetry), None);
    let record = record("config.reload");
    let count = 2000;
    let started = Instant::now();
    for _ in 0..count {
        sink.accept(&record);
    }
    let per_call = started.elapsed() / count;
    sink.close(Duration::from_secs(5));
    eprintln!("AlertsSink::accept: {per_call:?} per record (this build)");
    // Debug builds are ~10x slower than release; this bounds a regression, not the figure.
    assert!(per_call < Duration::from_micros(50), "{per_call:?}");
}

#[test]
fn flush_and_close_of_a_running_sink_answer_promptly() {
    let recorded = Arc::new(Recorded::default());
    let telemetry = telemetry(&recorded);
    let sink = unstarted_sink();
    sink.start(Arc::downgrade(&telemetry), None);
    sink.accept(&record("config.reload"));
    let started = Instant::now();
    assert!(sink.flush(Duration::from_secs(5)));
    sink.close(Duration::from_secs(5));
    assert!(started.elapsed() < Duration::from_secs(1));
    // After close, records are ignored (no queue, no drop count).
    sink.accept(&record("config.reload"));
    assert_eq!(sink.progress.dropped.load(Ordering::Relaxed), 0);
}

#[test]
fn flush_of_a_sink_whose_thread_never_started_gives_up_at_its_timeout() {
    let sink = unstarted_sink();
    let started = Instant::now();
    assert!(!sink.flush(Duration::from_millis(50)));
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn after_fork_starts_a_new_thread_that_answers_flush() {
    let recorded = Arc::new(Recorded::default());
    let telemetry = telemetry(&recorded);
    let sink = unstarted_sink();
    sink.start(Arc::downgrade(&telemetry), None);
    // In a real child the parent's thread is gone; here it is simply left behind with the old
    // queue, and only the new thread can answer the new queue's flush.
    sink.after_fork();
    sink.accept(&record("config.reload"));
    assert!(sink.flush(Duration::from_secs(5)));
    sink.close(Duration::from_secs(5));
}
