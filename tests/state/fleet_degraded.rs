//! Redis failing under `Engine::complete` (issue 11): killed mid-run, no call fails because of
//! it, `state.degraded` is logged and the gauge set, and after a restart the state is shared
//! again; stalled, a call is delayed by at most the timeout; `while_degraded` decides between
//! serving on the local ledger and refusing.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prompt_config::Error;
use serde_json::json;

use crate::support::fleet;
use crate::support::fleet::{fleet_spent, wait_until};
use crate::support::one_feature::asking;
use crate::support::redis_server::RedisServer;
use crate::support::temp_dir::TempDir;

/// The connect and command timeouts of these engines.
const TIMEOUT: Duration = Duration::from_millis(100);
/// What a loaded shared test machine may add: generous on purpose.
const SLACK: Duration = Duration::from_millis(950);

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn redis_killed_mid_run_fails_no_call_and_the_state_is_shared_again_after_a_restart() {
    let dir = TempDir::new("state_killed");
    let log = dir.path().join("telemetry.jsonl");
    let config = fleet::config(
        Some(json!({"daily_usd": 100.0, "while_degraded": "local"})),
        Some(json!({"requests_per_minute": 1_000_000, "tokens_per_minute": 1_000_000_000})),
    );
    let mut server = RedisServer::start();
    let engine = fleet::engine(&config.root, fleet::redis(&server.url(), TIMEOUT), &log);
    let stop = AtomicBool::new(false);
    let (calls, failures) = (AtomicUsize::new(0), AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    match engine.complete("ask", &asking("x")) {
                        Ok(_) => calls.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failures.fetch_add(1, Ordering::Relaxed),
                    };
                    std::thread::sleep(Duration::from_millis(2));
                }
            });
        }
        wait_until("calls on Redis", || fleet_spent(&server) > 0);
        server.kill();
        wait_until("degraded", || engine.metrics().state_degraded == 1);
        let served = calls.load(Ordering::Relaxed);
        wait_until("calls while degraded", || {
            calls.load(Ordering::Relaxed) > served + 20
        });
        server.restart();
        wait_until("restored", || engine.metrics().state_degraded == 0);
        wait_until("a call landing in Redis again", || fleet_spent(&server) > 0);
        stop.store(true, Ordering::Relaxed);
    });
    assert_eq!(failures.load(Ordering::Relaxed), 0, "calls failed");
    engine.flush_telemetry();
    let events = fleet::events(&log);
    let degraded = fleet::named(&events, "state.degraded");
    assert_eq!(degraded.len(), 1, "{degraded:?}");
    assert!(
        degraded[0]["prompt_config.state.server"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1")
    );
    let restored = fleet::named(&events, "state.restored");
    assert_eq!(restored.len(), 1, "{restored:?}");
    assert!(
        restored[0]["prompt_config.state.degraded_ms"]
            .as_u64()
            .is_some()
    );
    let metrics = engine.metrics();
    assert_eq!((metrics.state_degraded, metrics.state_degradations), (0, 1));
    let text = engine.prometheus_text();
    assert!(
        text.contains("prompt_config_state_degradations_total 1"),
        "{text}"
    );
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_stalled_redis_delays_a_call_by_at_most_the_timeout_and_later_calls_not_at_all() {
    let dir = TempDir::new("state_stalled");
    let log = dir.path().join("telemetry.jsonl");
    let config = fleet::config(
        Some(json!({"daily_usd": 100.0})),
        Some(json!({"requests_per_minute": 1_000_000})),
    );
    let mut server = RedisServer::start();
    let engine = fleet::engine(&config.root, fleet::redis(&server.url(), TIMEOUT), &log);
    engine.complete("ask", &asking("x")).unwrap();
    let _stall = server.stall();
    let started = Instant::now();
    engine.complete("ask", &asking("x")).unwrap();
    let first = started.elapsed();
    // One timeout on the pooled connection (a fresh one could add a connect timeout).
    assert!(first < 2 * TIMEOUT + SLACK, "{first:?}");
    assert_eq!(engine.metrics().state_degraded, 1);
    let started = Instant::now();
    engine.complete("ask", &asking("x")).unwrap();
    let second = started.elapsed();
    assert!(
        second < TIMEOUT,
        "{second:?}: a degraded call must not touch Redis"
    );
}

/// An engine on a server that is then killed, with the feature's budget set to
/// `while_degraded`.
fn on_a_killed_server(
    while_degraded: &str,
) -> (prompt_config::Engine, RedisServer, TempDir, impl Sized) {
    let dir = TempDir::new("state_while_degraded");
    let log = dir.path().join("telemetry.jsonl");
    let config = fleet::config(
        Some(json!({"daily_usd": 100.0, "while_degraded": while_degraded})),
        None,
    );
    let mut server = RedisServer::start();
    let engine = fleet::engine(&config.root, fleet::redis(&server.url(), TIMEOUT), &log);
    engine.complete("ask", &asking("x")).unwrap();
    server.kill();
    (engine, server, dir, config)
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn while_degraded_block_refuses_with_state_unavailable_naming_the_budget() {
    let (engine, _server, _dir, _config) = on_a_killed_server("block");
    for _ in 0..2 {
        let Err(Error::Complete(error)) = engine.complete("ask", &asking("x")) else {
            panic!("a blocking budget served while Redis was down");
        };
        assert_eq!(error.kind(), "state_unavailable");
        assert!(error.kind().is_retryable());
        assert!(error.to_string().contains("feature:ask"), "{error}");
    }
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_while_degraded_block_refusal_names_the_masked_server_in_its_details() {
    let (engine, server, _dir, _config) = on_a_killed_server("block");
    let Err(error) = engine.complete("ask", &asking("x")) else {
        panic!("a blocking budget served while Redis was down");
    };
    let details = error.details();
    let masked = prompt_config::state::RedisSettings::new(&server.url())
        .unwrap()
        .masked_url();
    assert_eq!(details["server"], json!(masked), "{details}");
    assert!(error.to_string().contains(&masked), "{error}");
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn while_degraded_local_serves_and_counts_on_the_local_ledger() {
    let (engine, _server, _dir, _config) = on_a_killed_server("local");
    let mut spent = 0.0;
    for _ in 0..3 {
        spent += engine.complete("ask", &asking("x")).unwrap().cost_usd;
    }
    let status = engine.budget_status();
    // The local ledger carries on from the fleet's spend it mirrored (the first call).
    assert!(status[0].settled_usd > spent, "{status:?} vs {spent}");
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn while_degraded_local_enforces_a_block_limit_on_the_local_ledger() {
    let dir = TempDir::new("state_local_limit");
    let log = dir.path().join("telemetry.jsonl");
    // Room for about four mock answers.
    let config = fleet::config(Some(json!({"daily_usd": 0.000_6})), None);
    let mut server = RedisServer::start();
    let engine = fleet::engine(&config.root, fleet::redis(&server.url(), TIMEOUT), &log);
    engine.complete("ask", &asking("x")).unwrap();
    server.kill();
    let outcomes: Vec<bool> = (0..10)
        .map(|_| engine.complete("ask", &asking("x")).is_ok())
        .collect();
    assert!(outcomes.contains(&false), "the local ledger never refused");
    let served = outcomes.iter().filter(|ok| **ok).count();
    assert!(served <= 4, "{outcomes:?}");
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_reservation_settles_where_it_was_made_even_after_redis_comes_back() {
    use prompt_config::client::{BudgetBook, ReserveOutcome};
    use prompt_config::config::BudgetSettings;
    use prompt_config::state::{
        RedisSettings, RedisState, SharedState, StateChange, StateListener,
    };

    let mut server = RedisServer::start();
    let redis = RedisState::new(
        RedisSettings::new(&server.url())
            .unwrap()
            .with_timeouts(TIMEOUT, TIMEOUT),
    )
    .unwrap();
    let listener: StateListener = std::sync::Arc::new(|_: &StateChange| {});
    let shared = SharedState::with_reconnect_interval(redis, listener, Duration::from_millis(50));
    let settings: BudgetSettings = serde_json::from_value(json!({"daily_usd": 1.0})).unwrap();
    let book = BudgetBook::new(None, [("ask".to_string(), settings)].into())
        .with_shared(Some(shared.clone()), Duration::from_secs(60));
    let reserve = || match book.reserve("ask", 0.001, chrono::Utc::now(), true) {
        ReserveOutcome::Granted { reservation, .. } => reservation,
        other => panic!("{other:?}"),
    };
    let on_redis = reserve();
    assert!(on_redis.is_shared());
    let _ = book.settle(on_redis, 0.000_5);
    assert_eq!(fleet_spent(&server), 500_000);

    server.kill();
    let _ = shared.run(|redis| redis.ping());
    let local = reserve();
    assert!(!local.is_shared(), "made while Redis was down");
    server.restart();
    wait_until("restored", || !shared.is_degraded());
    let _ = book.settle(local, 0.000_5);
    assert_eq!(
        fleet_spent(&server),
        0,
        "a local reservation settled on Redis"
    );
    assert!(reserve().is_shared(), "shared again once Redis is back");
    // Its spend reaches Redis with that shared call (tests/state/fleet_reconcile.rs).
    assert_eq!(fleet_spent(&server), 500_000);
}
