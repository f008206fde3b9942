//! The budget ledger: spend per scope (`overall`, `feature:<name>`) and period (UTC day, UTC
//! month), reserved at its worst case before each LLM call and settled at its actual cost after,
//! so concurrent calls never overspend by more than the reservations in flight. It decides which
//! calls are refused or downgraded and which threshold alerts (80, 90, 95, 100 percent) are due,
//! each exactly once per period; it does no I/O and hands the alerts back to the caller to emit.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use parking_lot::Mutex;
use serde::Serialize;

use super::events::BudgetAlert;
use crate::config::{BudgetPolicy, BudgetSettings, DowngradeChain};

/// Alert thresholds in percent of a period's limit, in the order they fire.
const THRESHOLDS: [u32; 4] = [80, 90, 95, 100];

/// The bit of the 100% threshold in a ledger's mask of sent alerts.
const FULL_BIT: u8 = 1 << 3;

/// Whole nanodollars rather than floating dollars, so reserving and releasing cancel exactly and
/// totals of many small calls do not drift.
fn to_nanodollars(usd: f64) -> i64 {
    // `max` turns NaN into zero and the cast saturates, so a junk cost cannot poison a ledger.
    (usd.max(0.0) * 1e9).round() as i64
}

fn to_usd(nanodollars: i64) -> f64 {
    nanodollars as f64 / 1e9
}

fn thresholds_in(mask: u8) -> impl Iterator<Item = u32> {
    let bits = (0..THRESHOLDS.len()).map(|index| 1_u8 << index);
    THRESHOLDS
        .into_iter()
        .zip(bits)
        .filter(move |(_, bit)| mask & bit != 0)
        .map(|(threshold, _)| threshold)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Period {
    Day,
    Month,
}

impl Period {
    fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
        }
    }

    fn label(self, start: NaiveDate) -> String {
        let format = match self {
            Period::Day => "%Y-%m-%d",
            Period::Month => "%Y-%m",
        };
        start.format(format).to_string()
    }
}

/// One ledger: a scope (index into the book's scopes) in the period beginning on `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct LedgerKey {
    scope: usize,
    period: Period,
    start: NaiveDate,
}

#[derive(Debug)]
struct ScopeBudget {
    name: String,
    settings: BudgetSettings,
}

impl ScopeBudget {
    fn limit_usd(&self, period: Period) -> Option<f64> {
        match period {
            Period::Day => self.settings.daily_usd,
            Period::Month => self.settings.monthly_usd,
        }
    }
}

/// A ledger a call touches, with what describes it, resolved before taking the lock.
#[derive(Debug, Clone, Copy)]
struct Target<'a> {
    key: LedgerKey,
    budget: &'a ScopeBudget,
    limit_usd: f64,
}

#[derive(Debug)]
struct Ledger {
    limit: i64,
    settled: i64,
    reserved: i64,
    alerts_sent: u8,
}

impl Ledger {
    fn committed(&self) -> i64 {
        self.settled.saturating_add(self.reserved)
    }

    /// Marks the thresholds the committed spend has reached and not yet alerted; returns them.
    fn mark_reached(&mut self) -> u8 {
        let committed = i128::from(self.committed());
        let mut newly = 0;
        for (index, threshold) in THRESHOLDS.into_iter().enumerate() {
            // Nothing spent never alerts, even against a zero limit; i128 keeps the products exact.
            if committed > 0 && committed * 100 >= i128::from(self.limit) * i128::from(threshold) {
                newly |= 1 << index;
            }
        }
        newly &= !self.alerts_sent;
        self.alerts_sent |= newly;
        newly
    }
}

/// Alerts decided under the lock (ledger, threshold bits, spend) and worded after releasing it.
type Fired = Vec<(LedgerKey, u8, i64)>;

fn open_ledger(
    ledgers: &mut HashMap<LedgerKey, Ledger>,
    key: LedgerKey,
    limit_usd: f64,
) -> &mut Ledger {
    if !ledgers.contains_key(&key) {
        // A new period began for this scope, so earlier ones can go and memory stays bounded; those
        // still holding a reservation stay, because settling must land where it was reserved.
        ledgers.retain(|held, ledger| {
            ledger.reserved != 0
                || (held.scope, held.period) != (key.scope, key.period)
                || held.start >= key.start
        });
    }
    let limit = to_nanodollars(limit_usd);
    ledgers.entry(key).or_insert(Ledger {
        limit,
        settled: 0,
        reserved: 0,
        alerts_sent: 0,
    })
}

/// Spend against every configured budget, shared by all calls of a client.
#[derive(Debug)]
pub struct BudgetBook {
    scopes: Vec<ScopeBudget>,
    overall: Option<usize>,
    features: HashMap<String, usize>,
    ledgers: Mutex<HashMap<LedgerKey, Ledger>>,
}

/// Worst-case cost held on ledgers until the call is settled or released.
#[must_use = "a reservation holds budget until it is settled or released"]
#[derive(Debug)]
pub struct Reservation {
    ledgers: Vec<LedgerKey>,
    amount: i64,
}

impl Reservation {
    /// The amount held on each of its ledgers, in USD.
    pub fn reserved_usd(&self) -> f64 {
        to_usd(self.amount)
    }
}

/// The answer to [`BudgetBook::reserve`].
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "matched at once by the caller; boxing would allocate on every refusal for nothing"
)]
pub enum ReserveOutcome {
    /// The cost is held on every applicable ledger.
    Granted {
        /// To settle or release when the call is over.
        reservation: Reservation,
        /// Thresholds crossed by this reservation.
        alerts: Vec<BudgetAlert>,
    },
    /// A refusing budget would go over its limit; nothing was reserved anywhere.
    Exceeded {
        /// The budget that refused.
        exceeded: BudgetExceeded,
        /// Its 100% alert, if this was its first refusal of the period.
        alerts: Vec<BudgetAlert>,
    },
}

/// Why a call was refused, and the cheaper chain when the policy is `downgrade`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetExceeded {
    /// `overall` or `feature:<name>`.
    pub scope: String,
    /// `day` or `month`.
    pub period: String,
    /// The period's label: `2026-11-27` or `2026-11`.
    pub period_start: String,
    /// The period's limit in USD.
    pub limit_usd: f64,
    /// Settled plus reserved before this call, in USD.
    pub spent_usd: f64,
    /// The worst-case cost of the refused call, in USD.
    pub requested_usd: f64,
    /// `block` (fail the call) or `downgrade` (retry on `downgrade`, unenforced).
    pub policy: BudgetPolicy,
    /// The cheaper chain of a `downgrade` budget.
    pub downgrade: Option<DowngradeChain>,
}

/// One ledger of the current period, for dashboards and the demo.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetStatus {
    /// `overall` or `feature:<name>`.
    pub scope: String,
    /// `day` or `month`.
    pub period: String,
    /// The period's label: `2026-11-27` or `2026-11`.
    pub period_start: String,
    /// The period's limit in USD.
    pub limit_usd: f64,
    /// Actual cost of finished calls, in USD.
    pub settled_usd: f64,
    /// Worst-case cost of calls in flight, in USD.
    pub reserved_usd: f64,
    /// Thresholds already alerted this period, in percent.
    pub alerts_sent: Vec<u32>,
}

impl BudgetBook {
    /// A book over the overall budget and the budgets of features, keyed by feature name.
    pub fn new(
        overall: Option<BudgetSettings>,
        features: HashMap<String, BudgetSettings>,
    ) -> BudgetBook {
        let limited = |settings: &BudgetSettings| {
            settings.daily_usd.is_some() || settings.monthly_usd.is_some()
        };
        let mut named: Vec<_> = features
            .into_iter()
            .filter(|(_, settings)| limited(settings))
            .collect();
        // Sorted so that status() lists scopes in the same order on every run.
        named.sort_by(|left, right| left.0.cmp(&right.0));
        let mut scopes = Vec::new();
        let overall = overall.filter(limited).map(|settings| {
            scopes.push(ScopeBudget {
                name: "overall".to_string(),
                settings,
            });
            0
        });
        let mut feature_scopes = HashMap::new();
        for (name, settings) in named {
            feature_scopes.insert(name.clone(), scopes.len());
            scopes.push(ScopeBudget {
                name: format!("feature:{name}"),
                settings,
            });
        }
        BudgetBook {
            scopes,
            overall,
            features: feature_scopes,
            ledgers: Mutex::default(),
        }
    }

    /// True when no budget has a limit, so callers can skip all budget work.
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty()
    }

    /// Holds `worst_case_usd` on every ledger of `feature` at `now`, or refuses when a `block`
    /// budget would go over its limit, or a `downgrade` one while `enforce` is set (the retry
    /// on the cheaper chain passes `false`, so it still stops at hard caps).
    pub fn reserve(
        &self,
        feature: &str,
        worst_case_usd: f64,
        now: DateTime<Utc>,
        enforce: bool,
    ) -> ReserveOutcome {
        let mut targets = Vec::new();
        self.push_targets(self.overall, now, &mut targets);
        self.push_targets(self.features.get(feature).copied(), now, &mut targets);
        let requested = to_nanodollars(worst_case_usd);
        let mut fired = Fired::new();
        let mut refusal: Option<(Target<'_>, i64)> = None;
        {
            let mut ledgers = self.ledgers.lock();
            for target in &targets {
                let ledger = open_ledger(&mut ledgers, target.key, target.limit_usd);
                let policy = target.budget.settings.policy;
                let over = ledger.committed().saturating_add(requested) > ledger.limit;
                // Block outranks Downgrade: a downgrade retries unenforced and would slip past a cap.
                let outranks = refusal.is_none_or(|(first, _)| {
                    first.budget.settings.policy != BudgetPolicy::Block
                        && policy == BudgetPolicy::Block
                });
                let refuses = match policy {
                    BudgetPolicy::Block => true,
                    BudgetPolicy::Downgrade => enforce,
                    BudgetPolicy::Allow => false,
                };
                if over && refuses && outranks {
                    refusal = Some((*target, ledger.committed()));
                }
            }
            if let Some((target, committed)) = refusal {
                let ledger = open_ledger(&mut ledgers, target.key, target.limit_usd);
                if ledger.alerts_sent & FULL_BIT == 0 {
                    ledger.alerts_sent |= FULL_BIT;
                    fired.push((target.key, FULL_BIT, committed.saturating_add(requested)));
                }
            } else {
                for target in &targets {
                    let ledger = open_ledger(&mut ledgers, target.key, target.limit_usd);
                    ledger.reserved = ledger.reserved.saturating_add(requested);
                    fired.push((target.key, ledger.mark_reached(), ledger.committed()));
                }
            }
        }
        let alerts = self.word_alerts(fired);
        let Some((target, committed)) = refusal else {
            let ledgers = targets.iter().map(|target| target.key).collect();
            let reservation = Reservation {
                ledgers,
                amount: requested,
            };
            return ReserveOutcome::Granted {
                reservation,
                alerts,
            };
        };
        let exceeded = BudgetExceeded {
            scope: target.budget.name.clone(),
            period: target.key.period.as_str().to_string(),
            period_start: target.key.period.label(target.key.start),
            limit_usd: target.limit_usd,
            spent_usd: to_usd(committed),
            requested_usd: worst_case_usd,
            policy: target.budget.settings.policy,
            downgrade: target.budget.settings.downgrade.clone(),
        };
        ReserveOutcome::Exceeded { exceeded, alerts }
    }

    /// Turns the reservation into spend of `actual_usd` on the ledgers it was made on.
    pub fn settle(&self, reservation: Reservation, actual_usd: f64) -> Vec<BudgetAlert> {
        let actual = to_nanodollars(actual_usd);
        let mut fired = Fired::new();
        {
            let mut ledgers = self.ledgers.lock();
            for key in reservation.ledgers {
                // Ledgers holding a reservation are never dropped, so a miss means another book's.
                if let Some(ledger) = ledgers.get_mut(&key) {
                    ledger.reserved = ledger.reserved.saturating_sub(reservation.amount).max(0);
                    ledger.settled = ledger.settled.saturating_add(actual);
                    fired.push((key, ledger.mark_reached(), ledger.committed()));
                }
            }
        }
        self.word_alerts(fired)
    }

    /// Drops the reservation without cost: the call failed or was never made.
    pub fn release(&self, reservation: Reservation) {
        // Settling at zero cannot alert: thresholds at or below what stays committed are marked.
        self.settle(reservation, 0.0);
    }

    /// Adds spend settled before a restart to the day and month of `scope` containing `at`.
    pub fn restore(&self, scope: &str, at: DateTime<Utc>, spent_usd: f64) {
        let index = match scope.strip_prefix("feature:") {
            Some(name) => self.features.get(name).copied(),
            None => self.overall.filter(|_| scope == "overall"),
        };
        let mut targets = Vec::new();
        self.push_targets(index, at, &mut targets);
        let amount = to_nanodollars(spent_usd);
        let mut ledgers = self.ledgers.lock();
        for target in targets {
            let ledger = open_ledger(&mut ledgers, target.key, target.limit_usd);
            ledger.settled = ledger.settled.saturating_add(amount);
            // Those alerts went out before the restart; marking them sent keeps them from repeating.
            ledger.mark_reached();
        }
    }

    /// Every configured ledger of the periods containing `now`, overall first.
    pub fn status(&self, now: DateTime<Utc>) -> Vec<BudgetStatus> {
        let mut targets = Vec::new();
        for index in 0..self.scopes.len() {
            self.push_targets(Some(index), now, &mut targets);
        }
        let figures: Vec<(i64, i64, u8)> = {
            let ledgers = self.ledgers.lock();
            let figures = |ledger: &Ledger| (ledger.settled, ledger.reserved, ledger.alerts_sent);
            targets
                .iter()
                .map(|target| ledgers.get(&target.key).map_or((0, 0, 0), figures))
                .collect()
        };
        let rows = targets.iter().zip(figures);
        rows.map(|(target, (settled, reserved, sent))| BudgetStatus {
            scope: target.budget.name.clone(),
            period: target.key.period.as_str().to_string(),
            period_start: target.key.period.label(target.key.start),
            limit_usd: target.limit_usd,
            settled_usd: to_usd(settled),
            reserved_usd: to_usd(reserved),
            alerts_sent: thresholds_in(sent).collect(),
        })
        .collect()
    }

    fn push_targets<'a>(
        &'a self,
        scope: Option<usize>,
        at: DateTime<Utc>,
        targets: &mut Vec<Target<'a>>,
    ) {
        let Some((scope, budget)) = scope.and_then(|index| Some((index, self.scopes.get(index)?)))
        else {
            return;
        };
        let day = at.date_naive();
        // Day 1 exists in every month, so the fallback is never taken.
        let month = day.with_day(1).unwrap_or(day);
        for (period, start) in [(Period::Day, day), (Period::Month, month)] {
            if let Some(limit_usd) = budget.limit_usd(period) {
                let key = LedgerKey {
                    scope,
                    period,
                    start,
                };
                targets.push(Target {
                    key,
                    budget,
                    limit_usd,
                });
            }
        }
    }

    fn word_alerts(&self, fired: Fired) -> Vec<BudgetAlert> {
        let mut alerts = Vec::new();
        for (key, bits, spent) in fired {
            let Some(budget) = self.scopes.get(key.scope) else {
                continue;
            };
            alerts.extend(thresholds_in(bits).map(|threshold_percent| BudgetAlert {
                scope: budget.name.clone(),
                period: key.period.as_str().to_string(),
                period_start: key.period.label(key.start),
                threshold_percent,
                spent_usd: to_usd(spent),
                limit_usd: budget.limit_usd(key.period).unwrap_or_default(),
                policy: budget.settings.policy.as_str().to_string(),
            }));
        }
        alerts
    }
}

#[cfg(test)]
mod tests {
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
        }
    }

    fn refused(outcome: ReserveOutcome) -> (BudgetExceeded, Vec<BudgetAlert>) {
        match outcome {
            ReserveOutcome::Exceeded { exceeded, alerts } => (exceeded, alerts),
            ReserveOutcome::Granted { .. } => panic!("granted"),
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
        assert_eq!((thresholds(&alerts), alerts[0].spent_usd), (vec![100], 1.5));
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
}
