//! The budget book on the fleet's shared state (issue 11): each call's worst case is reserved
//! on Redis for every budget window it touches (one script per window, `state::budget`), and
//! settled there with the real cost, so the limit holds across every process and host; each
//! alert threshold is claimed by exactly one settle in the fleet, and only the process that
//! claimed it emits the `budget.alert`.
//!
//! The per-process ledgers keep a mirror of the fleet's settled spend (the last figure Redis
//! answered), so when Redis becomes unavailable a `local` budget carries on from what the fleet
//! had spent rather than from zero, and thresholds the fleet already alerted do not fire again.
//! What they settle meanwhile is added to Redis once it answers again ([`super::reconcile`]).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::ledger::{LedgerKey, Period, open_ledger, to_usd};
use super::reconcile::Unreconciled;
use super::{BudgetBook, BudgetExceeded, Place, Reservation, ReserveOutcome, Target};
use crate::client::events::BudgetAlert;
use crate::config::BudgetPolicy;
use crate::state::budget::{
    self as fleet_budget, BudgetWindow, ReserveOutcome as FleetOutcome, usd_to_nanos,
};
use crate::state::{Degraded, SharedState};

/// The alert threshold a refusal claims (a `block` budget refuses before settled spend gets
/// there, so no settle would).
const FULL_PERCENT: u8 = 100;

/// The shared state a book reserves on, and how long a hold lasts.
#[derive(Debug)]
pub(super) struct Fleet {
    pub(super) shared: SharedState,
    hold: Duration,
    /// Spend settled locally while Redis was unavailable, not yet added to it.
    pub(super) unreconciled: Unreconciled,
}

/// One budget window's part of a reservation made on Redis.
#[derive(Debug)]
pub(super) struct FleetHold {
    key: LedgerKey,
    limit_usd: f64,
    window: BudgetWindow,
    reservation: fleet_budget::Reservation,
}

impl Fleet {
    pub(super) fn new(shared: SharedState, hold: Duration) -> Fleet {
        Fleet {
            shared,
            hold,
            unreconciled: Unreconciled::default(),
        }
    }

    /// The Redis server or cluster, password masked: what a refusal while degraded names.
    pub(super) fn server(&self) -> String {
        self.shared.redis().settings().masked_url()
    }

    /// The fleet's settled and reserved spend of `target` in nanodollars, when Redis answers.
    pub(super) fn totals(&self, target: &Target<'_>, now: DateTime<Utc>) -> Option<(i64, i64)> {
        let window = window_of(target, now);
        let totals = self.shared.run(|redis| redis.totals(&window)).ok()?;
        Some((to_i64(totals.spent), to_i64(totals.reserved)))
    }
}

/// Who claims an alert: the process (a forked worker has a pid of its own).
pub(super) fn holder() -> String {
    format!("pid:{}", std::process::id())
}

pub(super) fn window_of(target: &Target<'_>, now: DateTime<Utc>) -> BudgetWindow {
    let period = match target.key.period {
        Period::Day => fleet_budget::Period::Day,
        Period::Month => fleet_budget::Period::Month,
    };
    BudgetWindow::new(&target.budget.name, period, now)
}

fn to_i64(nanos: u64) -> i64 {
    i64::try_from(nanos).unwrap_or(i64::MAX)
}

impl BudgetBook {
    /// Reserves `requested` nanodollars on every window of `targets` on Redis; a refusing
    /// budget releases what was already held. `Err(Degraded)` when Redis is unavailable: the
    /// caller falls back to the local ledgers (holds made before the failure expire on Redis).
    pub(super) fn reserve_shared(
        &self,
        fleet: &Fleet,
        targets: &[Target<'_>],
        requested: i64,
        now: DateTime<Utc>,
        enforce: bool,
    ) -> Result<ReserveOutcome, Degraded> {
        // Spend of an outage goes to Redis before this reservation is weighed against it.
        let reconciled = self.reconcile(fleet);
        let amount = u64::try_from(requested).unwrap_or(0);
        let now_ms = now.timestamp_millis();
        let mut holds = Vec::with_capacity(targets.len());
        let mut refusal: Option<(&Target<'_>, BudgetWindow, u64)> = None;
        for target in targets {
            let policy = target.budget.settings.policy;
            let refuses = match policy {
                BudgetPolicy::Block => true,
                BudgetPolicy::Downgrade => enforce,
                BudgetPolicy::Allow => false,
            };
            // A budget that does not refuse still reserves (with no limit), so what it shows
            // in flight is true.
            let limit = refuses.then(|| usd_to_nanos(target.limit_usd));
            let window = window_of(target, now);
            let outcome = fleet
                .shared
                .run(|redis| redis.reserve(&window, limit, amount, now_ms, fleet.hold));
            let outcome = match outcome {
                Ok(outcome) => outcome,
                Err(Degraded) => {
                    // Redis just failed: the shared state is degraded, so releasing would not
                    // reach it either; the holds expire there. Alerts the reconciliation
                    // claimed go out with the next shared call.
                    fleet.unreconciled.defer_alerts(reconciled);
                    return Err(Degraded);
                }
            };
            match outcome {
                FleetOutcome::Reserved {
                    reservation, spent, ..
                } => {
                    self.mirror(target.key, target.limit_usd, spent);
                    holds.push(FleetHold {
                        key: target.key,
                        limit_usd: target.limit_usd,
                        window,
                        reservation,
                    });
                }
                FleetOutcome::Refused { spent, reserved } => {
                    self.mirror(target.key, target.limit_usd, spent);
                    // Block outranks Downgrade: a downgrade retries unenforced and would slip
                    // past a cap.
                    let outranks = refusal.as_ref().is_none_or(|(first, _, _)| {
                        first.budget.settings.policy != BudgetPolicy::Block
                            && policy == BudgetPolicy::Block
                    });
                    if outranks {
                        refusal = Some((target, window, spent.saturating_add(reserved)));
                    }
                }
            }
        }
        let Some((target, window, committed)) = refusal else {
            return Ok(ReserveOutcome::Granted {
                reservation: Reservation {
                    place: Place::Fleet(holds),
                    amount: requested,
                },
                alerts: reconciled,
            });
        };
        self.release_shared(holds);
        let committed = to_i64(committed);
        let mut alerts = reconciled;
        let claimed = fleet
            .shared
            .run(|redis| redis.claim_alert(&window, FULL_PERCENT, &holder()));
        if claimed == Ok(true) {
            // The fleet's spent and reserved, as the memory backend's alert at a refusal: the
            // refused call spent nothing, so its worst case is not part of the figure.
            alerts.push(self.alert(target.key, u32::from(FULL_PERCENT), committed));
        }
        let exceeded = BudgetExceeded {
            scope: target.budget.name.clone(),
            period: target.key.period.as_str().to_string(),
            period_start: target.key.period.label(target.key.start),
            limit_usd: target.limit_usd,
            spent_usd: to_usd(committed),
            requested_usd: to_usd(requested),
            policy: target.budget.settings.policy,
            downgrade: target.budget.settings.downgrade.clone(),
        };
        Ok(ReserveOutcome::Exceeded { exceeded, alerts })
    }

    /// Settles each hold on Redis at `actual` nanodollars and words the alerts this process
    /// claimed. A hold Redis cannot take any more (it failed since) is settled on the local
    /// ledger instead, so the process's own accounting still counts the cost.
    pub(super) fn settle_shared(&self, holds: Vec<FleetHold>, actual: i64) -> Vec<BudgetAlert> {
        let amount = u64::try_from(actual).unwrap_or(0);
        let holder = holder();
        let mut alerts = match &self.fleet {
            Some(fleet) => self.reconcile(fleet),
            None => Vec::new(),
        };
        for hold in holds {
            let limit = usd_to_nanos(hold.limit_usd);
            let settled = match &self.fleet {
                Some(fleet) => fleet.shared.run(|redis| {
                    redis.settle(
                        &hold.window,
                        &hold.reservation,
                        amount,
                        Some(limit),
                        &holder,
                    )
                }),
                None => Err(Degraded),
            };
            match settled {
                Ok(settled) => {
                    self.mirror(hold.key, hold.limit_usd, settled.spent);
                    let spent = to_i64(settled.spent);
                    alerts.extend(
                        settled
                            .claimed_alerts
                            .into_iter()
                            .map(|percent| self.alert(hold.key, u32::from(percent), spent)),
                    );
                }
                Err(Degraded) => {
                    let fired = {
                        let mut ledgers = self.ledgers.lock();
                        let ledger = open_ledger(&mut ledgers, hold.key, hold.limit_usd);
                        ledger.settled = ledger.settled.saturating_add(actual);
                        (hold.key, ledger.mark_reached(), ledger.committed())
                    };
                    self.remember_local(hold.key, actual);
                    alerts.extend(self.word_alerts(vec![fired]));
                }
            }
        }
        alerts
    }

    /// Frees each hold on Redis without cost (no alert can be claimed by a release); a hold
    /// Redis cannot take any more expires there by itself.
    pub(super) fn release_shared(&self, holds: Vec<FleetHold>) {
        let Some(fleet) = &self.fleet else { return };
        let holder = holder();
        for hold in holds {
            let _released = fleet
                .shared
                .run(|redis| redis.settle(&hold.window, &hold.reservation, 0, None, &holder));
        }
    }

    /// Records the fleet's settled spend of a window on its local ledger (never lowering it:
    /// the local ledger may hold spend made while Redis was away) and marks the thresholds it
    /// reached as alerted, since the fleet claimed those already.
    fn mirror(&self, key: LedgerKey, limit_usd: f64, fleet_spent: u64) {
        let mut ledgers = self.ledgers.lock();
        let ledger = open_ledger(&mut ledgers, key, limit_usd);
        ledger.settled = ledger.settled.max(to_i64(fleet_spent));
        ledger.mark_reached();
    }

    fn alert(&self, key: LedgerKey, threshold_percent: u32, spent: i64) -> BudgetAlert {
        let budget = self.scopes.get(key.scope);
        BudgetAlert {
            scope: budget.map_or_else(String::new, |budget| budget.name.clone()),
            period: key.period.as_str().to_string(),
            period_start: key.period.label(key.start),
            threshold_percent,
            spent_usd: to_usd(spent),
            limit_usd: budget
                .and_then(|budget| budget.limit_usd(key.period))
                .unwrap_or_default(),
            policy: budget
                .map_or("", |budget| budget.settings.policy.as_str())
                .to_string(),
        }
    }
}
