//! Log records through a real engine and the exporter (helper H2): events that are not spans
//! reach `/v1/logs` named by their event, with the line's fields as attributes, a severity, and
//! the trace of the request they are about.

use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValueKind;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, SeverityNumber};
use prompt_config::resolve::span_id;
use prompt_config::{Context, SpanRole, TraceContext};
use serde_json::json;

use super::exporting::{CALLER, WAIT, engine};
use crate::support::engine_faults::{
    ANTHROPIC, Setup, TEXT, anthropic_success, complete, openai_error, providers, set_keys,
};
use crate::support::http_server::TestServer;
use crate::support::otlp_collector::OtlpCollector;

fn attribute<'a>(record: &'a LogRecord, key: &str) -> Option<&'a AnyValueKind> {
    record
        .attributes
        .iter()
        .find(|pair| pair.key == key)
        .and_then(|pair| pair.value.as_ref())
        .and_then(|value| value.value.as_ref())
}

#[test]
fn feedback_is_an_info_log_record_in_the_trace_of_its_request() {
    set_keys();
    let collector = OtlpCollector::start();
    let openai = TestServer::start(Vec::new());
    let anthropic = TestServer::start(vec![anthropic_success()]);
    let setup = Setup::new(providers(Some(&openai), Some(&anthropic)), &[ANTHROPIC]);
    let engine = engine(&setup, &collector);
    let caller = TraceContext::parse_traceparent(CALLER).expect("a valid traceparent");
    let context = Context::new("user-1")
        .with_trace_context(caller)
        .variable("text", TEXT);
    let completion = engine.complete("summary", &context).expect("an answer");
    let request_id = completion.resolution.request_id.clone();
    engine
        .feedback(&request_id, "thumbs_up", json!(true))
        .expect("valid feedback");
    engine.close();
    collector.wait_for("/v1/logs", 1, WAIT);
    let records = collector.log_records();
    let feedback = records
        .iter()
        .find(|record| record.event_name == "feedback")
        .unwrap_or_else(|| panic!("a feedback log record among {records:#?}"));
    assert_eq!(feedback.severity_number, SeverityNumber::Info as i32);
    assert_eq!(feedback.trace_id, caller.trace_id.0.to_vec());
    assert_eq!(
        feedback.span_id,
        span_id(&request_id, SpanRole::Request).0.to_vec()
    );
    assert_eq!(
        attribute(feedback, "prompt_config.feedback.metric"),
        Some(&AnyValueKind::StringValue("thumbs_up".to_string()))
    );
    assert_eq!(
        attribute(feedback, "prompt_config.feedback.value"),
        Some(&AnyValueKind::BoolValue(true))
    );
}

#[test]
fn a_breaker_opening_is_a_warn_log_record() {
    set_keys();
    let collector = OtlpCollector::start();
    // A rejected key is final and opens the provider's breaker at once.
    let openai = TestServer::start(vec![openai_error(401, "bad key", json!("invalid_api_key"))]);
    let anthropic = TestServer::start(vec![anthropic_success()]);
    let setup = Setup::both(&openai, &anthropic);
    let engine = engine(&setup, &collector);
    complete(&engine).expect("the fallback answers");
    engine.close();
    collector.wait_for("/v1/logs", 1, WAIT);
    let records = collector.log_records();
    let opened = records
        .iter()
        .find(|record| record.event_name == "circuit.transition")
        .unwrap_or_else(|| panic!("a circuit.transition log record among {records:#?}"));
    assert_eq!(opened.severity_number, SeverityNumber::Warn as i32);
    assert_eq!(opened.severity_text, "WARN");
    assert_eq!(
        attribute(opened, "prompt_config.breaker_state"),
        Some(&AnyValueKind::StringValue("open".to_string()))
    );
    assert!(opened.time_unix_nano > 0);
}
