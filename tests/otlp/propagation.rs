//! W3C Trace Context from callers to providers: every HTTP attempt of a call that belongs to a
//! trace sends the provider a `traceparent` naming the attempt's own span (derived from the
//! request id and the attempt's number, the id the exporter gives that span), in the caller's
//! trace, or in a trace rooted at the request when the OTLP exporter is on; without either no
//! header is sent. A malformed `traceparent` is refused as `invalid_argument` naming it, from
//! the context JSON and the CLI (the C ABI and the gem have their own tests: `tests/c/trace.c`,
//! `ruby/test/tracing_test.rb`). The parser never panics, and what it accepts round-trips.

use std::time::Duration;

use prompt_config::client::{Provider, ProviderRequest};
use prompt_config::config::ModelParameters;
use prompt_config::resolve::{SpanRole, span_id};
use prompt_config::telemetry::otlp::OtlpOptions;
use prompt_config::{Context, Engine, TraceContext};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::cli;
use crate::support::http_server::{RecordedRequest, Reply, TestServer};
use crate::support::one_feature::{OneFeature, asking};
use crate::support::provider_fixtures::{
    anthropic, anthropic_success, conversation, openai, openai_success,
};
use crate::support::sse_fixtures::openai_events;

/// The caller's header (the W3C specification's example), sampled.
const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// A keyless OpenAI-compatible provider `name` at `server`, one attempt per model.
fn provider_at(server: &TestServer) -> Value {
    json!({
        "kind": "openai_compatible",
        "base_url": format!("{}/v1", server.url()),
        "retry": {"max_attempts": 1},
        "models": {"m": {"input_per_million": 1.0, "output_per_million": 2.0}}
    })
}

/// The feature `ask` calling `local/m` at `server`.
fn one_provider(server: &TestServer) -> OneFeature {
    OneFeature::new(
        &json!({"providers": {"local": provider_at(server)}}),
        "local",
        "m",
    )
}

fn caller() -> TraceContext {
    TraceContext::parse_traceparent(CALLER).unwrap()
}

/// The `traceparent` a request carried, parsed; panics (failing the test) without one.
fn sent(request: &RecordedRequest) -> TraceContext {
    let header = request
        .header("traceparent")
        .unwrap_or_else(|| panic!("no traceparent header in {:?}", request.headers));
    TraceContext::parse_traceparent(header)
        .unwrap_or_else(|error| panic!("{header:?} is not a valid traceparent: {error}"))
}

/// The header an attempt of request `request_id` should carry in `trace`.
fn expected(trace: &TraceContext, request_id: &str, attempt: u32) -> String {
    trace.traceparent(span_id(request_id, SpanRole::Attempt(attempt)))
}

#[test]
fn propagation_the_callers_trace_reaches_the_provider_naming_the_attempt_span() {
    let server = TestServer::start(vec![Reply::json(200, &openai_success())]);
    let config = one_provider(&server);
    let engine = Engine::open(config.options()).unwrap();
    let context = asking("why?").with_trace_context(caller());
    let completion = engine.complete("ask", &context).unwrap();
    let request = server.single_request();
    assert_eq!(
        request.header("traceparent"),
        Some(expected(&caller(), &completion.request_id, 1).as_str())
    );
    let header = sent(&request);
    assert_eq!(header.trace_id.to_hex(), CALLER_TRACE);
    assert_ne!(header.parent_span_id, caller().parent_span_id);
}

#[test]
fn propagation_each_attempt_of_a_failover_names_its_own_span_in_the_same_trace() {
    let failing = TestServer::start_with_fallback(Vec::new(), Reply::status(503));
    let answering = TestServer::start(vec![Reply::json(200, &openai_success())]);
    let config = OneFeature::new(
        &json!({"providers": {
            "primary": provider_at(&failing),
            "backup": provider_at(&answering)
        }}),
        "primary",
        "m",
    );
    let feature = config.root.join("config/features/ask.json");
    let mut document: Value =
        serde_json::from_str(&std::fs::read_to_string(&feature).unwrap()).unwrap();
    document["fallbacks"] = json!([{"provider": "backup", "name": "m"}]);
    std::fs::write(&feature, document.to_string()).unwrap();
    let engine = Engine::open(config.options()).unwrap();
    let completion = engine
        .complete("ask", &asking("why?").with_trace_context(caller()))
        .unwrap();
    assert_eq!(completion.attempts.len(), 2, "{:?}", completion.attempts);
    let first = sent(&failing.single_request());
    let second = sent(&answering.single_request());
    assert_eq!(first.trace_id, second.trace_id);
    assert_eq!(first.trace_id.to_hex(), CALLER_TRACE);
    assert_ne!(first.parent_span_id, second.parent_span_id);
    let id = &completion.request_id;
    assert_eq!(
        first.parent_span_id,
        Some(span_id(id, SpanRole::Attempt(1)))
    );
    assert_eq!(
        second.parent_span_id,
        Some(span_id(id, SpanRole::Attempt(2)))
    );
}

#[test]
fn propagation_a_streamed_call_sends_the_traceparent_too() {
    let server = TestServer::start(vec![Reply::events(openai_events(
        &["Gre", "en."],
        Some((5, 2, 0)),
    ))]);
    let config = one_provider(&server);
    let engine = Engine::open(config.options()).unwrap();
    let context = asking("why?").with_trace_context(caller());
    let completion = engine
        .stream("ask", &context, |_| {
            prompt_config::client::StreamControl::Continue
        })
        .unwrap();
    assert_eq!(completion.text, "Green.");
    assert_eq!(
        server.single_request().header("traceparent"),
        Some(expected(&caller(), &completion.request_id, 1).as_str())
    );
}

#[test]
fn propagation_an_unsampled_callers_flag_is_passed_on() {
    let server = TestServer::start(vec![Reply::json(200, &openai_success())]);
    let config = one_provider(&server);
    let engine = Engine::open(config.options()).unwrap();
    let unsampled = TraceContext::parse_traceparent(&CALLER.replace("-01", "-00")).unwrap();
    engine
        .complete("ask", &asking("why?").with_trace_context(unsampled))
        .unwrap();
    let header = server.single_request();
    let header = header.header("traceparent").unwrap();
    assert!(header.ends_with("-00"), "{header}");
    assert!(!sent(&server.single_request()).sampled);
}

#[test]
fn propagation_without_a_trace_or_the_exporter_no_traceparent_is_sent() {
    let server = TestServer::start(vec![Reply::json(200, &openai_success())]);
    let config = one_provider(&server);
    let engine = Engine::open(config.options()).unwrap();
    engine.complete("ask", &asking("why?")).unwrap();
    let request = server.single_request();
    assert_eq!(request.header("traceparent"), None, "{:?}", request.headers);
}

#[test]
fn propagation_with_the_exporter_on_a_call_without_a_trace_gets_one_rooted_at_its_request() {
    // A collector that accepts whatever the exporter sends, so export is not the subject here.
    let collector = TestServer::start_with_fallback(Vec::new(), Reply::status(200));
    let server = TestServer::start(vec![Reply::json(200, &openai_success())]);
    let config = one_provider(&server);
    let mut options = config.options();
    options.otlp = Some(OtlpOptions::new(collector.url()));
    let engine = Engine::open(options).unwrap();
    let completion = engine.complete("ask", &asking("why?")).unwrap();
    let root = TraceContext::root_for(&completion.request_id);
    assert_eq!(
        server.single_request().header("traceparent"),
        Some(expected(&root, &completion.request_id, 1).as_str())
    );
}

#[test]
fn propagation_with_the_exporter_on_the_callers_trace_still_wins() {
    let collector = TestServer::start_with_fallback(Vec::new(), Reply::status(200));
    let server = TestServer::start(vec![Reply::json(200, &openai_success())]);
    let config = one_provider(&server);
    let mut options = config.options();
    options.otlp = Some(OtlpOptions::new(collector.url()));
    let engine = Engine::open(options).unwrap();
    engine
        .complete("ask", &asking("why?").with_trace_context(caller()))
        .unwrap();
    assert_eq!(
        sent(&server.single_request()).trace_id.to_hex(),
        CALLER_TRACE
    );
}

/// Calls `provider` once with `traceparent` (or none).
fn call_with_traceparent(provider: &dyn Provider, traceparent: Option<&str>) {
    let messages = conversation();
    let parameters = ModelParameters::default();
    let request = ProviderRequest {
        model: "test-model",
        messages: &messages,
        parameters: &parameters,
        request_id: "request-42",
        timeout: Duration::from_secs(5),
        output: None,
        tools: &[],
        tool_choice: &Default::default(),
        traceparent,
    };
    provider.call(&request).unwrap();
}

#[test]
fn propagation_the_openai_and_anthropic_providers_send_the_header_they_are_given() {
    let header = expected(&caller(), "request-42", 1);
    let server = TestServer::start(vec![Reply::json(200, &openai_success())]);
    call_with_traceparent(&openai(&server), Some(&header));
    assert_eq!(
        server.single_request().header("traceparent"),
        Some(header.as_str())
    );
    let server = TestServer::start(vec![Reply::json(200, &anthropic_success())]);
    call_with_traceparent(&anthropic(&server), Some(&header));
    assert_eq!(
        server.single_request().header("traceparent"),
        Some(header.as_str())
    );
}

#[test]
fn propagation_a_provider_given_no_traceparent_sends_no_header() {
    let server = TestServer::start(vec![Reply::json(200, &anthropic_success())]);
    call_with_traceparent(&anthropic(&server), None);
    assert_eq!(server.single_request().header("traceparent"), None);
}

#[test]
fn propagation_a_malformed_traceparent_in_the_context_json_is_refused_naming_it() {
    let error = serde_json::from_value::<Context>(
        json!({"user_id": "u", "traceparent": "00-not-a-trace-01"}),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("traceparent"), "{error}");
    assert!(error.contains("/traceparent"), "{error}");
}

#[test]
fn propagation_a_context_with_a_trace_serializes_back_to_its_traceparent() {
    let context: Context =
        serde_json::from_value(json!({"user_id": "u", "traceparent": CALLER})).unwrap();
    let value = serde_json::to_value(&context).unwrap();
    assert_eq!(value["traceparent"], CALLER);
    let back: Context = serde_json::from_value(value).unwrap();
    assert_eq!(back, context);
}

#[test]
fn propagation_the_cli_passes_traceparent_on_to_the_provider() {
    let server = TestServer::start(vec![Reply::json(200, &openai_success())]);
    let config = one_provider(&server);
    let output = cli::run_in(
        &config.root,
        &[
            "complete",
            "ask",
            "--user",
            "1",
            "--var",
            "question=why?",
            "--traceparent",
            CALLER,
            "--json",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", cli::stderr(&output));
    let completion: Value = serde_json::from_str(&cli::stdout(&output)).unwrap();
    let request_id = completion["request_id"].as_str().unwrap();
    assert_eq!(
        server.single_request().header("traceparent"),
        Some(expected(&caller(), request_id, 1).as_str())
    );
}

#[test]
fn propagation_a_malformed_traceparent_on_the_cli_is_a_usage_error_naming_it() {
    let server = TestServer::start(Vec::new());
    let config = one_provider(&server);
    for command in ["resolve", "complete"] {
        let output = cli::run_in(
            &config.root,
            &[
                command,
                "ask",
                "--user",
                "1",
                "--var",
                "question=why?",
                "--traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                "--json",
            ],
        );
        assert_eq!(output.status.code(), Some(2), "{command}");
        let error: Value = serde_json::from_str(&cli::stdout(&output)).unwrap();
        assert_eq!(error["error"]["kind"], "invalid_argument", "{error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("--traceparent"), "{message}");
        assert!(message.contains("parent-id is all zeros"), "{message}");
    }
    assert!(server.requests().is_empty());
}

/// A valid `traceparent` from its parts: version 00, lowercase hex, non-zero ids.
fn valid_header() -> impl Strategy<Value = String> {
    (any::<[u8; 16]>(), any::<[u8; 8]>(), any::<u8>())
        .prop_filter("ids are not all zero", |(trace, span, _)| {
            trace != &[0; 16] && span != &[0; 8]
        })
        .prop_map(|(trace, span, flags)| {
            let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
            format!("00-{}-{}-{flags:02x}", hex(&trace), hex(&span))
        })
}

proptest! {
    #[test]
    fn propagation_parsing_any_string_never_panics(text in "\\PC{0,80}") {
        let _ = TraceContext::parse_traceparent(&text);
    }

    #[test]
    fn propagation_parsing_near_misses_never_panics(
        header in valid_header(),
        at in 0usize..55,
        with in prop_oneof![Just('é'), Just('\0'), Just('F'), Just('-'), Just('g'), any::<char>()],
    ) {
        // One character replaced (possibly by a multi-byte one, shifting every field).
        let mut text: String = header.chars().take(at).collect();
        text.push(with);
        text.extend(header.chars().skip(at + 1));
        if let Ok(parsed) = TraceContext::parse_traceparent(&text) {
            prop_assert_eq!(text.len(), 55);
            prop_assert_ne!(parsed.trace_id.0, [0; 16]);
        }
    }

    #[test]
    fn propagation_the_context_json_takes_exactly_what_the_parser_takes(
        text in prop_oneof![
            "\\PC{0,60}",
            valid_header(),
            Just(String::new()),
            Just("\0".repeat(55)),
        ],
    ) {
        // The door every binding goes through (C request JSON, gem, CLI files).
        let document = json!({"user_id": "u", "traceparent": text});
        let parsed = serde_json::from_value::<Context>(document);
        match TraceContext::parse_traceparent(&text) {
            Ok(trace) => {
                let context = parsed.map_err(|error| TestCaseError::fail(error.to_string()))?;
                prop_assert_eq!(context.trace_context(), Some(&trace));
            }
            Err(_) => {
                let error = parsed.err().ok_or_else(|| TestCaseError::fail("accepted"))?;
                prop_assert!(error.to_string().contains("/traceparent"), "{}", error);
            }
        }
    }

    #[test]
    fn propagation_a_valid_traceparent_round_trips(header in valid_header()) {
        let parsed = TraceContext::parse_traceparent(&header)
            .map_err(|error| TestCaseError::fail(error.to_string()))?;
        let parent = parsed.parent_span_id.ok_or_else(|| TestCaseError::fail("no parent"))?;
        // Only the `sampled` flag is passed on (the other bits are not defined by level 1).
        let flags = u8::from_str_radix(&header[53..], 16).unwrap_or_default();
        let expected = format!("{}{:02x}", &header[..53], flags & 1);
        prop_assert_eq!(parsed.traceparent(parent), expected);
    }
}
