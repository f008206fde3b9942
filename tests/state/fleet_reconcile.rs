//! Spend settled on the local ledger while Redis was unavailable (`while_degraded: local`) is
//! added to the fleet's window once Redis answers again, exactly once; so is spend restored
//! with `Engine::restore_budget_spend` (issue 11, Fleet state).

use std::sync::{Arc, Barrier};
use std::time::Duration;

use prompt_config::client::{BudgetBook, ReserveOutcome};
use prompt_config::config::BudgetSettings;
use prompt_config::state::budget::usd_to_nanos;
use prompt_config::state::{RedisSettings, RedisState, SharedState, StateChange, StateListener};
use serde_json::json;

use crate::support::fleet;
use crate::support::fleet::{fleet_spent, wait_until};
use crate::support::one_feature::asking;
use crate::support::redis_server::RedisServer;
use crate::support::temp_dir::TempDir;

/// The connect and command timeouts of these engines.
const TIMEOUT: Duration = Duration::from_millis(100);

fn nanos(usd: f64) -> u64 {
    (usd * 1e9).round() as u64
}

fn local_budget() -> serde_json::Value {
    json!({"daily_usd": 100.0, "while_degraded": "local"})
}

/// A book on `server` for the feature `ask` ($1 a day), reconnecting every 50 ms.
fn book_on(server: &RedisServer) -> (BudgetBook, SharedState) {
    let redis = RedisState::new(
        RedisSettings::new(&server.url())
            .unwrap()
            .with_timeouts(TIMEOUT, TIMEOUT),
    )
    .unwrap();
    let listener: StateListener = Arc::new(|_: &StateChange| {});
    let shared = SharedState::with_reconnect_interval(redis, listener, Duration::from_millis(50));
    let settings: BudgetSettings = serde_json::from_value(json!({"daily_usd": 1.0})).unwrap();
    let book = BudgetBook::new(None, [("ask".to_string(), settings)].into())
        .with_shared(Some(shared.clone()), Duration::from_secs(60));
    (book, shared)
}

fn granted(outcome: ReserveOutcome) -> prompt_config::client::Reservation {
    match outcome {
        ReserveOutcome::Granted { reservation, .. } => reservation,
        other => panic!("{other:?}"),
    }
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn spend_made_while_redis_was_down_shows_in_redis_after_a_restart() {
    let dir = TempDir::new("state_reconcile");
    let config = fleet::config(Some(local_budget()), None);
    let mut server = RedisServer::start();
    let engine = fleet::engine(
        &config.root,
        fleet::redis(&server.url(), TIMEOUT),
        &dir.path().join("a.jsonl"),
    );
    server.kill();
    let spent: f64 = (0..3)
        .map(|_| engine.complete("ask", &asking("x")).unwrap().cost_usd)
        .sum();
    assert_eq!(engine.metrics().state_degraded, 1);
    server.restart();
    // No call after the restart: the reconnect thread reconciles by itself.
    wait_until("the outage's spend on Redis", || fleet_spent(&server) > 0);
    assert_eq!(fleet_spent(&server), nanos(spent));
    let other = fleet::engine(
        &config.root,
        fleet::redis(&server.url(), TIMEOUT),
        &dir.path().join("b.jsonl"),
    );
    let status = other.budget_status();
    assert!(
        (status[0].settled_usd - spent).abs() < 1e-9,
        "{status:?} vs {spent}"
    );
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn threads_racing_after_a_restart_add_the_outages_spend_once() {
    let mut server = RedisServer::start();
    let (book, shared) = book_on(&server);
    server.kill();
    let _ = shared.run(|redis| redis.ping());
    for _ in 0..4 {
        let local = granted(book.reserve("ask", 0.001, chrono::Utc::now(), true));
        assert!(!local.is_shared(), "made while Redis was down");
        let _ = book.settle(local, 0.000_25);
    }
    server.restart();
    wait_until("restored", || !shared.is_degraded());
    let start = Barrier::new(8);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                start.wait();
                let reservation = granted(book.reserve("ask", 0.001, chrono::Utc::now(), true));
                assert!(reservation.is_shared());
                book.release(reservation);
            });
        }
    });
    assert_eq!(fleet_spent(&server), 4 * usd_to_nanos(0.000_25));
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_local_settle_after_redis_is_back_lands_with_the_next_shared_call() {
    let mut server = RedisServer::start();
    let (book, shared) = book_on(&server);
    server.kill();
    let _ = shared.run(|redis| redis.ping());
    let local = granted(book.reserve("ask", 0.001, chrono::Utc::now(), true));
    server.restart();
    wait_until("restored", || !shared.is_degraded());
    let _ = book.settle(local, 0.000_5);
    let next = granted(book.reserve("ask", 0.001, chrono::Utc::now(), true));
    assert!(next.is_shared());
    assert_eq!(fleet_spent(&server), 500_000);
    let _ = book.settle(next, 0.000_1);
    assert_eq!(fleet_spent(&server), 600_000, "counted once");
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_reconcile_redis_does_not_take_stays_pending_and_lands_after_a_restart() {
    let dir = TempDir::new("state_reconcile_failed");
    let config = fleet::config(Some(local_budget()), None);
    let mut server = RedisServer::start();
    let engine = fleet::engine(
        &config.root,
        fleet::redis(&server.url(), TIMEOUT),
        &dir.path().join("a.jsonl"),
    );
    server.kill();
    // The engine has not seen Redis fail yet: this addition is sent, and fails.
    engine.restore_budget_spend("feature:ask", chrono::Utc::now(), 0.5);
    assert_eq!(
        engine.metrics().state_degraded,
        1,
        "the addition reached Redis"
    );
    server.restart();
    wait_until("the pending spend on Redis", || fleet_spent(&server) > 0);
    assert_eq!(fleet_spent(&server), 500_000_000);
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn restored_spend_is_added_to_redis_for_the_whole_fleet() {
    let dir = TempDir::new("state_restore_shared");
    let config = fleet::config(Some(local_budget()), None);
    let server = RedisServer::start();
    let open = |name: &str| {
        fleet::engine(
            &config.root,
            fleet::redis(&server.url(), TIMEOUT),
            &dir.path().join(name),
        )
    };
    let engine = open("a.jsonl");
    engine.restore_budget_spend("feature:ask", chrono::Utc::now(), 2.5);
    assert_eq!(fleet_spent(&server), 2_500_000_000);
    let status = open("b.jsonl").budget_status();
    assert!((status[0].settled_usd - 2.5).abs() < 1e-9, "{status:?}");
}

fn reserve_on(book: &BudgetBook) -> (prompt_config::client::Reservation, Vec<u32>) {
    match book.reserve("ask", 0.001, chrono::Utc::now(), true) {
        ReserveOutcome::Granted {
            reservation,
            alerts,
        } => {
            let percents = alerts.iter().map(|alert| alert.threshold_percent).collect();
            (reservation, percents)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_reconciled_amount_crossing_thresholds_claims_and_sends_their_alerts_once() {
    let mut server = RedisServer::start();
    let (first, shared) = book_on(&server);
    server.kill();
    let _ = shared.run(|redis| redis.ping());
    let (local, _) = reserve_on(&first);
    assert!(!local.is_shared());
    assert!(first.settle(local, 0.5).is_empty(), "50% alerts nothing");
    server.restart();
    wait_until("restored", || !shared.is_degraded());
    // Another process spends on Redis before the first one reconciles: 40% of the limit.
    let (other, _) = book_on(&server);
    let (held, _) = reserve_on(&other);
    assert!(other.settle(held, 0.4).is_empty());
    // The first process's next call adds its 50%: the fleet is at 90%.
    let (next, alerts) = reserve_on(&first);
    assert_eq!(alerts, [80, 90]);
    first.release(next);
    let (held, _) = reserve_on(&other);
    assert!(other.settle(held, 0.01).is_empty(), "claimed by the first");
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_threshold_alerted_locally_while_degraded_is_claimed_for_the_fleet_but_not_sent_again() {
    let mut server = RedisServer::start();
    let (first, shared) = book_on(&server);
    server.kill();
    let _ = shared.run(|redis| redis.ping());
    let (local, _) = reserve_on(&first);
    let alerted: Vec<u32> = first
        .settle(local, 0.85)
        .iter()
        .map(|alert| alert.threshold_percent)
        .collect();
    assert_eq!(alerted, [80], "the local ledger alerts while degraded");
    server.restart();
    wait_until("restored", || !shared.is_degraded());
    let (next, alerts) = reserve_on(&first);
    assert!(alerts.is_empty(), "sent again: {alerts:?}");
    first.release(next);
    let (other, _) = book_on(&server);
    let (held, _) = reserve_on(&other);
    assert!(other.settle(held, 0.01).is_empty(), "the fleet alerted 80%");
}
