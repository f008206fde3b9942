//! Budget reservations, settlement and alert claims on one Redis server: the overspend bound
//! and once-per-fleet alerts of issue 11, with threads and with OS processes.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use prompt_config::state::RedisState;
use prompt_config::state::budget::{
    ALERT_THRESHOLDS, BudgetWindow, Period, Reservation, ReserveOutcome,
};

use crate::support::redis_server::RedisServer;
use crate::support::temp_dir::TempDir;

/// 2026-11-30 12:00 UTC, in ms: the engine clock of these tests.
const NOW_MS: i64 = 1_796_040_000_000;
const HOLD: Duration = Duration::from_secs(60);

pub fn window(scope: &str) -> BudgetWindow {
    BudgetWindow::new(
        scope,
        Period::Day,
        Utc.timestamp_millis_opt(NOW_MS).unwrap(),
    )
}

fn reserve(
    state: &RedisState,
    window: &BudgetWindow,
    limit: u64,
    amount: u64,
) -> Option<Reservation> {
    match state
        .reserve(window, Some(limit), amount, NOW_MS, HOLD)
        .unwrap()
    {
        ReserveOutcome::Reserved { reservation, .. } => Some(reservation),
        ReserveOutcome::Refused { .. } => None,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_reservation_is_admitted_only_while_spent_plus_reserved_plus_amount_fits_the_limit() {
    let server = RedisServer::start();
    let state = server.state();
    let window = window("feature:summarize");
    let first = reserve(&state, &window, 100, 60).expect("60 of 100 fits");
    assert_eq!(reserve(&state, &window, 100, 41), None, "60 + 41 > 100");
    let second = reserve(&state, &window, 100, 40).expect("60 + 40 fits exactly");
    state.settle(&window, &first, 10, Some(100), "a").unwrap();
    state.settle(&window, &second, 40, Some(100), "a").unwrap();
    let totals = state.totals(&window).unwrap();
    assert_eq!((totals.spent, totals.reserved), (50, 0));
    assert!(
        reserve(&state, &window, 100, 50).is_some(),
        "50 spent + 50 fits"
    );
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn settling_replaces_the_reservation_by_the_actual_cost() {
    let server = RedisServer::start();
    let state = server.state();
    let window = window("global");
    let reservation = reserve(&state, &window, 1_000, 300).unwrap();
    assert_eq!(state.totals(&window).unwrap().reserved, 300);
    let settled = state
        .settle(&window, &reservation, 120, Some(1_000), "a")
        .unwrap();
    assert_eq!(
        (settled.spent, settled.reserved, settled.was_held),
        (120, 0, true)
    );
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_reservation_never_settled_is_freed_once_its_hold_passes() {
    let server = RedisServer::start();
    let state = server.state();
    let window = window("global");
    let _crashed = state
        .reserve(&window, Some(100), 100, NOW_MS, Duration::from_secs(30))
        .unwrap();
    assert_eq!(
        reserve(&state, &window, 100, 1),
        None,
        "held by the crashed call"
    );
    let later = NOW_MS + 30_001;
    let outcome = state.reserve(&window, Some(100), 1, later, HOLD).unwrap();
    assert!(
        matches!(outcome, ReserveOutcome::Reserved { reserved: 1, .. }),
        "{outcome:?}"
    );
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_late_settle_after_the_hold_still_counts_its_cost() {
    let server = RedisServer::start();
    let state = server.state();
    let window = window("global");
    let slow = match state
        .reserve(&window, Some(100), 50, NOW_MS, Duration::from_secs(1))
        .unwrap()
    {
        ReserveOutcome::Reserved { reservation, .. } => reservation,
        other => panic!("{other:?}"),
    };
    // Another call frees the expired hold.
    state
        .reserve(&window, Some(100), 10, NOW_MS + 2_000, HOLD)
        .unwrap();
    let settled = state.settle(&window, &slow, 45, Some(100), "a").unwrap();
    assert!(!settled.was_held);
    assert_eq!((settled.spent, settled.reserved), (45, 10));
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn each_alert_threshold_is_claimed_by_the_first_settle_that_reaches_it() {
    let server = RedisServer::start();
    let state = server.state();
    let window = window("feature:summarize");
    let mut claims = Vec::new();
    for cost in [50, 35, 6, 4, 4, 1] {
        let reservation = reserve(&state, &window, 100, cost).unwrap();
        let settled = state
            .settle(&window, &reservation, cost, Some(100), "p1")
            .unwrap();
        claims.push(settled.claimed_alerts);
    }
    // 50, 85 (80), 91 (90), 95 (95), 99, 100 (100).
    let expected: [&[u8]; 6] = [&[], &[80], &[90], &[95], &[], &[100]];
    assert_eq!(claims, expected);
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn one_settle_crossing_several_thresholds_claims_them_all_at_once() {
    let server = RedisServer::start();
    let state = server.state();
    let window = window("global");
    let reservation = reserve(&state, &window, 10, 10).unwrap();
    let settled = state
        .settle(&window, &reservation, 10, Some(10), "p1")
        .unwrap();
    assert_eq!(settled.claimed_alerts, ALERT_THRESHOLDS);
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_window_keeps_its_own_spend_and_its_keys_expire_a_day_after_it_ends() {
    let server = RedisServer::start();
    let state = server.state();
    let today = window("global");
    let tomorrow = BudgetWindow::new(
        "global",
        Period::Day,
        Utc.timestamp_millis_opt(NOW_MS + 86_400_000).unwrap(),
    );
    let reservation = reserve(&state, &today, 100, 100).unwrap();
    state
        .settle(&today, &reservation, 100, Some(100), "a")
        .unwrap();
    assert!(
        reserve(&state, &tomorrow, 100, 100).is_some(),
        "a new day starts empty"
    );
    let [totals, ..] = state.window_keys(&today);
    let expire_at: i64 = server.cli(&["expiretime", &totals]).trim().parse().unwrap();
    assert_eq!(expire_at, today.expire_at());
}

/// Runs `threads` threads that each reserve `amount` and settle `cost(i)` `attempts` times
/// against one limit; returns every claimed threshold with how often it was claimed.
pub fn spend_concurrently(
    state: &RedisState,
    window: &BudgetWindow,
    limit: u64,
    amount: u64,
    threads: usize,
    attempts: usize,
    cost: impl Fn(usize) -> u64 + Sync,
) -> BTreeMap<u8, usize> {
    let claims = parking_lot::Mutex::new(BTreeMap::new());
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let (claims, cost) = (&claims, &cost);
            scope.spawn(move || {
                for attempt in 0..attempts {
                    let Some(reservation) = reserve(state, window, limit, amount) else {
                        continue;
                    };
                    std::thread::yield_now();
                    let actual = cost(thread * attempts + attempt);
                    let settled = state
                        .settle(
                            window,
                            &reservation,
                            actual,
                            Some(limit),
                            &format!("t{thread}"),
                        )
                        .unwrap();
                    let mut claims = claims.lock();
                    for percent in settled.claimed_alerts {
                        *claims.entry(percent).or_insert(0) += 1;
                    }
                }
            });
        }
    });
    claims.into_inner()
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn eight_threads_never_spend_past_the_limit_and_each_alert_fires_once() {
    let server = RedisServer::start();
    let state = server.state();
    let window = window("feature:summarize");
    // $0.001 limit, calls reserving and costing $0.00001: exactly 100 calls fit.
    let claims = spend_concurrently(&state, &window, 1_000_000, 10_000, 8, 20, |_| 10_000);
    let totals = state.totals(&window).unwrap();
    assert_eq!(totals.spent, 1_000_000, "160 attempts, 100 fit");
    assert_eq!(totals.reserved, 0);
    let once: BTreeMap<u8, usize> = ALERT_THRESHOLDS.iter().map(|&p| (p, 1)).collect();
    assert_eq!(claims, once);
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn calls_costing_more_than_reserved_overspend_by_at_most_the_reservations_in_flight() {
    let server = RedisServer::start();
    let state = server.state();
    let window = window("global");
    let (limit, amount, threads) = (1_000_000, 10_000, 8);
    // Each call costs up to twice its reservation: an estimate that was too low.
    spend_concurrently(&state, &window, limit, amount, threads, 30, |i| {
        amount + (i as u64 * 7_919) % amount
    });
    let spent = state.totals(&window).unwrap().spent;
    assert!(spent > limit - amount, "the budget was used up: {spent}");
    let in_flight_overrun = threads as u64 * amount;
    assert!(
        spent <= limit + in_flight_overrun,
        "{spent} > {limit} + {in_flight_overrun}"
    );
}

/// Set, to the server's URL, in a re-executed child; the child test does nothing without it.
const CHILD_URL: &str = "STATE_BUDGET_CHILD_URL";
/// Where the child writes the thresholds it claimed, one per line.
const CHILD_CLAIMS: &str = "STATE_BUDGET_CHILD_CLAIMS";

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn four_processes_of_eight_threads_share_one_budget_and_each_alert_fires_once() {
    let server = RedisServer::start();
    let dir = TempDir::new("state_budget_processes");
    let children: Vec<_> = (0..4)
        .map(|child| {
            let claims = dir.path().join(format!("claims-{child}"));
            let process = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "budget::child_spends_against_the_shared_budget",
                    "--include-ignored",
                    "--test-threads=1",
                ])
                .env(CHILD_URL, server.url())
                .env(CHILD_CLAIMS, &claims)
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap();
            (process, claims)
        })
        .collect();
    let mut claims: BTreeMap<u8, usize> = BTreeMap::new();
    for (mut process, path) in children {
        assert!(process.wait().unwrap().success(), "a child process failed");
        for line in std::fs::read_to_string(path).unwrap().lines() {
            *claims.entry(line.parse().unwrap()).or_insert(0) += 1;
        }
    }
    let totals = server.state().totals(&window("fleet")).unwrap();
    assert_eq!((totals.spent, totals.reserved), (2_000_000, 0));
    let once: BTreeMap<u8, usize> = ALERT_THRESHOLDS.iter().map(|&p| (p, 1)).collect();
    assert_eq!(claims, once);
}

#[test]
#[ignore = "runs as a child process of the four-process budget test"]
fn child_spends_against_the_shared_budget() {
    let (Ok(url), Ok(path)) = (std::env::var(CHILD_URL), std::env::var(CHILD_CLAIMS)) else {
        return;
    };
    let settings = prompt_config::state::RedisSettings::new(&url)
        .unwrap()
        .with_timeouts(
            crate::support::redis_server::PATIENT,
            crate::support::redis_server::PATIENT,
        );
    let state = RedisState::new(settings).unwrap();
    // 4 x 8 x 20 = 640 attempts, 200 fit.
    let claims = spend_concurrently(&state, &window("fleet"), 2_000_000, 10_000, 8, 20, |_| {
        10_000
    });
    let lines: String = claims
        .iter()
        .flat_map(|(percent, count)| std::iter::repeat_n(format!("{percent}\n"), *count))
        .collect();
    std::fs::write(path, lines).unwrap();
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_refusal_claims_the_full_alert_once_and_a_later_settle_does_not_claim_it_again() {
    let server = RedisServer::start();
    let state = server.state();
    let window = window("feature:ask");
    assert!(state.claim_alert(&window, 100, "p1").unwrap());
    assert!(!state.claim_alert(&window, 100, "p2").unwrap());
    let reservation = reserve(&state, &window, 100, 100).unwrap();
    let settled = state
        .settle(&window, &reservation, 100, Some(100), "p3")
        .unwrap();
    assert_eq!(settled.claimed_alerts, [80, 90, 95]);
    let [totals, ..] = state.window_keys(&window);
    let expire_at: i64 = server.cli(&["expiretime", &totals]).trim().parse().unwrap();
    assert_eq!(expire_at, window.expire_at());
}
