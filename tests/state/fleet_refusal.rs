//! A `block` budget's refusal states true figures (trial finding 7): the `budget_exceeded`
//! message prints a small limit with its digits and says "spent and reserved", and the 100%
//! `budget.alert` claimed at the refusal records what was spent and reserved, not the refused
//! call's worst case on top, on Redis as on the memory backend.

use std::time::Duration;

use prompt_config::Error;
use prompt_config::state::StateBackend;
use prompt_config::state::budget::{BudgetWindow, Period, usd_to_nanos};
use serde_json::{Value, json};

use crate::support::fleet;
use crate::support::one_feature::asking;
use crate::support::redis_server::RedisServer;
use crate::support::temp_dir::TempDir;

const LIMIT_USD: f64 = 0.0043;
/// Held before the call (another process's call in flight, on Redis; spend on the memory
/// backend): the call's worst case (about $0.000207) no longer fits under the limit.
const HELD_USD: f64 = 0.0042;
const PATIENT: Duration = Duration::from_millis(2000);

/// The refusal's message and its 100% alert's `spent_usd`, from `engine`'s telemetry.
fn refusal(engine: &prompt_config::Engine, log: &std::path::Path) -> (String, f64) {
    let Err(Error::Complete(error)) = engine.complete("ask", &asking("x")) else {
        panic!("the call was not refused");
    };
    assert_eq!(error.kind(), "budget_exceeded");
    engine.flush_telemetry();
    let events = fleet::events(log);
    let alerts = fleet::named(&events, "budget.alert");
    let full: Vec<&&Value> = alerts
        .iter()
        .filter(|alert| alert["prompt_config.budget.threshold_percent"] == json!(100))
        .collect();
    assert_eq!(full.len(), 1, "{alerts:?}");
    let spent = full[0]["prompt_config.budget.spent_usd"].as_f64().unwrap();
    (error.to_string(), spent)
}

fn assert_true_figures(message: &str, alert_spent: f64) {
    assert!(message.contains("limit $0.0043 "), "{message}");
    assert!(
        message.contains("(spent and reserved $0.0042, this call up to $0.0002"),
        "{message}"
    );
    assert!(
        (alert_spent - HELD_USD).abs() < 1e-9,
        "the alert records {alert_spent}, not the {HELD_USD} spent and reserved"
    );
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn on_redis_the_alert_at_a_refusal_records_spent_and_reserved_not_the_refused_call() {
    let dir = TempDir::new("state_refusal_redis");
    let log = dir.path().join("telemetry.jsonl");
    let config = fleet::config(
        Some(json!({"daily_usd": LIMIT_USD, "policy": "block"})),
        None,
    );
    let server = RedisServer::start();
    // Another process's call in flight: a hold on the fleet's window.
    let window = BudgetWindow::new("feature:ask", Period::Day, chrono::Utc::now());
    server
        .state()
        .reserve(
            &window,
            None,
            usd_to_nanos(HELD_USD),
            chrono::Utc::now().timestamp_millis(),
            Duration::from_secs(600),
        )
        .unwrap();
    let engine = fleet::engine(&config.root, fleet::redis(&server.url(), PATIENT), &log);
    let (message, alert_spent) = refusal(&engine, &log);
    assert_true_figures(&message, alert_spent);
}

#[test]
fn on_memory_the_alert_at_a_refusal_records_spent_and_reserved_not_the_refused_call() {
    let dir = TempDir::new("state_refusal_memory");
    let log = dir.path().join("telemetry.jsonl");
    let config = fleet::config(
        Some(json!({"daily_usd": LIMIT_USD, "policy": "block"})),
        None,
    );
    let engine = fleet::engine(&config.root, StateBackend::Memory, &log);
    engine.restore_budget_spend("feature:ask", chrono::Utc::now(), HELD_USD);
    let (message, alert_spent) = refusal(&engine, &log);
    assert_true_figures(&message, alert_spent);
}
