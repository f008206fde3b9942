//! Spend settled on the local ledgers while Redis was unavailable (`while_degraded: local`),
//! or restored from elsewhere, is remembered per budget window and added to that window on
//! Redis once it answers again: at the next shared reserve or settle, or when the reconnect
//! thread reports the state restored. So the fleet's figure counts an outage's spend too.
//!
//! Exactly once: the amounts are taken out of the pending map under its lock before being
//! sent, so two threads racing to reconcile send each amount once; an addition Redis does not
//! take goes back into the map and is tried again later. A window that ended meanwhile still
//! gets its own amount (its keys live a day past its period). One doubt remains, as for any
//! command over a network: a script that ran but whose answer timed out is counted again.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

use super::fleet::{Fleet, holder, window_of};
use super::ledger::{LedgerKey, THRESHOLDS};
use super::{BudgetBook, Target};
use crate::client::events::BudgetAlert;
use crate::state::budget::{BudgetWindow, usd_to_nanos};
use crate::state::{Degraded, OnRestored};

/// One window's spend not yet on Redis.
#[derive(Debug)]
struct Pending {
    window: BudgetWindow,
    limit_usd: f64,
    /// Nanodollars.
    amount: i64,
}

/// Spend waiting to be added to Redis, per budget window (scope x period).
#[derive(Debug, Default)]
pub(super) struct Unreconciled {
    windows: Mutex<HashMap<LedgerKey, Pending>>,
    /// Alerts claimed by a reconciliation no call was waiting for (the reconnect thread's, a
    /// restore's): the next shared reserve or settle hands them out.
    due: Mutex<Vec<BudgetAlert>>,
}

impl Unreconciled {
    /// Remembers `amount` nanodollars of `window` (the ledger `key`) for Redis.
    fn add(&self, key: LedgerKey, window: BudgetWindow, limit_usd: f64, amount: i64) {
        if amount <= 0 {
            return;
        }
        let mut windows = self.windows.lock();
        let pending = windows.entry(key).or_insert(Pending {
            window,
            limit_usd,
            amount: 0,
        });
        pending.amount = pending.amount.saturating_add(amount);
    }

    /// Takes every pending amount out: the caller sends them or puts them back.
    fn take(&self) -> Vec<(LedgerKey, Pending)> {
        let mut windows = self.windows.lock();
        if windows.is_empty() {
            return Vec::new();
        }
        windows.drain().collect()
    }

    /// Keeps alerts claimed by a reconciliation for the next shared reserve or settle to hand
    /// out.
    pub(super) fn defer_alerts(&self, alerts: Vec<BudgetAlert>) {
        if !alerts.is_empty() {
            self.due.lock().extend(alerts);
        }
    }

    /// Total nanodollars not yet on Redis, for tests.
    #[cfg(test)]
    pub(super) fn total(&self) -> i64 {
        self.windows
            .lock()
            .values()
            .fold(0, |sum, pending| sum.saturating_add(pending.amount))
    }

    /// Moves everything pending into `other` (a book replacing this one on reload).
    pub(super) fn move_into(&self, other: &Unreconciled) {
        for (key, pending) in self.take() {
            other.add(key, pending.window, pending.limit_usd, pending.amount);
        }
    }
}

impl BudgetBook {
    /// Remembers `amount` nanodollars settled locally on the window of `target` at `now`, to
    /// add to Redis when it answers (nothing with the memory backend).
    pub(super) fn remember_local(&self, key: LedgerKey, amount: i64) {
        let Some(fleet) = &self.fleet else { return };
        let Some(budget) = self.scopes.get(key.scope) else {
            return;
        };
        let Some(limit_usd) = budget.limit_usd(key.period) else {
            return;
        };
        // Noon of the period's first day lies inside the period whatever the clock's zone.
        let Some(at) = key.start.and_hms_opt(12, 0, 0) else {
            return;
        };
        let target = Target {
            key,
            budget,
            limit_usd,
        };
        let window = window_of(&target, at.and_utc());
        fleet.unreconciled.add(key, window, limit_usd, amount);
    }

    /// Adds every pending amount to its window on Redis and words the alerts those additions
    /// claimed that this process has not sent already (while degraded, the local ledger may
    /// have alerted a threshold itself). An addition Redis does not take stays pending.
    pub(super) fn reconcile(&self, fleet: &Fleet) -> Vec<BudgetAlert> {
        let mut alerts = std::mem::take(&mut *fleet.unreconciled.due.lock());
        let due = fleet.unreconciled.take();
        if due.is_empty() {
            return alerts;
        }
        let holder = holder();
        for (key, pending) in due {
            let amount = u64::try_from(pending.amount).unwrap_or(0);
            let limit = usd_to_nanos(pending.limit_usd);
            let added = fleet
                .shared
                .run(|redis| redis.add_spent(&pending.window, amount, Some(limit), &holder));
            let reconciled = match added {
                Ok(reconciled) => reconciled,
                Err(Degraded) => {
                    fleet
                        .unreconciled
                        .add(key, pending.window, pending.limit_usd, pending.amount);
                    continue;
                }
            };
            let claimed = reconciled
                .claimed_alerts
                .iter()
                .filter_map(|percent| bit_of(u32::from(*percent)))
                .fold(0, |bits, bit| bits | bit);
            let spent = i64::try_from(reconciled.spent).unwrap_or(i64::MAX);
            let fresh = {
                let mut ledgers = self.ledgers.lock();
                match ledgers.get_mut(&key) {
                    Some(ledger) => {
                        ledger.settled = ledger.settled.max(spent);
                        let fresh = claimed & !ledger.alerts_sent;
                        ledger.alerts_sent |= fresh;
                        fresh
                    }
                    // A window whose ledger is gone (its period ended): nothing marks what this
                    // process alerted there, so the fleet's claim decides.
                    None => claimed,
                }
            };
            alerts.extend(self.word_alerts(vec![(key, fresh, spent)]));
        }
        alerts
    }

    /// Adds spend settled elsewhere to Redis (the day and month of `scope` containing `at`),
    /// now or, while Redis is unavailable, when it answers again. Its alerts are claimed for
    /// the fleet but not sent: the caller restores spend whose alerts went out already.
    pub(super) fn restore_shared(&self, scope: Option<usize>, at: DateTime<Utc>, amount: i64) {
        let Some(fleet) = &self.fleet else { return };
        let mut targets = Vec::new();
        self.push_targets(scope, at, &mut targets);
        for target in &targets {
            let window = window_of(target, at);
            fleet
                .unreconciled
                .add(target.key, window, target.limit_usd, amount);
        }
        let alerts = self.reconcile(fleet);
        fleet.unreconciled.defer_alerts(alerts);
    }

    /// Spend not yet added to Redis, in nanodollars (tests).
    #[cfg(test)]
    pub(super) fn unreconciled_nanos(&self) -> i64 {
        self.fleet
            .as_ref()
            .map_or(0, |fleet| fleet.unreconciled.total())
    }
}

impl OnRestored for BudgetBook {
    /// Redis answers again: the outage's spend goes there now, not at the next call.
    fn restored(&self) {
        let Some(fleet) = &self.fleet else { return };
        let alerts = self.reconcile(fleet);
        fleet.unreconciled.defer_alerts(alerts);
    }
}

/// The bit of a threshold in a ledger's mask of sent alerts.
fn bit_of(percent: u32) -> Option<u8> {
    THRESHOLDS
        .iter()
        .position(|threshold| *threshold == percent)
        .map(|index| 1 << index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::budget::ReserveOutcome;
    use crate::config::{BudgetPolicy, BudgetSettings, WhileDegraded};
    use crate::state::{RedisSettings, RedisState, SharedState, StateListener};
    use std::sync::Arc;
    use std::time::Duration;

    fn settings() -> BudgetSettings {
        BudgetSettings {
            daily_usd: Some(1.0),
            monthly_usd: Some(10.0),
            policy: BudgetPolicy::Block,
            downgrade: None,
            while_degraded: WhileDegraded::Local,
        }
    }

    /// A book whose Redis never answers (nothing listens on port 1).
    fn unreachable_book() -> BudgetBook {
        let timeout = Duration::from_millis(50);
        let settings_ = RedisSettings::new("redis://127.0.0.1:1/")
            .unwrap()
            .with_timeouts(timeout, timeout);
        let listener: StateListener = Arc::new(|_| {});
        let shared = SharedState::new(RedisState::new(settings_).unwrap(), listener);
        BudgetBook::new(None, [("chat".to_string(), settings())].into())
            .with_shared(Some(shared), Duration::from_secs(60))
    }

    fn spend(book: &BudgetBook, usd: f64) {
        match book.reserve("chat", 0.5, Utc::now(), true) {
            ReserveOutcome::Granted { reservation, .. } => {
                let _ = book.settle(reservation, usd);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_memory_book_keeps_nothing_for_redis() {
        let book = BudgetBook::new(None, [("chat".to_string(), settings())].into());
        spend(&book, 0.25);
        assert_eq!(book.unreconciled_nanos(), 0);
    }

    #[test]
    fn spend_settled_while_redis_is_unreachable_stays_pending_for_day_and_month() {
        let book = unreachable_book();
        spend(&book, 0.25);
        // The day's and the month's windows each wait for their 0.25.
        assert_eq!(book.unreconciled_nanos(), 500_000_000);
        spend(&book, 0.125);
        assert_eq!(book.unreconciled_nanos(), 750_000_000);
    }

    #[test]
    fn a_reloaded_book_takes_over_what_the_old_one_had_pending() {
        let old = unreachable_book();
        spend(&old, 0.25);
        let new = unreachable_book();
        new.adopt_unreconciled(&old);
        assert_eq!(old.unreconciled_nanos(), 0);
        assert_eq!(new.unreconciled_nanos(), 500_000_000);
    }

    #[test]
    fn thresholds_map_to_the_ledgers_alert_bits_in_order() {
        assert_eq!(bit_of(80), Some(1));
        assert_eq!(bit_of(100), Some(super::super::ledger::FULL_BIT));
        assert_eq!(bit_of(85), None);
    }
}
