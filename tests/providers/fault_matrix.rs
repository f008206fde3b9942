//! The fault matrix of `Engine::complete` over the real `openai` and `anthropic` providers,
//! each pointed at a scripted loopback server: retryable and final statuses, context length,
//! transport faults, the deadline, Retry-After, the circuit breaker, missing keys, the exact
//! requests sent, key secrecy and connection reuse. Real clock, small settings; nothing leaves
//! 127.0.0.1.

use std::time::{Duration, Instant};

use crate::support::engine_faults::*;
use crate::support::http_server::{Reply, TestServer};
use prompt_config::ErrorKind;
use prompt_config::client::AttemptOutcome::{Failed, SkippedCircuitOpen};
use prompt_config::client::{BreakerState, Completion};
use serde_json::{Value, json};

#[test]
fn retryable_statuses_on_the_primary_fail_over_at_once_to_a_healthy_fallback() {
    set_keys();
    // Per status: (status, attempts, wait before the second attempt, requests openai received).
    let (observed, expected): (Vec<_>, Vec<_>) = RETRYABLE
        .iter()
        .map(|&status| {
            let openai = TestServer::start(vec![openai_error(status, "try again", Value::Null)]);
            let anthropic = TestServer::start(vec![anthropic_success()]);
            let setup = Setup::both(&openai, &anthropic);
            let result = complete(&setup.engine());
            let wait = result.as_ref().ok().map(|c| c.attempts[1].wait_ms);
            let failed_over = vec![http_failed("openai", status), succeeded("anthropic")];
            let observed = (status, rows_of(&result), wait, openai.requests().len());
            (observed, (status, failed_over, Some(0.0), 1))
        })
        .unzip();
    assert_eq!(observed, expected);
}

#[test]
fn retryable_statuses_on_a_single_model_chain_are_retried_on_the_same_provider_until_success() {
    set_keys();
    // 429 has its own test below.
    let statuses = RETRYABLE.iter().filter(|&&status| status != 429);
    // Per status: (status, attempts, all backoffs within max_delay_ms, requests openai received).
    let (observed, expected): (Vec<_>, Vec<_>) = statuses
        .map(|&status| {
            let error = || openai_error(status, "try again", Value::Null);
            let openai = TestServer::start(vec![error(), error(), openai_success()]);
            let setup = Setup::openai_only(&openai);
            let result = complete(&setup.engine());
            let bounded = |c: &Completion| c.attempts.iter().all(|a| a.wait_ms <= 20.0);
            let waits = result.as_ref().ok().map(bounded);
            let failed = http_failed("openai", status);
            let retried = vec![failed.clone(), failed, succeeded("openai")];
            let observed = (status, rows_of(&result), waits, openai.requests().len());
            (observed, (status, retried, Some(true), 3))
        })
        .unzip();
    assert_eq!(observed, expected);
}

#[test]
fn rate_limit_without_retry_after_on_a_single_model_chain_is_retried_until_success() {
    set_keys();
    let error = || openai_error(429, "slow down", json!("rate_limit_exceeded"));
    let openai = TestServer::start(vec![error(), error(), openai_success()]);
    let setup = Setup::openai_only(&openai);
    let completion = complete(&setup.engine()).expect("the third attempt succeeds");
    let failed = http_failed("openai", 429);
    assert_eq!(
        rows(&completion.attempts),
        [failed.clone(), failed, succeeded("openai")]
    );
}

#[test]
fn final_statuses_fail_over_without_a_retry_and_only_auth_failures_open_the_breaker() {
    set_keys();
    // Per status: (status, attempts, requests openai received, breaker states).
    let (observed, expected): (Vec<_>, Vec<_>) = FINAL
        .iter()
        .map(|&status| {
            let openai = TestServer::start(vec![openai_error(status, "no", json!("invalid"))]);
            let anthropic = TestServer::start(vec![anthropic_success()]);
            let setup = Setup::both(&openai, &anthropic);
            let engine = setup.engine();
            let attempts = rows_of(&complete(&engine));
            let observed = (
                status,
                attempts,
                openai.requests().len(),
                engine.breaker_states(),
            );
            let openai = match status {
                401 | 403 => BreakerState::Open,
                _ => BreakerState::Closed,
            };
            let states = vec![
                ("anthropic".into(), BreakerState::Closed),
                ("openai".into(), openai),
            ];
            let failed_over = vec![http_failed("openai", status), succeeded("anthropic")];
            (observed, (status, failed_over, 1, states))
        })
        .unzip();
    assert_eq!(observed, expected);
}

#[test]
fn final_statuses_are_not_retried_even_without_a_fallback() {
    set_keys();
    // Per status: (status, error kind, attempts, requests openai received).
    let (observed, expected): (Vec<_>, Vec<_>) = FINAL
        .iter()
        .map(|&status| {
            let error = openai_error(status, "no", json!("invalid"));
            let openai = TestServer::start(vec![error, openai_success()]);
            let setup = Setup::openai_only(&openai);
            let result = complete(&setup.engine());
            let kind = result.as_ref().err().map(prompt_config::Error::kind);
            let observed = (status, kind, rows_of(&result), openai.requests().len());
            let once = vec![http_failed("openai", status)];
            (observed, (status, Some(ErrorKind::ProviderError), once, 1))
        })
        .unzip();
    assert_eq!(observed, expected);
}

#[test]
fn context_length_exceeded_moves_to_the_next_model_without_retrying() {
    set_keys();
    let message = "This model's maximum context length is 8192 tokens.";
    let too_long = openai_error(400, message, json!("context_length_exceeded"));
    let openai = TestServer::start(vec![too_long, openai_success()]);
    let setup = Setup::new(providers(Some(&openai), None), &[OPENAI, OPENAI_LONG]);
    let engine = setup.engine();
    let completion = complete(&engine).unwrap();
    let too_long = row("openai", Failed, Some(400), Some("context_length"));
    assert_eq!(rows(&completion.attempts), [too_long, succeeded("openai")]);
    let models: Vec<Value> = openai
        .requests()
        .iter()
        .map(|r| r.json()["model"].clone())
        .collect();
    assert_eq!(models, [OPENAI.1, OPENAI_LONG.1]);
    assert_eq!(
        (completion.model.as_str(), completion.attempts[1].wait_ms),
        (OPENAI_LONG.1, 0.0)
    );
    assert_eq!(state_of(&engine, "openai"), BreakerState::Closed);
}

/// A single-model chain whose first reply is `fault_reply` and second a success: the fault is
/// a retryable failure of `error_type` bounded by the attempt timeout, and the retry succeeds.
fn assert_retried_transport_fault(fault_reply: Reply, error_type: &str) {
    let openai = TestServer::start(vec![fault_reply, openai_success()]);
    let setup = Setup::openai_only(&openai);
    let started = Instant::now();
    let completion = complete(&setup.engine()).unwrap();
    let elapsed = started.elapsed();
    assert_eq!(
        rows(&completion.attempts),
        [fault("openai", error_type), succeeded("openai")]
    );
    let bound = (Duration::from_millis(TIMEOUT_MS) + MARGIN).as_secs_f64() * 1000.0;
    let first = &completion.attempts[0];
    assert!(first.latency_ms < bound, "{first:?}");
    assert!(
        elapsed < Duration::from_millis(2 * TIMEOUT_MS) + MARGIN,
        "{elapsed:?}"
    );
    assert_eq!(openai.requests().len(), 2);
}

#[test]
fn connection_refused_is_a_retryable_connect_failure() {
    set_keys();
    let mut config = providers(None, None);
    config["providers"]["openai"] = openai_provider(&dead_url());
    let setup = Setup::new(config, &[OPENAI]);
    let started = Instant::now();
    let error = failure(complete(&setup.engine()));
    assert_eq!(error.kind(), "provider_error");
    assert_eq!(rows(error.attempts()), vec![fault("openai", "connect"); 3]);
    assert!(started.elapsed() < Duration::from_millis(3 * TIMEOUT_MS) + MARGIN);
}

#[test]
fn connection_refused_on_the_primary_fails_over_to_the_fallback() {
    set_keys();
    let anthropic = TestServer::start(vec![anthropic_success()]);
    let mut config = providers(None, Some(&anthropic));
    config["providers"]["openai"] = openai_provider(&dead_url());
    let setup = Setup::new(config, &[OPENAI, ANTHROPIC]);
    let completion = complete(&setup.engine()).unwrap();
    assert_eq!(
        rows(&completion.attempts),
        [fault("openai", "connect"), succeeded("anthropic")]
    );
}

#[test]
fn a_connection_closed_before_the_status_line_is_a_retryable_connect_failure() {
    set_keys();
    assert_retried_transport_fault(Reply::close_immediately(), "connect");
}

#[test]
fn a_truncated_body_is_a_retryable_malformed_failure() {
    set_keys();
    assert_retried_transport_fault(openai_success().truncated(), "malformed");
}

#[test]
fn invalid_json_with_status_200_is_a_retryable_malformed_failure() {
    set_keys();
    let reply = Reply::status(200)
        .header("content-type", "application/json")
        .body("{\"choices\": [");
    assert_retried_transport_fault(reply, "malformed");
}

#[test]
fn a_body_slower_than_the_timeout_is_a_retryable_timeout() {
    set_keys();
    // 8 bytes every 100 ms: the body takes seconds, the timeout is 400 ms.
    let reply = openai_success().slow_body(Duration::from_millis(100));
    assert_retried_transport_fault(reply, "timeout");
}

#[test]
fn a_hanging_server_is_a_retryable_timeout() {
    set_keys();
    assert_retried_transport_fault(Reply::hang(), "timeout");
}

#[test]
fn the_deadline_ends_the_call_with_timeout_when_every_provider_hangs() {
    set_keys();
    let openai = TestServer::start_with_fallback(vec![], Reply::hang());
    let anthropic = TestServer::start_with_fallback(vec![], Reply::hang());
    let mut config = providers(Some(&openai), Some(&anthropic));
    let deadline = Duration::from_millis(1000);
    config["client"]["deadline_ms"] = json!(1000);
    // Attempts may take 600 ms, so the deadline cuts the second one short; a single attempt
    // on anthropic keeps the list exact whatever the precision of the timers.
    config["providers"]["openai"]["timeout_ms"] = json!(600);
    config["providers"]["anthropic"]["timeout_ms"] = json!(600);
    config["providers"]["anthropic"]["retry"]["max_attempts"] = json!(1);
    let setup = Setup::new(config, &[OPENAI, ANTHROPIC]);
    let engine = setup.engine();
    let started = Instant::now();
    let error = failure(complete(&engine));
    let elapsed = started.elapsed();
    assert_eq!(error.kind(), "timeout");
    let timed_out = [fault("openai", "timeout"), fault("anthropic", "timeout")];
    assert_eq!(rows(error.attempts()), timed_out);
    assert!(elapsed < deadline + MARGIN, "{elapsed:?}");
    let last = &error.attempts()[1];
    assert!(
        last.latency_ms < 600.0,
        "the deadline shortened the last attempt: {last:?}"
    );
    assert_eq!(
        (openai.requests().len(), anthropic.requests().len()),
        (1, 1)
    );
}

/// Open for exactly the asked wait, half-open when it elapsed, closed by the probe's success.
fn assert_probe_cycle(setup: &Setup, breaker: &str, open_for_ms: u64) {
    assert_eq!(
        setup.events.transitions(),
        [
            format!("{breaker}: Closed -> Open (rate_limited, Some({open_for_ms}))"),
            format!("{breaker}: Open -> HalfOpen (open_timeout_elapsed, None)"),
            format!("{breaker}: HalfOpen -> Closed (probe_succeeded, None)"),
        ]
    );
}

#[test]
fn retry_after_ms_is_waited_and_the_retry_is_the_half_open_probe() {
    set_keys();
    let limited = openai_error(429, "slow down", json!("rate_limit_exceeded"))
        .header("retry-after-ms", "300");
    let openai = TestServer::start(vec![limited, openai_success()]);
    let setup = Setup::openai_only(&openai);
    let engine = setup.engine();
    let completion = complete(&engine).unwrap();
    assert_eq!(
        rows(&completion.attempts),
        [http_failed("openai", 429), succeeded("openai")]
    );
    let retry = &completion.attempts[1];
    assert!((retry.wait_ms - 300.0).abs() < 1e-6, "{retry:?}");
    assert_probe_cycle(&setup, "openai", 300);
    assert_eq!(state_of(&engine, "openai"), BreakerState::Closed);
}

#[test]
fn retry_after_seconds_is_waited_and_the_retry_is_the_half_open_probe() {
    set_keys();
    let limited = anthropic_error(429, "rate_limit_error", "slow down").header("Retry-After", "1");
    let anthropic = TestServer::start(vec![limited, anthropic_success()]);
    let setup = Setup::new(providers(None, Some(&anthropic)), &[ANTHROPIC]);
    let engine = setup.engine();
    let completion = complete(&engine).unwrap();
    let expected = [http_failed("anthropic", 429), succeeded("anthropic")];
    assert_eq!(rows(&completion.attempts), expected);
    let retry = &completion.attempts[1];
    assert!((retry.wait_ms - 1000.0).abs() < 1e-6, "{retry:?}");
    assert_probe_cycle(&setup, "anthropic", 1000);
    assert_eq!(state_of(&engine, "anthropic"), BreakerState::Closed);
}

#[test]
fn three_consecutive_503s_open_the_breaker_and_the_next_call_skips_openai() {
    set_keys();
    let openai = TestServer::start_with_fallback(vec![], openai_error(503, "busy", Value::Null));
    let anthropic = TestServer::start_with_fallback(vec![], anthropic_success());
    let setup = Setup::both(&openai, &anthropic);
    let engine = setup.engine();
    for call in 0..3 {
        let attempts = rows(&complete(&engine).unwrap().attempts);
        let expected = [http_failed("openai", 503), succeeded("anthropic")];
        assert_eq!(attempts, expected, "call {call}");
    }
    assert_eq!(state_of(&engine, "openai"), BreakerState::Open);
    let completion = complete(&engine).unwrap();
    let skipped = row("openai", SkippedCircuitOpen, None, Some("circuit_open"));
    assert_eq!(
        rows(&completion.attempts),
        [skipped, succeeded("anthropic")]
    );
    assert_eq!(
        openai.requests().len(),
        3,
        "no request while the breaker is open"
    );
    assert_eq!(anthropic.requests().len(), 4);
    let opened = "openai: Closed -> Open (consecutive_failures, Some(10000))";
    assert_eq!(setup.events.transitions(), [opened]);
    let events = setup.events.0.lock();
    let names: Vec<Value> = events.iter().map(|e| json!(e)["event"].clone()).collect();
    assert_eq!(names, ["circuit.transition"]);
}

#[test]
fn a_missing_api_key_on_the_only_provider_fails_without_a_request_naming_the_variable() {
    set_keys();
    let openai = TestServer::start(vec![openai_success()]);
    let mut config = providers(Some(&openai), None);
    config["providers"]["openai"]["api_key_env"] = json!(UNSET_KEY_VARIABLE);
    let setup = Setup::new(config, &[OPENAI]);
    let error = failure(complete(&setup.engine()));
    assert_eq!(error.kind(), "missing_api_key");
    assert_eq!(rows(error.attempts()), [fault("openai", "missing_api_key")]);
    assert!(error.to_string().contains(UNSET_KEY_VARIABLE), "{error}");
    assert_eq!(openai.connections(), 0);
}

#[test]
fn a_missing_api_key_with_a_healthy_fallback_moves_on() {
    set_keys();
    let openai = TestServer::start(vec![openai_success()]);
    let anthropic = TestServer::start(vec![anthropic_success()]);
    let mut config = providers(Some(&openai), Some(&anthropic));
    config["providers"]["openai"]["api_key_env"] = json!(UNSET_KEY_VARIABLE);
    let setup = Setup::new(config, &[OPENAI, ANTHROPIC]);
    let completion = complete(&setup.engine()).unwrap();
    let expected = [fault("openai", "missing_api_key"), succeeded("anthropic")];
    assert_eq!(rows(&completion.attempts), expected);
    assert_eq!(openai.connections(), 0);
}

#[test]
fn openai_receives_the_rendered_request_with_its_bearer_key() {
    set_keys();
    let openai = TestServer::start(vec![openai_success()]);
    let setup = Setup::openai_only(&openai);
    let completion = complete(&setup.engine()).unwrap();
    assert_eq!(rows(&completion.attempts), [succeeded("openai")]);
    let answer = (completion.text.as_str(), completion.response_id.as_deref());
    assert_eq!(answer, ("A fox jumps.", Some("chatcmpl-fault-1")));
    let request = openai.single_request();
    let target = (request.method.as_str(), request.path.as_str());
    assert_eq!(target, ("POST", "/v1/chat/completions"));
    let bearer = format!("Bearer {OPENAI_KEY}");
    assert_eq!(request.header("authorization"), Some(bearer.as_str()));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.header("x-request-id"),
        Some(completion.request_id.as_str())
    );
    let messages = json!([
        {"role": "system", "content": SYSTEM_TEMPLATE},
        {"role": "user", "content": format!("Summarise: {TEXT}")}
    ]);
    let body =
        json!({"model": "gpt-test", "messages": messages, "temperature": 0.2, "max_tokens": 100});
    assert_eq!(request.json(), body);
}

#[test]
fn anthropic_receives_the_rendered_request_with_its_api_key_header() {
    set_keys();
    let anthropic = TestServer::start(vec![anthropic_success()]);
    let setup = Setup::new(providers(None, Some(&anthropic)), &[ANTHROPIC]);
    let completion = complete(&setup.engine()).unwrap();
    assert_eq!(rows(&completion.attempts), [succeeded("anthropic")]);
    let answer = (completion.text.as_str(), completion.response_id.as_deref());
    assert_eq!(answer, ("A fox jumps.", Some("msg_fault_1")));
    let request = anthropic.single_request();
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v1/messages")
    );
    assert_eq!(request.header("x-api-key"), Some(ANTHROPIC_KEY));
    assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(request.header("authorization"), None);
    let messages = json!([{"role": "user", "content": format!("Summarise: {TEXT}")}]);
    let body = json!({
        "model": "claude-test", "max_tokens": 100, "system": SYSTEM_TEMPLATE,
        "messages": messages, "temperature": 0.2
    });
    assert_eq!(request.json(), body);
}

#[test]
fn api_keys_never_appear_in_errors_or_debug_output_even_when_servers_echo_them() {
    set_keys();
    let openai_echo = Reply::text(500, &format!("bad header Bearer {OPENAI_KEY}"));
    let openai = TestServer::start(vec![openai_echo]);
    let echoed = format!("invalid x-api-key: {ANTHROPIC_KEY}");
    let anthropic = TestServer::start(vec![anthropic_error(401, "authentication_error", &echoed)]);
    let setup = Setup::both(&openai, &anthropic);
    let engine = setup.engine();
    let error = failure(complete(&engine));
    assert_eq!(error.kind(), "all_providers_failed");
    let expected = [http_failed("openai", 500), http_failed("anthropic", 401)];
    assert_eq!(rows(error.attempts()), expected);
    for attempt in error.attempts() {
        let message = attempt.message.as_deref().unwrap_or_default();
        assert!(
            message.contains("***"),
            "the echoed key is masked: {message}"
        );
    }
    let details = error.details();
    let error = prompt_config::Error::Complete(error);
    let shown = format!("{error}\n{error:?}\n{error:#?}\n{details}\n{engine:?}\n{engine:#?}");
    for key in [OPENAI_KEY, ANTHROPIC_KEY] {
        assert!(!shown.contains(key), "{key} leaked:\n{shown}");
    }
}

#[test]
fn sequential_completes_reuse_one_connection() {
    set_keys();
    let openai = TestServer::start(vec![openai_success(), openai_success(), openai_success()]);
    let setup = Setup::openai_only(&openai);
    let engine = setup.engine();
    for _ in 0..3 {
        assert_eq!(
            rows(&complete(&engine).unwrap().attempts),
            [succeeded("openai")]
        );
    }
    let connections: Vec<usize> = openai.requests().iter().map(|r| r.connection).collect();
    assert_eq!(connections, [0, 0, 0]);
    assert_eq!(openai.connections(), 1);
}
