//! The failover client on mock providers and a manual clock: retries, backoff, Retry-After,
//! failover, circuit breakers, deadlines, the attempts list and budgets, deterministic and fast.

use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::TimeZone;
use parking_lot::Mutex;
use prompt_config::client::{
    AttemptOutcome, BreakerState, ClientEvent, Clock, EventSink, ManualClock, SeededRandom,
};
use prompt_config::{Context, Engine, EngineOptions, Error};
use serde_json::{Value, json};

use crate::support::summary_tree;
use crate::support::temp_dir::TempDir;

/// Collects every client event.
#[derive(Default)]
struct Events(Mutex<Vec<ClientEvent>>);

impl EventSink for Events {
    fn emit(&self, _request_id: &str, event: &ClientEvent) {
        self.0.lock().push(event.clone());
    }
}

impl Events {
    fn transitions(&self) -> Vec<(BreakerState, BreakerState, String)> {
        self.0
            .lock()
            .iter()
            .filter_map(|event| match event {
                ClientEvent::CircuitTransition(transition) => {
                    Some((transition.from, transition.to, transition.reason.clone()))
                }
                _ => None,
            })
            .collect()
    }

    fn alerts(&self) -> Vec<(String, String, u32)> {
        self.0
            .lock()
            .iter()
            .filter_map(|event| match event {
                ClientEvent::BudgetAlert(alert) => Some((
                    alert.scope.clone(),
                    alert.period.clone(),
                    alert.threshold_percent,
                )),
                _ => None,
            })
            .collect()
    }
}

/// A private configuration: providers `openai` and `anthropic` (mocked), one feature `summary`
/// with `openai/gpt-test` primary and `anthropic/claude-test` fallback.
struct Setup {
    root: PathBuf,
    /// Removes `root` on drop.
    _directory: TempDir,
    clock: Arc<ManualClock>,
    events: Arc<Events>,
}

fn providers_json() -> Value {
    let provider = |kind: &str, model: &str| {
        json!({
            "kind": kind,
            "timeout_ms": 2000,
            "retry": {"max_attempts": 3, "base_delay_ms": 100, "max_delay_ms": 1000, "max_retry_after_ms": 5000},
            "circuit_breaker": {"consecutive_failures": 3, "minimum_calls": 100, "open_ms": 10000, "max_open_ms": 40000},
            "mock": {"latency_ms": 50},
            "models": {
                model: {"input_per_million": 1.0, "output_per_million": 2.0},
                format!("{model}-mini"): {"input_per_million": 0.1, "output_per_million": 0.2}
            }
        })
    };
    json!({
        "client": {"deadline_ms": 8000},
        "providers": {"openai": provider("openai", "gpt-test"), "anthropic": provider("anthropic", "claude-test")}
    })
}

const TEMPLATE: &str = "Summarise: {{ text }}";

fn feature_json() -> Value {
    json!({
        "feature": "summary",
        "active_version": "1.0.0",
        "model": {"provider": "openai", "name": "gpt-test", "parameters": {"max_tokens": 100}},
        "fallbacks": [{"provider": "anthropic", "name": "claude-test", "parameters": {"max_tokens": 100}}],
        "versions": {
            "1.0.0": {
                "status": "released",
                "sha256": {"user.j2": prompt_config::prompt::sha256_hex(TEMPLATE.as_bytes())},
                "messages": [{"role": "user", "template": "user.j2"}],
                "variables": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
            }
        }
    })
}

impl Setup {
    fn new(
        edit_providers: impl FnOnce(&mut Value),
        edit_feature: impl FnOnce(&mut Value),
    ) -> Setup {
        let mut providers = providers_json();
        edit_providers(&mut providers);
        let mut feature = feature_json();
        edit_feature(&mut feature);
        let (directory, root) = summary_tree::write("failover", &providers, &feature, TEMPLATE);
        let start = chrono::Utc
            .with_ymd_and_hms(2026, 11, 27, 10, 0, 0)
            .unwrap();
        Setup {
            root,
            _directory: directory,
            clock: Arc::new(ManualClock::new(start)),
            events: Arc::new(Events::default()),
        }
    }

    fn plain() -> Setup {
        Setup::new(|_| {}, |_| {})
    }

    fn engine(&self) -> Engine {
        let options = EngineOptions::new(self.root.join("config"), self.root.join("prompts"))
            .with_mock(true)
            .with_clock(Arc::clone(&self.clock) as Arc<dyn Clock>)
            .with_random(Arc::new(SeededRandom::new(1)))
            .with_event_sink(Arc::clone(&self.events) as Arc<dyn EventSink>);
        Engine::open(options).unwrap()
    }
}

fn context() -> Context {
    Context::new("user-1").variable("text", "The quick brown fox jumps over the lazy dog.")
}

fn outcomes(
    attempts: &[prompt_config::client::Attempt],
) -> Vec<(String, AttemptOutcome, Option<u16>)> {
    attempts
        .iter()
        .map(|attempt| (attempt.provider.clone(), attempt.outcome, attempt.status))
        .collect()
}

fn failure(error: Error) -> prompt_config::client::CompleteError {
    match error {
        Error::Complete(failure) => failure,
        other => panic!("expected a completion failure, got {other}"),
    }
}

#[test]
fn success_on_the_primary_returns_text_usage_cost_and_one_attempt() {
    let setup = Setup::plain();
    let completion = setup.engine().complete("summary", &context()).unwrap();
    assert_eq!(
        (completion.provider.as_str(), completion.model.as_str()),
        ("openai", "gpt-test")
    );
    assert!(completion.text.contains("mock openai/gpt-test"));
    assert!(completion.usage.input_tokens > 0 && completion.usage.output_tokens > 0);
    let expected = (completion.usage.input_tokens as f64 * 1.0
        + completion.usage.output_tokens as f64 * 2.0)
        / 1e6;
    assert!((completion.cost_usd - expected).abs() < 1e-12);
    assert_eq!(
        outcomes(&completion.attempts),
        [("openai".into(), AttemptOutcome::Success, None)]
    );
    assert!((completion.latency_ms - 50.0).abs() < 1e-6);
    assert!(completion.request_id.starts_with("req_"));
}

#[test]
fn transient_failure_fails_over_at_once_when_the_next_provider_is_healthy() {
    let setup = Setup::plain();
    let engine = setup.engine();
    engine.mock_provider("openai").unwrap().fail_next(1, 503);
    let completion = engine.complete("summary", &context()).unwrap();
    assert_eq!(completion.provider, "anthropic");
    assert_eq!(
        outcomes(&completion.attempts),
        [
            ("openai".into(), AttemptOutcome::Failed, Some(503)),
            ("anthropic".into(), AttemptOutcome::Success, None)
        ]
    );
    assert_eq!(
        completion.attempts[1].wait_ms, 0.0,
        "no backoff before failing over"
    );
}

#[test]
fn retries_with_backoff_when_no_healthy_alternative_exists() {
    let setup = Setup::new(|_| {}, |feature| feature["fallbacks"] = json!([]));
    let engine = setup.engine();
    engine.mock_provider("openai").unwrap().fail_next(2, 502);
    let completion = engine.complete("summary", &context()).unwrap();
    assert_eq!(completion.attempts.len(), 3);
    assert_eq!(completion.attempts[2].outcome, AttemptOutcome::Success);
    // Full jitter: retry n waits at most min(cap, base * 2^(n-1)).
    assert!(completion.attempts[1].wait_ms <= 100.0);
    assert!(completion.attempts[2].wait_ms <= 200.0);
}

#[test]
fn retry_after_is_honoured() {
    let setup = Setup::new(|_| {}, |feature| feature["fallbacks"] = json!([]));
    let engine = setup.engine();
    engine
        .mock_provider("openai")
        .unwrap()
        .rate_limit_next(1, Some(Duration::from_millis(1500)));
    let completion = engine.complete("summary", &context()).unwrap();
    assert_eq!(completion.attempts[0].status, Some(429));
    assert_eq!(completion.attempts[1].wait_ms, 1500.0);
}

#[test]
fn retry_after_beyond_the_maximum_moves_on_instead_of_waiting() {
    let setup = Setup::new(|_| {}, |feature| feature["fallbacks"] = json!([]));
    let engine = setup.engine();
    engine
        .mock_provider("openai")
        .unwrap()
        .rate_limit_next(1, Some(Duration::from_secs(60)));
    let error = failure(engine.complete("summary", &context()).unwrap_err());
    assert_eq!(error.kind(), "rate_limited");
    assert_eq!(error.attempts().len(), 1);
    assert!(setup.clock.elapsed() < Duration::from_secs(1));
}

#[test]
fn client_errors_are_not_retried_and_do_not_trip_the_breaker() {
    let setup = Setup::plain();
    let engine = setup.engine();
    engine.mock_provider("openai").unwrap().fail_next(5, 400);
    for _ in 0..5 {
        let completion = engine.complete("summary", &context()).unwrap();
        assert_eq!(
            outcomes(&completion.attempts)[0],
            ("openai".into(), AttemptOutcome::Failed, Some(400))
        );
        assert_eq!(completion.provider, "anthropic");
    }
    assert!(
        engine
            .breaker_states()
            .iter()
            .all(|(_, state)| *state == BreakerState::Closed)
    );
}

#[test]
fn breaker_opens_after_consecutive_failures_and_traffic_skips_the_provider() {
    let setup = Setup::plain();
    let engine = setup.engine();
    engine.mock_provider("openai").unwrap().start_outage(503);
    for _ in 0..3 {
        assert_eq!(
            engine.complete("summary", &context()).unwrap().provider,
            "anthropic"
        );
    }
    assert_eq!(
        setup.events.transitions(),
        [(
            BreakerState::Closed,
            BreakerState::Open,
            "consecutive_failures".to_string()
        )]
    );
    let calls_before = engine.mock_provider("openai").unwrap().calls();
    let completion = engine.complete("summary", &context()).unwrap();
    assert_eq!(
        completion.attempts[0].outcome,
        AttemptOutcome::SkippedCircuitOpen
    );
    assert_eq!(
        engine.mock_provider("openai").unwrap().calls(),
        calls_before,
        "no traffic while open"
    );
}

#[test]
fn half_open_probe_after_the_open_time_closes_the_breaker_on_success() {
    let setup = Setup::plain();
    let engine = setup.engine();
    let openai = engine.mock_provider("openai").unwrap();
    openai.start_outage(503);
    for _ in 0..3 {
        engine.complete("summary", &context()).unwrap();
    }
    openai.end_outage();
    setup.clock.advance(Duration::from_secs(10));
    let completion = engine.complete("summary", &context()).unwrap();
    assert_eq!(completion.provider, "openai");
    let reasons: Vec<String> = setup
        .events
        .transitions()
        .into_iter()
        .map(|transition| transition.2)
        .collect();
    assert_eq!(
        reasons,
        [
            "consecutive_failures",
            "open_timeout_elapsed",
            "probe_succeeded"
        ]
    );
    assert!(
        engine
            .breaker_states()
            .iter()
            .all(|(_, state)| *state == BreakerState::Closed)
    );
}

#[test]
fn failed_probe_reopens_the_breaker_for_longer() {
    let setup = Setup::plain();
    let engine = setup.engine();
    engine.mock_provider("openai").unwrap().start_outage(503);
    for _ in 0..3 {
        engine.complete("summary", &context()).unwrap();
    }
    setup.clock.advance(Duration::from_secs(10));
    engine.complete("summary", &context()).unwrap();
    let open_times: Vec<Option<u64>> = setup
        .events
        .0
        .lock()
        .iter()
        .filter_map(|event| match event {
            ClientEvent::CircuitTransition(transition) if transition.to == BreakerState::Open => {
                Some(transition.open_for_ms)
            }
            _ => None,
        })
        .collect();
    assert_eq!(open_times, [Some(10_000), Some(20_000)]);
}

#[test]
fn authentication_failure_opens_the_breaker_at_once() {
    let setup = Setup::plain();
    let engine = setup.engine();
    engine.mock_provider("openai").unwrap().fail_next(1, 401);
    engine.complete("summary", &context()).unwrap();
    assert_eq!(
        setup.events.transitions(),
        [(
            BreakerState::Closed,
            BreakerState::Open,
            "misconfigured".to_string()
        )]
    );
}

#[test]
fn every_breaker_open_fails_fast_with_circuit_open() {
    let setup = Setup::plain();
    let engine = setup.engine();
    engine.mock_provider("openai").unwrap().fail_next(1, 401);
    engine.mock_provider("anthropic").unwrap().fail_next(1, 403);
    let _ = engine.complete("summary", &context());
    let elapsed_before = setup.clock.elapsed();
    let error = failure(engine.complete("summary", &context()).unwrap_err());
    assert_eq!(error.kind(), "circuit_open");
    assert!(error.to_string().contains("open circuit breaker"));
    assert_eq!(
        setup.clock.elapsed(),
        elapsed_before,
        "failing fast takes no time"
    );
}

#[test]
fn every_breaker_open_can_try_the_provider_that_opened_first() {
    let setup = Setup::new(
        |providers| providers["client"]["when_all_open"] = json!("try_earliest_opened"),
        |_| {},
    );
    let engine = setup.engine();
    engine.mock_provider("openai").unwrap().fail_next(1, 401);
    engine.mock_provider("anthropic").unwrap().fail_next(1, 403);
    let _ = engine.complete("summary", &context());
    let completion = engine.complete("summary", &context()).unwrap();
    assert_eq!(completion.provider, "openai");
    assert_eq!(
        completion.attempts.last().unwrap().outcome,
        AttemptOutcome::Success
    );
}

#[test]
fn the_deadline_bounds_every_attempt_and_sleep_together() {
    let setup = Setup::plain();
    let engine = setup.engine();
    engine.mock_provider("openai").unwrap().time_out_next(10);
    engine.mock_provider("anthropic").unwrap().time_out_next(10);
    let error = failure(engine.complete("summary", &context()).unwrap_err());
    assert_eq!(error.kind(), "timeout");
    assert!(
        setup.clock.elapsed() <= Duration::from_millis(8000),
        "took {:?}",
        setup.clock.elapsed()
    );
}

#[test]
fn when_everything_fails_the_error_lists_every_attempt_in_order() {
    let setup = Setup::plain();
    let engine = setup.engine();
    engine.mock_provider("openai").unwrap().fail_next(1, 500);
    engine.mock_provider("anthropic").unwrap().fail_next(3, 529);
    let error = failure(engine.complete("summary", &context()).unwrap_err());
    assert_eq!(error.kind(), "all_providers_failed");
    assert_eq!(
        outcomes(error.attempts()),
        [
            ("openai".into(), AttemptOutcome::Failed, Some(500)),
            ("anthropic".into(), AttemptOutcome::Failed, Some(529)),
            ("anthropic".into(), AttemptOutcome::Failed, Some(529)),
            ("anthropic".into(), AttemptOutcome::Failed, Some(529)),
        ]
    );
    let numbers: Vec<u32> = error
        .attempts()
        .iter()
        .map(|attempt| attempt.number)
        .collect();
    assert_eq!(numbers, [1, 2, 3, 4]);
    assert_eq!(
        Error::Complete(error).details()["attempts"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
}

#[test]
fn breaker_state_survives_a_reload() {
    let setup = Setup::plain();
    let engine = setup.engine();
    engine.mock_provider("openai").unwrap().fail_next(1, 401);
    engine.complete("summary", &context()).unwrap();
    let feature = setup.root.join("config/features/summary.json");
    let mut document: Value = serde_json::from_str(&fs::read_to_string(&feature).unwrap()).unwrap();
    document["description"] = json!("edited");
    fs::write(&feature, document.to_string()).unwrap();
    engine.reload().unwrap();
    assert!(
        engine
            .breaker_states()
            .contains(&("openai".to_string(), BreakerState::Open))
    );
}

fn with_feature_budget(policy: &str, daily_usd: f64) -> Setup {
    let policy = policy.to_string();
    Setup::new(
        |_| {},
        move |feature| {
            feature["budget"] = json!({
                "daily_usd": daily_usd,
                "policy": policy,
                "downgrade": {"model": {"provider": "openai", "name": "gpt-test-mini", "parameters": {"max_tokens": 50}}}
            });
        },
    )
}

#[test]
fn budget_thresholds_alert_once_each() {
    // Each call's worst case is about 0.0003 USD; 0.004 USD lasts a dozen calls.
    let setup = with_feature_budget("allow", 0.004);
    let engine = setup.engine();
    for _ in 0..40 {
        engine.complete("summary", &context()).unwrap();
    }
    let thresholds: Vec<u32> = setup
        .events
        .alerts()
        .into_iter()
        .map(|alert| alert.2)
        .collect();
    assert_eq!(thresholds, [80, 90, 95, 100]);
}

#[test]
fn block_policy_refuses_calls_with_budget_exceeded() {
    let setup = with_feature_budget("block", 0.001);
    let engine = setup.engine();
    let mut refused = None;
    for _ in 0..20 {
        if let Err(error) = engine.complete("summary", &context()) {
            refused = Some(error);
            break;
        }
    }
    let error = refused.expect("the budget never refused a call");
    assert_eq!(error.kind(), "budget_exceeded");
    assert_eq!(error.details()["budget"]["scope"], "feature:summary");
    let spent: f64 = engine
        .budget_status()
        .iter()
        .filter(|status| status.period == "day")
        .map(|status| status.settled_usd)
        .sum();
    assert!(spent <= 0.001, "spent {spent}");
}

#[test]
fn downgrade_policy_switches_to_the_cheaper_chain() {
    let setup = with_feature_budget("downgrade", 0.001);
    let engine = setup.engine();
    let completions: Vec<_> = (0..20)
        .map(|_| engine.complete("summary", &context()).unwrap())
        .collect();
    assert!(!completions[0].downgraded);
    let last = completions.last().unwrap();
    assert!(last.downgraded);
    assert_eq!(last.model, "gpt-test-mini");
}

#[test]
fn concurrent_calls_never_overspend_beyond_the_reservations_in_flight() {
    let setup = with_feature_budget("block", 0.01);
    let engine = Arc::new(setup.engine());
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let engine = Arc::clone(&engine);
            std::thread::spawn(move || {
                (0..40)
                    .filter(|_| engine.complete("summary", &context()).is_ok())
                    .count()
            })
        })
        .collect();
    let succeeded: usize = threads
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .sum();
    let spent: f64 = engine
        .budget_status()
        .iter()
        .filter(|status| status.period == "day")
        .map(|status| status.settled_usd)
        .sum();
    assert!(succeeded > 0);
    assert!(spent <= 0.01 + 1e-12, "spent {spent} over the 0.01 limit");
}

#[test]
fn exhausted_client_side_rate_limit_moves_to_the_next_provider() {
    let setup = Setup::new(
        |providers| {
            providers["providers"]["openai"]["rate_limit"] = json!({"requests_per_minute": 1})
        },
        |_| {},
    );
    let engine = setup.engine();
    assert_eq!(
        engine.complete("summary", &context()).unwrap().provider,
        "openai"
    );
    let completion = engine.complete("summary", &context()).unwrap();
    assert_eq!(
        outcomes(&completion.attempts),
        [
            ("openai".into(), AttemptOutcome::SkippedRateLimited, None),
            ("anthropic".into(), AttemptOutcome::Success, None)
        ]
    );
}

#[test]
fn client_side_rate_limit_waits_up_to_its_bound() {
    let setup = Setup::new(
        |providers| {
            providers["providers"]["openai"]["rate_limit"] =
                json!({"requests_per_minute": 60, "max_wait_ms": 2000});
            // No simulated latency, so the bucket does not refill between calls.
            providers["providers"]["openai"]["mock"]["latency_ms"] = json!(0);
        },
        |feature| feature["fallbacks"] = json!([]),
    );
    let engine = setup.engine();
    for _ in 0..60 {
        assert_eq!(
            engine.complete("summary", &context()).unwrap().attempts[0].wait_ms,
            0.0
        );
    }
    // The bucket of 60 is empty; one request refills in a second, within the 2 s bound.
    let completion = engine.complete("summary", &context()).unwrap();
    assert_eq!(completion.provider, "openai");
    assert!(
        (completion.attempts[0].wait_ms - 1000.0).abs() < 1.0,
        "{}",
        completion.attempts[0].wait_ms
    );
}

#[test]
fn per_model_breakers_keep_other_models_of_the_provider_serving() {
    let setup = Setup::new(
        |providers| providers["providers"]["openai"]["circuit_breaker"]["per_model"] = json!(true),
        |feature| feature["fallbacks"] = json!([{"provider": "openai", "name": "gpt-test-mini", "parameters": {"max_tokens": 100}}]),
    );
    let engine = setup.engine();
    engine.mock_provider("openai").unwrap().fail_next(1, 401);
    let completion = engine.complete("summary", &context()).unwrap();
    assert_eq!(
        (completion.provider.as_str(), completion.model.as_str()),
        ("openai", "gpt-test-mini")
    );
    assert_eq!(
        completion.attempts[1].wait_ms, 0.0,
        "another model's breaker is a healthy alternative"
    );
    let states = engine.breaker_states();
    assert!(
        states.contains(&("openai/gpt-test".to_string(), BreakerState::Open)),
        "{states:?}"
    );
    assert!(
        states.contains(&("openai/gpt-test-mini".to_string(), BreakerState::Closed)),
        "{states:?}"
    );
}
