//! The budget ledger: spend per scope (`overall`, `feature:<name>`) and period (UTC day, UTC
//! month), reserved at its worst case before each LLM call and settled at its actual cost after,
//! so concurrent calls never overspend by more than the reservations in flight. It decides which
//! calls are refused or downgraded and which threshold alerts (80, 90, 95, 100 percent) are due,
//! each exactly once per period; it hands the alerts back to the caller to emit.
//!
//! With a Redis state backend (issue 11) the book reserves and settles on Redis instead
//! ([`fleet`]), so the limit holds for the whole fleet and each alert is claimed by one process;
//! the per-process ledgers then mirror the fleet's spend and take over while Redis is
//! unavailable (or refuse, per the budget's `while_degraded`); what they settle meanwhile is
//! added to Redis when it answers again ([`reconcile`]).

mod fleet;
mod ledger;
mod money;
mod reconcile;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Utc};
use parking_lot::Mutex;
use serde::Serialize;

use super::events::BudgetAlert;
use crate::config::{BudgetPolicy, BudgetSettings, DowngradeChain};
use crate::state::SharedState;
use fleet::{Fleet, FleetHold};
use ledger::{
    FULL_BIT, Fired, Ledger, LedgerKey, Period, open_ledger, thresholds_in, to_nanodollars, to_usd,
};
pub(crate) use money::format_usd;

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

/// Spend against every configured budget, shared by all calls of a client.
#[derive(Debug)]
pub struct BudgetBook {
    scopes: Vec<ScopeBudget>,
    overall: Option<usize>,
    features: HashMap<String, usize>,
    ledgers: Mutex<HashMap<LedgerKey, Ledger>>,
    /// The fleet's shared state, when the backend is Redis.
    fleet: Option<Fleet>,
}

/// Worst-case cost held on ledgers until the call is settled or released.
#[must_use = "a reservation holds budget until it is settled or released"]
#[derive(Debug)]
pub struct Reservation {
    /// Where it was made: settling and releasing go to the same place, even if Redis failed
    /// or came back in between.
    place: Place,
    amount: i64,
}

#[derive(Debug)]
enum Place {
    /// On this process's ledgers.
    Local(Vec<LedgerKey>),
    /// On Redis, one hold per budget window.
    Fleet(Vec<FleetHold>),
}

impl Reservation {
    /// True when the reservation was made on the fleet's shared state (Redis).
    #[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
    pub fn is_shared(&self) -> bool {
        matches!(self.place, Place::Fleet(_))
    }
}

impl Reservation {
    /// The amount held on each of its ledgers, in USD.
    #[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
    pub fn reserved_usd(&self) -> f64 {
        to_usd(self.amount)
    }
}

/// The answer to [`BudgetBook::reserve`].
#[derive(Debug)]
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
    /// The shared state is unavailable and a budget of this call says `while_degraded: block`:
    /// nothing was reserved.
    Unavailable {
        /// The budget that blocks (`overall` or `feature:<name>`).
        scope: String,
        /// The Redis server or cluster that did not answer, password masked.
        server: String,
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
            fleet: None,
        }
    }

    /// The same book reserving and settling on the fleet's shared state (Redis), each hold
    /// lasting `hold` (a process that dies before settling frees it then). With `None`, the
    /// book stays per process.
    pub fn with_shared(mut self, shared: Option<SharedState>, hold: std::time::Duration) -> Self {
        self.fleet = shared.map(|shared| Fleet::new(shared, hold));
        self
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
        if let Some(fleet) = &self.fleet {
            if let Ok(outcome) = self.reserve_shared(fleet, &targets, requested, now, enforce) {
                return outcome;
            }
            // Redis is unavailable (now or by this very call): the local ledgers take over,
            // unless a budget of this call would rather refuse.
            let blocking = targets.iter().find(|target| {
                target.budget.settings.while_degraded == crate::config::WhileDegraded::Block
            });
            if let Some(target) = blocking {
                return ReserveOutcome::Unavailable {
                    scope: target.budget.name.clone(),
                    server: fleet.server(),
                };
            }
        }
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
                    // What was spent and reserved: the refused call spent nothing.
                    fired.push((target.key, FULL_BIT, committed));
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
                place: Place::Local(ledgers),
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
        let keys = match reservation.place {
            Place::Local(keys) => keys,
            Place::Fleet(holds) => return self.settle_shared(holds, actual),
        };
        let mut fired = Fired::new();
        {
            let mut ledgers = self.ledgers.lock();
            for key in keys {
                // Ledgers holding a reservation are never dropped, so a miss means another book's.
                if let Some(ledger) = ledgers.get_mut(&key) {
                    ledger.reserved = ledger.reserved.saturating_sub(reservation.amount).max(0);
                    ledger.settled = ledger.settled.saturating_add(actual);
                    fired.push((key, ledger.mark_reached(), ledger.committed()));
                }
            }
        }
        // With Redis, a local reservation was made while it was unavailable: the spend goes
        // to Redis when it answers again.
        for (key, _, _) in &fired {
            self.remember_local(*key, actual);
        }
        self.word_alerts(fired)
    }

    /// Drops the reservation without cost: the call failed or was never made.
    pub fn release(&self, reservation: Reservation) {
        match reservation.place {
            Place::Fleet(holds) => self.release_shared(holds),
            // Settling at zero cannot alert: thresholds at or below what stays committed are
            // marked.
            Place::Local(_) => {
                self.settle(reservation, 0.0);
            }
        }
    }

    /// Adds spend settled before a restart, or elsewhere, to the day and month of `scope`
    /// containing `at`. With Redis it is added to the fleet's windows too (now, or when Redis
    /// answers again): it is spend the fleet has not counted, and its alerts are claimed for
    /// the fleet without being sent, since they went out where it was spent.
    pub fn restore(&self, scope: &str, at: DateTime<Utc>, spent_usd: f64) {
        self.restore_periods(scope, at, spent_usd, spent_usd);
        self.restore_shared(self.scope_index(scope), at, to_nanodollars(spent_usd));
    }

    /// Moves the spend `previous` has not yet added to Redis into this book, which replaces
    /// it on reload (the local figures come over by [`BudgetBook::restore_periods`]).
    pub fn adopt_unreconciled(&self, previous: &BudgetBook) {
        if let (Some(from), Some(to)) = (&previous.fleet, &self.fleet) {
            from.unreconciled.move_into(&to.unreconciled);
        }
    }

    /// Has the fleet's shared state tell this book when Redis answers again, so the spend of
    /// an outage reaches it without waiting for a call. Nothing with the memory backend.
    pub fn watch_restored(self: &std::sync::Arc<Self>) {
        if let Some(fleet) = &self.fleet {
            let weak: std::sync::Weak<dyn crate::state::OnRestored> =
                std::sync::Arc::downgrade(self) as _;
            fleet.shared.when_restored(weak);
        }
    }

    fn scope_index(&self, scope: &str) -> Option<usize> {
        match scope.strip_prefix("feature:") {
            Some(name) => self.features.get(name).copied(),
            None => self.overall.filter(|_| scope == "overall"),
        }
    }

    /// Adds `day_usd` to the day and `month_usd` to the month of `scope` containing `at`: what a
    /// reload carries over, where the month holds earlier days' spend too. Local ledgers only:
    /// with Redis, the fleet counted it already.
    pub fn restore_periods(&self, scope: &str, at: DateTime<Utc>, day_usd: f64, month_usd: f64) {
        let index = self.scope_index(scope);
        let mut targets = Vec::new();
        self.push_targets(index, at, &mut targets);
        let mut ledgers = self.ledgers.lock();
        for target in targets {
            let amount = match target.key.period {
                Period::Day => to_nanodollars(day_usd),
                Period::Month => to_nanodollars(month_usd),
            };
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
        let mut figures: Vec<(i64, i64, u8)> = {
            let ledgers = self.ledgers.lock();
            let figures = |ledger: &Ledger| (ledger.settled, ledger.reserved, ledger.alerts_sent);
            targets
                .iter()
                .map(|target| ledgers.get(&target.key).map_or((0, 0, 0), figures))
                .collect()
        };
        if let Some(fleet) = &self.fleet {
            // The fleet's figures when Redis answers; the local mirror otherwise.
            for (target, figures) in targets.iter().zip(figures.iter_mut()) {
                if let Some((settled, reserved)) = fleet.totals(target, now) {
                    (figures.0, figures.1) = (settled, reserved);
                }
            }
        }
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

/// The refusal of a `while_degraded: block` budget while Redis is unavailable. Its kind is
/// `state_unavailable` (retryable), not `budget_exceeded`: the limit was not reached, it could
/// not be checked, and a caller should retry rather than tell the user the money ran out.
/// `server` (password masked) reaches the error's details, as a `StateError::Unavailable`'s do.
pub(crate) fn unverifiable(
    scope: &str,
    server: &str,
    request_id: &str,
) -> super::outcome::CompleteError {
    super::outcome::CompleteError::StateUnavailable {
        summary: format!(
            "budget {scope} cannot be checked: the shared state (Redis, {server}) is \
             unavailable and the budget's while_degraded is block"
        ),
        server: server.to_string(),
        request_id: request_id.to_string(),
    }
}
