//! The exporter's delivery (helper H1): protobuf and JSON bodies, gzip, headers, retries with
//! backoff on 503/429 (honouring `Retry-After`), counted drops when the collector is down or
//! refuses, the queue bound, flush and close, requests never slowed, the `OTEL_*` variables and
//! the CLI; all against the loopback collector of tests/support/otlp_collector.rs, which decodes
//! with the `opentelemetry-proto` crate's own prost messages.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prompt_config::telemetry::OtlpSnapshot;
use prompt_config::telemetry::metrics::Metrics;
use prompt_config::telemetry::otlp::transport::{Delivery, Export, Transport, USER_AGENT};
use prompt_config::telemetry::otlp::{OtlpOptions, OtlpProtocol};
use prompt_config::{Engine, EngineOptions};
use prost::Message;

use crate::support::cli::{PROFILE, command, stderr};
use crate::support::eval::{fast_mock_fixture, mock_options};
use crate::support::fixture::{Fixture, context};
use crate::support::otlp_collector::OtlpCollector;

/// A trace export request with one span per name.
fn spans(names: &[&str]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".to_string(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("checkout".to_string())),
                    }),
                    ..KeyValue::default()
                }],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: names
                    .iter()
                    .enumerate()
                    .map(|(index, name)| Span {
                        trace_id: vec![7; 16],
                        span_id: vec![u8::try_from(index + 1).unwrap(); 8],
                        name: (*name).to_string(),
                        ..Span::default()
                    })
                    .collect(),
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

/// A transport to `collector` with `configure` applied, and the metrics it counts into.
fn transport(
    collector: &OtlpCollector,
    configure: impl FnOnce(&mut OtlpOptions),
) -> (Transport, Metrics) {
    let mut options = OtlpOptions::new(collector.endpoint());
    configure(&mut options);
    let metrics = Metrics::new();
    (Transport::new(&options, metrics.otlp_counters()), metrics)
}

fn otlp(metrics: &Metrics) -> OtlpSnapshot {
    metrics.snapshot().otlp
}

fn send(transport: &Transport, export: &Export) -> Delivery {
    transport.send(export, &AtomicBool::new(false))
}

fn environment(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(name, value)| ((*name).to_string(), (*value).to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

// --- one export request ---------------------------------------------------------------------

#[test]
fn protobuf_export_is_gzipped_and_decodes_with_the_official_messages() {
    let collector = OtlpCollector::start();
    let (transport, metrics) = transport(&collector, |_| {});
    let delivery = send(
        &transport,
        &Export::Traces(spans(&["chat gpt-4o", "resolve"])),
    );
    assert_eq!(delivery, Delivery::Delivered { rejected: 0 });
    let requests = collector.requests_to("/v1/traces");
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        request.header("content-type"),
        Some("application/x-protobuf")
    );
    assert_eq!(request.header("content-encoding"), Some("gzip"));
    assert_eq!(&request.raw_body[..2], &[0x1f, 0x8b], "a gzip stream");
    let names: Vec<String> = collector
        .spans()
        .into_iter()
        .map(|span| span.name)
        .collect();
    assert_eq!(names, ["chat gpt-4o", "resolve"]);
    assert_eq!(otlp(&metrics).spans_exported, 2);
}

#[test]
fn json_export_is_the_otlp_json_mapping_with_hex_ids() {
    let collector = OtlpCollector::start();
    let (transport, _) = transport(&collector, |options| {
        options.protocol = OtlpProtocol::HttpJson;
        options.gzip = false;
    });
    send(&transport, &Export::Traces(spans(&["chat gpt-4o"])));
    let request = &collector.requests_to("/v1/traces")[0];
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("content-encoding"), None);
    let span = &request.json()["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["name"], "chat gpt-4o");
    assert_eq!(span["traceId"], "07".repeat(16));
}

#[test]
fn configured_headers_and_the_user_agent_are_sent() {
    let collector = OtlpCollector::start();
    let (transport, _) = transport(&collector, |options| {
        options.headers = vec![("x-honeycomb-team".to_string(), "secret-key".to_string())];
    });
    send(&transport, &Export::Traces(spans(&["resolve"])));
    let request = &collector.requests()[0];
    assert_eq!(request.header("x-honeycomb-team"), Some("secret-key"));
    assert_eq!(request.header("user-agent"), Some(USER_AGENT));
    assert!(USER_AGENT.starts_with("prompt-config/"));
}

#[test]
fn credentials_in_the_endpoint_are_sent_as_basic_authentication() {
    let collector = OtlpCollector::start();
    let (transport, _) = transport(&collector, |options| {
        options.endpoint = format!("http://otel:s3cret@127.0.0.1:{}", collector.port());
    });
    send(&transport, &Export::Traces(spans(&["resolve"])));
    // base64("otel:s3cret")
    assert_eq!(
        collector.requests()[0].header("authorization"),
        Some("Basic b3RlbDpzM2NyZXQ=")
    );
}

#[test]
fn a_per_signal_endpoint_is_used_as_given() {
    let collector = OtlpCollector::start();
    let (transport, _) = transport(&collector, |options| {
        options.endpoint = "http://127.0.0.1:9".to_string();
        options.traces_endpoint = Some(format!("{}/custom/spans", collector.endpoint()));
    });
    send(&transport, &Export::Traces(spans(&["resolve"])));
    assert_eq!(collector.requests()[0].path, "/custom/spans");
}

// --- retries and drops ------------------------------------------------------------------------

#[test]
fn a_503_twice_then_200_is_delivered_once_after_two_retries() {
    let collector = OtlpCollector::start();
    collector.fail_next(2, 503, None);
    let (transport, metrics) = transport(&collector, |_| {});
    let delivery = send(&transport, &Export::Traces(spans(&["a", "b", "c"])));
    assert_eq!(delivery, Delivery::Delivered { rejected: 0 });
    assert_eq!(collector.requests().len(), 3);
    assert_eq!(collector.traces_accepted(), 1);
    let counted = otlp(&metrics);
    assert_eq!((counted.spans_exported, counted.retries), (3, 2));
    assert_eq!(counted.dropped_failed, 0);
}

#[test]
fn a_429_with_retry_after_waits_that_long_before_retrying() {
    let collector = OtlpCollector::start();
    collector.fail_next(1, 429, Some(1));
    let (transport, _) = transport(&collector, |_| {});
    let started = Instant::now();
    send(&transport, &Export::Traces(spans(&["a"])));
    // Without Retry-After the first backoff is 50-150 ms.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(collector.traces_accepted(), 1);
}

#[test]
fn a_400_is_not_retried_and_its_spans_count_as_rejected() {
    let collector = OtlpCollector::start();
    collector.fail_next(1, 400, None);
    let (transport, metrics) = transport(&collector, |_| {});
    let delivery = send(&transport, &Export::Traces(spans(&["a", "b"])));
    assert_eq!(delivery, Delivery::Refused);
    assert_eq!(collector.requests().len(), 1);
    assert_eq!(otlp(&metrics).dropped_rejected, 2);
    assert_eq!(otlp(&metrics).retries, 0);
}

#[test]
fn a_partial_success_counts_the_rejected_spans() {
    let collector = OtlpCollector::start();
    let response = ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess {
            rejected_spans: 1,
            error_message: "span too large".to_string(),
        }),
    };
    collector.success_body(response.encode_to_vec());
    let (transport, metrics) = transport(&collector, |_| {});
    let delivery = send(&transport, &Export::Traces(spans(&["a", "b", "c"])));
    assert_eq!(delivery, Delivery::Delivered { rejected: 1 });
    let counted = otlp(&metrics);
    assert_eq!((counted.spans_exported, counted.dropped_rejected), (2, 1));
}

#[test]
fn a_collector_that_is_down_is_retried_then_its_spans_count_as_failed() {
    let mut collector = OtlpCollector::start();
    collector.close();
    let (transport, metrics) = transport(&collector, |_| {});
    let delivery = send(&transport, &Export::Traces(spans(&["a", "b"])));
    assert_eq!(delivery, Delivery::GaveUp);
    let counted = otlp(&metrics);
    assert_eq!((counted.dropped_failed, counted.retries), (2, 5));
}

#[test]
fn giving_up_stops_the_retries_at_once() {
    let mut collector = OtlpCollector::start();
    collector.close();
    let (transport, metrics) = transport(&collector, |_| {});
    let started = Instant::now();
    let delivery = transport.send(&Export::Traces(spans(&["a"])), &AtomicBool::new(true));
    assert_eq!(delivery, Delivery::GaveUp);
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(otlp(&metrics).dropped_failed, 1);
}

#[test]
fn the_delivery_counters_are_in_the_prometheus_text() {
    let collector = OtlpCollector::start();
    let (transport, metrics) = transport(&collector, |_| {});
    send(&transport, &Export::Traces(spans(&["a"])));
    let text = metrics.prometheus_text();
    assert!(
        text.contains("prompt_config_otlp_exported_total{signal=\"traces\"} 1"),
        "{text}"
    );
    assert!(text.contains("prompt_config_otlp_dropped_total{reason=\"queue_full\"} 0"));
    assert!(text.contains("# TYPE prompt_config_otlp_retries_total counter"));
}

// --- the exporter in an engine ---------------------------------------------------------------

/// Mock-mode options over a zero-latency fixture, exporting to `endpoint`.
fn exporting(
    fixture: &Fixture,
    endpoint: &str,
    configure: impl FnOnce(&mut OtlpOptions),
) -> EngineOptions {
    let mut otlp = OtlpOptions::new(endpoint);
    configure(&mut otlp);
    let mut options = mock_options(fixture);
    options.otlp = Some(otlp);
    options
}

#[test]
fn a_full_queue_drops_records_on_the_callers_thread_and_counts_them() {
    let fixture = fast_mock_fixture();
    let collector = OtlpCollector::start();
    collector.answer_after(Duration::from_millis(200));
    let engine = Engine::open(exporting(&fixture, &collector.endpoint(), |otlp| {
        otlp.max_queue = 1;
        otlp.batch_delay = Duration::from_secs(60);
    }))
    .unwrap();
    for user in 0..200 {
        engine
            .complete("career_path_navigator", &context(&user.to_string()))
            .unwrap();
    }
    let dropped = engine.metrics().otlp.dropped_queue_full;
    assert!(dropped > 0, "a one-record queue kept up with 200 calls");
    assert!(dropped < 200 * 3, "every record was dropped: {dropped}");
}

#[test]
fn complete_is_not_slowed_by_a_collector_that_hangs() {
    let fixture = fast_mock_fixture();
    let collector = OtlpCollector::start();
    collector.answer_after(Duration::from_secs(3));
    let engine = Engine::open(exporting(&fixture, &collector.endpoint(), |otlp| {
        otlp.max_batch = 1;
        otlp.batch_delay = Duration::ZERO;
    }))
    .unwrap();
    let started = Instant::now();
    for user in 0..20 {
        engine
            .complete("career_path_navigator", &context(&user.to_string()))
            .unwrap();
    }
    // One export takes 3 s; twenty calls on the zero-latency mock take milliseconds.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn complete_is_not_slowed_by_a_collector_that_is_down() {
    let fixture = fast_mock_fixture();
    let mut collector = OtlpCollector::start();
    collector.close();
    let engine = Engine::open(exporting(&fixture, &collector.endpoint(), |otlp| {
        otlp.max_batch = 1;
        otlp.batch_delay = Duration::ZERO;
    }))
    .unwrap();
    let started = Instant::now();
    for user in 0..20 {
        engine
            .complete("career_path_navigator", &context(&user.to_string()))
            .unwrap();
    }
    // The exporter's retries of one batch alone take seconds.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn flush_waits_until_the_spans_reached_the_collector() {
    let fixture = fast_mock_fixture();
    let collector = OtlpCollector::start();
    collector.answer_after(Duration::from_millis(300));
    let engine = Engine::open(exporting(&fixture, &collector.endpoint(), |otlp| {
        otlp.batch_delay = Duration::from_secs(60);
    }))
    .unwrap();
    engine
        .complete("career_path_navigator", &context("42"))
        .unwrap();
    engine.flush_telemetry();
    assert!(
        collector.traces_accepted() >= 1,
        "flush returned before the export"
    );
    assert!(engine.metrics().otlp.spans_exported >= 2);
}

#[test]
fn close_sends_the_last_metrics() {
    let fixture = fast_mock_fixture();
    let collector = OtlpCollector::start();
    let engine = Engine::open(exporting(&fixture, &collector.endpoint(), |otlp| {
        otlp.metrics_interval = Duration::from_secs(3600);
    }))
    .unwrap();
    engine
        .complete("career_path_navigator", &context("42"))
        .unwrap();
    engine.close();
    let metrics = collector.requests_to("/v1/metrics");
    assert_eq!(metrics.len(), 1, "one export, at close");
    let names: Vec<String> = metrics[0]
        .metrics()
        .resource_metrics
        .into_iter()
        .flat_map(|resource| resource.scope_metrics)
        .flat_map(|scope| scope.metrics)
        .map(|metric| metric.name)
        .collect();
    assert!(
        names
            .iter()
            .any(|name| name == "gen_ai.client.operation.duration"),
        "{names:?}"
    );
}

#[test]
fn an_engine_without_otlp_options_starts_no_exporter_thread() {
    let fixture = fast_mock_fixture();
    let engine = Engine::open(mock_options(&fixture)).unwrap();
    engine
        .complete("career_path_navigator", &context("42"))
        .unwrap();
    assert_eq!(engine.metrics().otlp, OtlpSnapshot::default());
}

// --- configuration from the environment ------------------------------------------------------

#[test]
fn no_endpoint_means_no_export() {
    let options = OtlpOptions::from_env(environment(&[("OTEL_SERVICE_NAME", "checkout")]));
    assert!(options.unwrap().is_none());
}

#[test]
fn sdk_disabled_turns_export_off() {
    let options = OtlpOptions::from_env(environment(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        ("OTEL_SDK_DISABLED", "true"),
    ]));
    assert!(options.unwrap().is_none());
}

#[test]
fn every_standard_variable_is_read() {
    let options = OtlpOptions::from_env(environment(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://traces:4318/v1/t",
        ),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=a%3Db,x-team=core"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=ignored,deployment.environment=prod",
        ),
        ("OTEL_SERVICE_NAME", "checkout"),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "100"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "500"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "15000"),
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(options.endpoint, "http://collector:4318");
    assert_eq!(
        options.traces_endpoint.as_deref(),
        Some("http://traces:4318/v1/t")
    );
    assert_eq!(options.protocol, OtlpProtocol::HttpJson);
    assert_eq!(
        options.headers,
        [
            ("api-key".to_string(), "a=b".to_string()),
            ("x-team".to_string(), "core".to_string())
        ]
    );
    assert_eq!(options.timeout, Duration::from_millis(2500));
    assert!(!options.gzip);
    assert_eq!(options.service_name, "checkout");
    assert_eq!(
        options.resource_attributes,
        [("deployment.environment".to_string(), "prod".to_string())]
    );
    assert_eq!(options.batch_delay, Duration::from_millis(200));
    assert_eq!((options.max_queue, options.max_batch), (100, 100));
    assert_eq!(options.metrics_interval, Duration::from_secs(15));
}

#[test]
fn grpc_is_refused_with_the_reason() {
    let error = OtlpOptions::from_env(environment(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ]))
    .unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("OTEL_EXPORTER_OTLP_PROTOCOL:"),
        "{message}"
    );
    assert!(message.contains("OTLP/HTTP only"), "{message}");
    assert_eq!(error.kind(), prompt_config::ErrorKind::InvalidArgument);
}

#[test]
fn a_malformed_header_list_names_the_variable_but_not_the_secret() {
    let error = OtlpOptions::from_env(environment(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=sk-live-123%zz"),
    ]))
    .unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("OTEL_EXPORTER_OTLP_HEADERS:"),
        "{message}"
    );
    assert!(!message.contains("sk-live-123"), "{message}");
    assert!(!format!("{error:?}").contains("sk-live-123"));
}

#[test]
fn header_values_never_appear_in_debug_output() {
    let options = OtlpOptions::from_env(environment(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=sk-live-123"),
    ]))
    .unwrap()
    .unwrap();
    let debug = format!("{options:?}");
    assert!(debug.contains("api-key"), "{debug}");
    assert!(!debug.contains("sk-live-123"), "{debug}");
    let mut engine_options = EngineOptions::default();
    engine_options.otlp = Some(options);
    assert!(!format!("{engine_options:?}").contains("sk-live-123"));
}

#[test]
fn an_endpoint_that_is_not_an_http_url_is_refused() {
    for endpoint in ["collector:4318", "ftp://collector", "http://"] {
        let error =
            OtlpOptions::from_env(environment(&[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)]))
                .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("OTEL_EXPORTER_OTLP_ENDPOINT:"),
            "{endpoint}"
        );
    }
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn with_headers(headers: &str) -> Result<Option<OtlpOptions>, prompt_config::TelemetryError> {
        OtlpOptions::from_env(environment(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", headers),
            ("OTEL_RESOURCE_ATTRIBUTES", headers),
        ]))
    }

    /// Percent-encodes every byte that is not an unreserved URL character.
    fn encode(text: &str) -> String {
        text.bytes()
            .map(|byte| {
                if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                    char::from(byte).to_string()
                } else {
                    format!("%{byte:02X}")
                }
            })
            .collect()
    }

    proptest! {
        #[test]
        fn any_text_is_read_or_refused_without_panicking_or_echoing(text in any::<String>()) {
            if let Err(error) = with_headers(&text) {
                let message = error.to_string();
                prop_assert!(message.starts_with("OTEL_"));
                if text.len() > 3 {
                    prop_assert!(!message.contains(&text));
                }
            }
        }

        #[test]
        fn percent_encoded_attribute_values_round_trip(
            pairs in proptest::collection::vec(("[a-z][a-z0-9._]{0,20}", any::<String>()), 0..8)
        ) {
            let text: Vec<String> = pairs
                .iter()
                .map(|(key, value)| format!("{key}={}", encode(value)))
                .collect();
            let options = OtlpOptions::from_env(environment(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
                ("OTEL_RESOURCE_ATTRIBUTES", &text.join(",")),
            ]))
            .unwrap()
            .unwrap();
            let expected: Vec<(String, String)> = pairs
                .into_iter()
                .filter(|(key, _)| key != "service.name")
                .collect();
            prop_assert_eq!(options.resource_attributes, expected);
        }

        #[test]
        fn a_header_value_with_a_control_character_is_refused(
            before in "[a-z]{0,5}", control in 0u8..0x20, after in "[a-z]{0,5}"
        ) {
            prop_assume!(control != b'\t');
            let headers = format!("x-key={before}%{control:02X}{after}");
            prop_assert!(with_headers(&headers).is_err());
        }

        #[test]
        fn an_empty_list_or_empty_entries_give_no_headers(commas in ",{0,5}") {
            let options = with_headers(&commas).unwrap().unwrap();
            prop_assert!(options.headers.is_empty());
        }
    }

    #[test]
    fn a_huge_header_list_is_read() {
        let headers: Vec<String> = (0..10_000)
            .map(|index| format!("k{index}=v{index}"))
            .collect();
        let options = with_headers(&headers.join(",")).unwrap().unwrap();
        assert_eq!(options.headers.len(), 10_000);
    }

    #[test]
    fn a_nul_byte_in_a_header_value_is_refused() {
        assert!(with_headers("x-key=a%00b").is_err());
        assert!(with_headers("x-key=a\0b").is_err());
    }
}

// --- the CLI -----------------------------------------------------------------------------------

fn complete_command(fixture: &Fixture) -> std::process::Command {
    let mut complete = command(&fixture.root);
    complete
        .args([
            "complete",
            "career_path_navigator",
            "--user",
            "42",
            "--vars",
            PROFILE,
            "--mock",
        ])
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_SDK_DISABLED");
    complete
}

#[test]
fn cli_complete_delivers_its_spans_before_it_exits() {
    let fixture = fast_mock_fixture();
    let collector = OtlpCollector::start();
    let output = complete_command(&fixture)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint())
        .env("OTEL_SERVICE_NAME", "cli-test")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(collector.traces_accepted() >= 1, "no spans before exit");
    assert!(!collector.spans().is_empty());
}

#[test]
fn cli_otlp_endpoint_flag_wins_over_the_environment() {
    let fixture = fast_mock_fixture();
    let collector = OtlpCollector::start();
    let output = complete_command(&fixture)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
        .args([
            "--otlp-endpoint",
            &collector.endpoint(),
            "--otlp-protocol",
            "http/json",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let traces = collector.requests_to("/v1/traces");
    assert!(!traces.is_empty(), "nothing reached the flag's collector");
    assert_eq!(traces[0].header("content-type"), Some("application/json"));
}

#[test]
fn cli_bad_otel_variable_is_a_usage_error_naming_it() {
    let fixture = fast_mock_fixture();
    let output = complete_command(&fixture)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
        .env("OTEL_EXPORTER_OTLP_HEADERS", "api-key")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(text.contains("OTEL_EXPORTER_OTLP_HEADERS"), "{text}");
}

#[test]
fn cli_grpc_protocol_flag_is_a_usage_error_naming_the_flag() {
    let fixture = fast_mock_fixture();
    let output = complete_command(&fixture)
        .args([
            "--otlp-endpoint",
            "http://127.0.0.1:4317",
            "--otlp-protocol",
            "grpc",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--otlp-protocol"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn cli_empty_or_non_utf8_otlp_flags_are_usage_errors_naming_the_flag() {
    use std::os::unix::ffi::OsStrExt;
    let fixture = fast_mock_fixture();
    let not_utf8 = std::ffi::OsStr::from_bytes(b"http://\xff:4318");
    let cases: [(&str, &std::ffi::OsStr); 3] = [
        ("--otlp-endpoint", std::ffi::OsStr::new("")),
        ("--otlp-protocol", std::ffi::OsStr::new(" ")),
        ("--otlp-endpoint", not_utf8),
    ];
    for (flag, value) in cases {
        let output = complete_command(&fixture)
            .arg(flag)
            .arg(value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{flag} {value:?}");
        assert!(stderr(&output).contains(flag), "{}", stderr(&output));
        assert!(!stderr(&output).contains("panicked"));
    }
}

#[test]
fn cli_warns_on_stderr_when_the_collector_took_nothing() {
    let fixture = fast_mock_fixture();
    // A port nothing listens on: bound, then closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap();
    let output = complete_command(&fixture)
        .args(["--otlp-endpoint", &format!("http://127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stderr(&output);
    assert_eq!(
        text.matches("warning: OTLP export incomplete").count(),
        1,
        "{text}"
    );
}

#[test]
fn cli_says_nothing_when_the_collector_took_everything() {
    let fixture = fast_mock_fixture();
    let collector = OtlpCollector::start();
    let output = complete_command(&fixture)
        .args(["--otlp-endpoint", &collector.endpoint()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!stderr(&output).contains("OTLP"), "{}", stderr(&output));
}

#[test]
fn an_exporting_engine_still_writes_its_log() {
    let fixture = fast_mock_fixture();
    let collector = OtlpCollector::start();
    let log = fixture.root.join("telemetry.jsonl");
    let engine =
        Engine::open(exporting(&fixture, &collector.endpoint(), |_| {}).with_telemetry(&log))
            .unwrap();
    engine
        .complete("career_path_navigator", &context("42"))
        .unwrap();
    engine.close();
    let lines = std::fs::read_to_string(&log).unwrap();
    assert!(lines.contains("\"llm.request\""), "{lines}");
}

#[test]
fn a_partial_batch_is_sent_once_the_batch_delay_has_passed() {
    let fixture = fast_mock_fixture();
    let collector = OtlpCollector::start();
    let engine = Engine::open(exporting(&fixture, &collector.endpoint(), |otlp| {
        otlp.batch_delay = Duration::from_millis(200);
        otlp.metrics_interval = Duration::from_secs(3600);
    }))
    .unwrap();
    engine
        .complete("career_path_navigator", &context("42"))
        .unwrap();
    // No flush: the exporter's own timer sends the three spans (a batch holds 512).
    assert!(collector.wait_for("/v1/traces", 1, Duration::from_secs(10)));
    assert!(collector.traces_accepted() >= 1);
}

#[test]
fn a_full_batch_is_sent_without_waiting_for_the_batch_delay() {
    let fixture = fast_mock_fixture();
    let collector = OtlpCollector::start();
    let engine = Engine::open(exporting(&fixture, &collector.endpoint(), |otlp| {
        otlp.batch_delay = Duration::from_secs(3600);
        otlp.max_batch = 3;
    }))
    .unwrap();
    for user in 0..4 {
        engine
            .complete("career_path_navigator", &context(&user.to_string()))
            .unwrap();
    }
    assert!(collector.wait_for("/v1/traces", 1, Duration::from_secs(10)));
}

#[test]
fn closing_twice_waits_once() {
    let fixture = fast_mock_fixture();
    let mut collector = OtlpCollector::start();
    collector.close();
    let engine = Engine::open(exporting(&fixture, &collector.endpoint(), |_| {})).unwrap();
    engine
        .complete("career_path_navigator", &context("42"))
        .unwrap();
    let started = Instant::now();
    engine.close();
    drop(engine);
    // The first close gives up after SINK_CLOSE_TIMEOUT (5 s) at most; the drop adds nothing.
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}
