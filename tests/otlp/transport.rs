//! The exporter's delivery (helper H1): protobuf and JSON bodies, gzip, headers, retries with
//! backoff on 503/429 (honouring `Retry-After`), counted drops when the collector is down or the
//! queue is full, flush and close, the CLI's `OTEL_*` variables; all against the loopback
//! collector in tests/support/otlp_collector.rs.

use std::time::Duration;

use crate::support::otlp_collector::OtlpCollector;

#[test]
fn collector_records_and_scripts_failures() {
    let collector = OtlpCollector::start();
    collector.fail_next(1, 503, Some(2));
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let first = agent
        .post(&format!("{}/v1/traces", collector.endpoint()))
        .send(&b""[..])
        .expect("first request");
    assert_eq!(first.status().as_u16(), 503);
    assert_eq!(
        first
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("2")
    );
    let second = agent
        .post(&format!("{}/v1/traces", collector.endpoint()))
        .send(&b""[..])
        .expect("second request");
    assert_eq!(second.status().as_u16(), 200);
    assert!(collector.wait_for("/v1/traces", 2, Duration::from_secs(5)));
    assert_eq!(collector.traces_accepted(), 1);
}
