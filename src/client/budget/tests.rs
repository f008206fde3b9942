//! Unit tests of the budget ledger: thresholds that fire once per period, refusals under
//! `block` and `downgrade`, day and month rollover, settling and releasing reservations,
//! restored spend, status rows and concurrent callers that never overspend.

use super::*;
use crate::config::{ModelParameters, ModelSpec};
use BudgetPolicy::{Allow, Block, Downgrade};

const FEATURE: &str = "chat";
const NOON: &str = "2026-11-27T12:00:00Z";
const NONE: [u32; 0] = [];

fn at(time: &str) -> DateTime<Utc> {
    time.parse().unwrap()
}

fn limits(daily: Option<f64>, monthly: Option<f64>, policy: BudgetPolicy) -> BudgetSettings {
    let (daily_usd, monthly_usd, downgrade) = (daily, monthly, None);
    BudgetSettings {
        daily_usd,
        monthly_usd,
        policy,
        downgrade,
        while_degraded: crate::config::WhileDegraded::Local,
    }
}

fn book(overall: Option<BudgetSettings>, feature: BudgetSettings) -> BudgetBook {
    BudgetBook::new(overall, HashMap::from([(FEATURE.to_string(), feature)]))
}

fn daily_book(limit: f64, policy: BudgetPolicy) -> BudgetBook {
    book(None, limits(Some(limit), None, policy))
}

fn reserve(book: &BudgetBook, usd: f64, time: &str) -> ReserveOutcome {
    book.reserve(FEATURE, usd, at(time), true)
}

fn granted(outcome: ReserveOutcome) -> (Reservation, Vec<BudgetAlert>) {
    match outcome {
        ReserveOutcome::Granted {
            reservation,
            alerts,
        } => (reservation, alerts),
        ReserveOutcome::Exceeded { exceeded, .. } => panic!("refused: {exceeded:?}"),
        ReserveOutcome::Unavailable { scope, .. } => panic!("unavailable: {scope}"),
    }
}

fn refused(outcome: ReserveOutcome) -> (BudgetExceeded, Vec<BudgetAlert>) {
    match outcome {
        ReserveOutcome::Exceeded { exceeded, alerts } => (exceeded, alerts),
        other => panic!("not refused: {other:?}"),
    }
}

fn thresholds(alerts: &[BudgetAlert]) -> Vec<u32> {
    alerts.iter().map(|alert| alert.threshold_percent).collect()
}

/// Reserves and settles `usd`, returning the thresholds alerted by both steps.
fn spend(book: &BudgetBook, usd: f64, time: &str) -> Vec<u32> {
    let (reservation, mut alerts) = granted(reserve(book, usd, time));
    alerts.extend(book.settle(reservation, usd));
    thresholds(&alerts)
}

fn status(book: &BudgetBook, time: &str) -> BudgetStatus {
    book.status(at(time)).remove(0)
}

#[test]
fn each_threshold_fires_once_as_spend_grows() {
    let book = daily_book(10.0, Allow);
    assert_eq!(spend(&book, 7.9, NOON), NONE);
    assert_eq!(spend(&book, 0.1, NOON), [80]);
    assert_eq!(spend(&book, 0.5, NOON), NONE);
    assert_eq!(spend(&book, 0.5, NOON), [90]);
    assert_eq!(spend(&book, 0.5, NOON), [95]);
    assert_eq!(spend(&book, 0.5, NOON), [100]);
    assert_eq!(spend(&book, 0.5, NOON), NONE);
}

#[test]
fn thresholds_crossed_at_once_fire_in_increasing_order() {
    let (_held, alerts) = granted(reserve(&daily_book(10.0, Block), 9.6, NOON));
    assert_eq!(thresholds(&alerts), [80, 90, 95]);
    let alert = &alerts[0];
    assert_eq!(
        [alert.scope.as_str(), &alert.period],
        ["feature:chat", "day"]
    );
    assert_eq!(
        [alert.period_start.as_str(), &alert.policy],
        ["2026-11-27", "block"]
    );
    assert_eq!([alert.spent_usd, alert.limit_usd], [9.6, 10.0]);
}

#[test]
fn thresholds_never_fire_twice_in_the_same_period() {
    let book = daily_book(10.0, Block);
    let (reservation, _) = granted(reserve(&book, 8.5, NOON));
    book.release(reservation);
    assert_eq!(spend(&book, 8.5, NOON), NONE);
}

#[test]
fn block_refuses_and_leaves_nothing_reserved() {
    let overall = limits(Some(100.0), None, Block);
    let book = book(Some(overall), limits(Some(1.0), None, Block));
    let (exceeded, alerts) = refused(reserve(&book, 1.5, NOON));
    assert_eq!(
        (exceeded.scope.as_str(), exceeded.policy),
        ("feature:chat", Block)
    );
    let amounts = [
        exceeded.spent_usd,
        exceeded.requested_usd,
        exceeded.limit_usd,
    ];
    assert_eq!(amounts, [0.0, 1.5, 1.0]);
    assert_eq!((thresholds(&alerts), alerts[0].spent_usd), (vec![100], 0.0));
    assert!(
        book.status(at(NOON))
            .iter()
            .all(|row| row.reserved_usd == 0.0)
    );
}

#[test]
fn refusals_alert_one_hundred_percent_only_once_per_period() {
    let book = daily_book(1.0, Block);
    assert_eq!(thresholds(&refused(reserve(&book, 2.0, NOON)).1), [100]);
    assert_eq!(thresholds(&refused(reserve(&book, 2.0, NOON)).1), NONE);
}

#[test]
fn downgrade_returns_the_cheaper_chain_and_the_unenforced_retry_is_granted() {
    let (provider, name) = ("mock".to_string(), "small".to_string());
    let model = ModelSpec {
        provider,
        name,
        parameters: ModelParameters::default(),
    };
    let chain = DowngradeChain {
        model,
        fallbacks: Vec::new(),
    };
    let mut settings = limits(Some(1.0), None, Downgrade);
    settings.downgrade = Some(chain.clone());
    let book = book(None, settings);
    let (exceeded, alerts) = refused(reserve(&book, 2.0, NOON));
    assert_eq!(
        (exceeded.policy, exceeded.downgrade),
        (Downgrade, Some(chain))
    );
    assert_eq!(alerts[0].policy, "downgrade");
    let (reservation, _) = granted(book.reserve(FEATURE, 1.2, at(NOON), false));
    assert_eq!(reservation.reserved_usd(), 1.2);
}

#[test]
fn block_outranks_downgrade_when_both_would_refuse() {
    let book = book(
        Some(limits(Some(1.0), None, Downgrade)),
        limits(Some(1.0), None, Block),
    );
    let (exceeded, _) = refused(reserve(&book, 2.0, NOON));
    assert_eq!(
        (exceeded.scope.as_str(), exceeded.policy),
        ("feature:chat", Block)
    );
}

#[test]
fn allow_never_refuses_but_alerts_one_hundred_percent() {
    let book = daily_book(1.0, Allow);
    assert_eq!(spend(&book, 1.5, NOON), [80, 90, 95, 100]);
    assert_eq!(spend(&book, 1.5, NOON), NONE);
}

#[test]
fn overall_budget_refuses_while_the_feature_budget_is_fine() {
    let book = book(
        Some(limits(Some(1.0), None, Block)),
        limits(Some(50.0), None, Block),
    );
    book.restore("overall", at(NOON), 0.9);
    let (exceeded, _) = refused(reserve(&book, 0.2, NOON));
    assert_eq!(
        (exceeded.scope.as_str(), exceeded.spent_usd),
        ("overall", 0.9)
    );
}

#[test]
fn daily_and_monthly_limits_are_checked_independently() {
    let book = book(None, limits(Some(10.0), Some(20.0), Block));
    book.restore("feature:chat", at("2026-11-26T12:00:00Z"), 15.0);
    let (exceeded, _) = refused(reserve(&book, 6.0, NOON));
    assert_eq!(
        [exceeded.period, exceeded.period_start],
        ["month", "2026-11"]
    );
    let (_held, alerts) = granted(reserve(&book, 4.0, NOON));
    assert!(alerts.iter().all(|alert| alert.period == "month"));
}

#[test]
fn a_new_utc_day_starts_a_fresh_daily_ledger() {
    let book = daily_book(10.0, Block);
    assert_eq!(spend(&book, 8.0, "2026-11-27T23:59:59Z"), [80]);
    refused(reserve(&book, 2.1, "2026-11-27T23:59:59Z"));
    assert_eq!(spend(&book, 8.0, "2026-11-28T00:00:00Z"), [80]);
}

#[test]
fn a_new_utc_month_starts_a_fresh_monthly_ledger() {
    let book = book(None, limits(None, Some(10.0), Block));
    assert_eq!(spend(&book, 8.0, "2026-11-30T23:59:59Z"), [80]);
    refused(reserve(&book, 2.1, "2026-11-30T23:59:59Z"));
    assert_eq!(spend(&book, 8.0, "2026-12-01T00:00:00Z"), [80]);
    assert_eq!(
        status(&book, "2026-12-01T00:00:00Z").period_start,
        "2026-12"
    );
}

#[test]
fn past_periods_are_dropped_when_a_new_one_starts() {
    let book = daily_book(1.0, Block);
    spend(&book, 0.5, NOON);
    spend(&book, 0.5, "2026-11-28T12:00:00Z");
    assert_eq!(book.ledgers.lock().len(), 1);
}

#[test]
fn settle_below_the_reservation_frees_the_difference() {
    let book = daily_book(1.0, Block);
    let (reservation, _) = granted(reserve(&book, 0.9, NOON));
    assert!(book.settle(reservation, 0.3).is_empty());
    let row = status(&book, NOON);
    assert_eq!([row.settled_usd, row.reserved_usd], [0.3, 0.0]);
    let (_held, _) = granted(reserve(&book, 0.7, NOON));
}

#[test]
fn settle_above_the_reservation_counts_the_whole_cost() {
    let book = daily_book(1.0, Block);
    let (reservation, _) = granted(reserve(&book, 0.1, NOON));
    assert_eq!(
        thresholds(&book.settle(reservation, 1.2)),
        [80, 90, 95, 100]
    );
    assert_eq!(status(&book, NOON).settled_usd, 1.2);
}

#[test]
fn settle_after_rollover_lands_on_the_reserving_period() {
    let book = daily_book(1.0, Block);
    let (reservation, _) = granted(reserve(&book, 0.5, "2026-11-27T23:59:59Z"));
    spend(&book, 0.1, "2026-11-28T00:00:01Z");
    assert_eq!(book.settle(reservation, 0.9)[0].period_start, "2026-11-27");
    assert_eq!(status(&book, "2026-11-28T01:00:00Z").settled_usd, 0.1);
}

#[test]
fn release_frees_the_reservation_without_cost() {
    let book = daily_book(1.0, Block);
    let (reservation, _) = granted(reserve(&book, 0.9, NOON));
    book.release(reservation);
    let row = status(&book, NOON);
    assert_eq!([row.settled_usd, row.reserved_usd], [0.0, 0.0]);
}

#[test]
fn restore_does_not_repeat_thresholds_already_passed() {
    let book = daily_book(10.0, Block);
    book.restore("feature:chat", at(NOON), 9.2);
    assert_eq!(status(&book, NOON).alerts_sent, [80, 90]);
    assert_eq!(spend(&book, 0.1, NOON), NONE);
    assert_eq!(spend(&book, 0.3, NOON), [95]);
}

#[test]
fn restore_periods_adds_to_the_day_and_the_month_separately() {
    let book = book(None, limits(Some(10.0), Some(100.0), Block));
    book.restore_periods("feature:chat", at(NOON), 2.0, 30.0);
    let settled: Vec<(String, f64)> = book
        .status(at(NOON))
        .into_iter()
        .map(|status| (status.period, status.settled_usd))
        .collect();
    assert_eq!(
        settled,
        [("day".to_string(), 2.0), ("month".to_string(), 30.0)]
    );
}

#[test]
fn concurrent_calls_never_overspend_and_settle_every_granted_cost() {
    const THREADS: u64 = 8;
    const WORST_CASE: f64 = 0.01;
    let book = daily_book(1.0, Block);
    let call = |index: u64| {
        let micro = 5_000 + (index % 6) * 1_000;
        let outcome = reserve(&book, WORST_CASE, NOON);
        let ReserveOutcome::Granted { reservation, .. } = outcome else {
            return 0;
        };
        book.settle(reservation, micro as f64 / 1e6);
        micro
    };
    let granted_micro: u64 = std::thread::scope(|scope| {
        let workers = (0..THREADS).map(|_| scope.spawn(|| (0..500).map(call).sum::<u64>()));
        workers
            .collect::<Vec<_>>()
            .into_iter()
            .map(|worker| worker.join().unwrap())
            .sum()
    });
    let row = status(&book, NOON);
    assert!(row.settled_usd > 0.9 && row.settled_usd <= 1.0 + THREADS as f64 * WORST_CASE);
    assert!((row.settled_usd - granted_micro as f64 / 1e6).abs() < 1e-9);
    assert_eq!(row.reserved_usd, 0.0);
}

#[test]
fn status_reports_every_configured_ledger_overall_first() {
    let search = ("search".to_string(), limits(Some(5.0), None, Block));
    let chat = (FEATURE.to_string(), limits(Some(10.0), Some(200.0), Block));
    let overall = limits(None, Some(300.0), Allow);
    let book = BudgetBook::new(Some(overall), HashMap::from([search, chat]));
    let (_held, _) = granted(reserve(&book, 9.0, NOON));
    let rows = book.status(at(NOON));
    let names: Vec<_> = rows
        .iter()
        .map(|row| [row.scope.as_str(), &row.period])
        .collect();
    assert_eq!(names[0], ["overall", "month"]);
    assert_eq!(
        names[1..3],
        [["feature:chat", "day"], ["feature:chat", "month"]]
    );
    assert_eq!(names[3], ["feature:search", "day"]);
    assert_eq!(
        (rows[1].reserved_usd, rows[1].alerts_sent.clone()),
        (9.0, vec![80, 90])
    );
    assert_eq!(rows[3].reserved_usd, 0.0);
}

#[test]
fn book_without_limits_is_empty_and_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<BudgetBook>();
    assert!(book(None, limits(None, None, Block)).is_empty());
    assert!(!daily_book(1.0, Block).is_empty());
}

#[test]
fn the_alert_at_a_refusal_records_spent_and_reserved_not_the_refused_call() {
    let book = daily_book(1.0, Block);
    let (_held, _) = granted(reserve(&book, 0.4, NOON));
    assert_eq!(spend(&book, 0.3, NOON), NONE);
    let (exceeded, alerts) = refused(reserve(&book, 0.5, NOON));
    assert_eq!(thresholds(&alerts), [100]);
    assert!((alerts[0].spent_usd - 0.7).abs() < 1e-9, "{alerts:?}");
    assert!((exceeded.spent_usd - 0.7).abs() < 1e-9, "{exceeded:?}");
}

#[test]
fn the_budget_exceeded_message_prints_a_small_limit_with_its_digits() {
    let book = daily_book(0.0043, Block);
    let (_held, _) = granted(reserve(&book, 0.0037, NOON));
    let (exceeded, _) = refused(reserve(&book, 0.0037, NOON));
    let error = crate::client::CompleteError::BudgetExceeded {
        exceeded: Box::new(exceeded),
        request_id: "req_1".into(),
    };
    let text = error.to_string();
    assert!(text.contains("limit $0.0043 "), "{text}");
    assert!(
        text.contains("(spent and reserved $0.0037, this call up to $0.0037)"),
        "{text}"
    );
}
