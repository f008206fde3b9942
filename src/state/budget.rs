//! Budget primitives on Redis: reserve before a call, settle after it, and claim alert
//! thresholds once per scope and period across the fleet. Each is one Lua script
//! (`scripts/budget_reserve.lua`, `scripts/budget_settle.lua`) over the keys of one budget
//! window, which share a hash tag.
//!
//! The overspend bound: a reservation is admitted only while
//! `spent + reserved + amount <= limit`, atomically for the whole fleet, so total spend can
//! pass the limit only by what settled calls cost beyond what they had reserved (none when
//! reservations are upper bounds) — the reservations in flight when it was crossed.
//!
//! Amounts are whole nano-dollars ([`usd_to_nanos`]): Redis adds integers exactly, where
//! adding float dollars from thousands of processes would drift.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::{RedisState, StateError};

static RESERVE: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("scripts/budget_reserve.lua")));
static SETTLE: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("scripts/budget_settle.lua")));
static RECONCILE: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("scripts/budget_reconcile.lua")));
static CLAIM: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("scripts/budget_claim.lua")));

/// Alert thresholds of a budget, in percent of its limit (issue 11: 80/90/95/100).
pub const ALERT_THRESHOLDS: [u8; 4] = [80, 90, 95, 100];

/// How long a window's keys outlive its end: late settles still land in the right window,
/// and a day's figures stay readable for a day.
const GRACE_SECONDS: i64 = 86_400;

/// Dollars to whole nano-dollars, rounded up (a reservation never holds less than asked);
/// negative, NaN or infinite amounts count as 0 (costs are never negative).
pub fn usd_to_nanos(usd: f64) -> u64 {
    if usd.is_finite() && usd > 0.0 {
        (usd * 1e9).ceil().min(u64::MAX as f64) as u64
    } else {
        0
    }
}

/// Nano-dollars to dollars.
pub fn nanos_to_usd(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

/// The UTC calendar period a budget limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Period {
    /// A UTC day (00:00 to 24:00).
    Day,
    /// A UTC calendar month.
    Month,
}

/// One budget's keys for one period: a scope (`"global"`, `"feature:summarize"`, any text)
/// in the UTC day or month containing a moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetWindow {
    scope: String,
    label: String,
    expire_at: i64,
}

impl BudgetWindow {
    /// The window of `scope` for the `period` containing `now`; its keys expire a day after
    /// the period ends.
    pub fn new(scope: &str, period: Period, now: DateTime<Utc>) -> BudgetWindow {
        let today = now.date_naive();
        let (label, next_start) = match period {
            Period::Day => (
                format!("day:{}", today.format("%Y-%m-%d")),
                today.succ_opt().unwrap_or(today),
            ),
            Period::Month => {
                let (year, month) = if today.month() == 12 {
                    (today.year() + 1, 1)
                } else {
                    (today.year(), today.month() + 1)
                };
                (
                    format!("month:{}", today.format("%Y-%m")),
                    NaiveDate::from_ymd_opt(year, month, 1).unwrap_or(today),
                )
            }
        };
        let end = next_start
            .and_hms_opt(0, 0, 0)
            .map_or(now.timestamp(), |end| end.and_utc().timestamp());
        BudgetWindow {
            scope: scope.to_string(),
            label,
            expire_at: end + GRACE_SECONDS,
        }
    }

    /// The scope.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// `day:2026-11-30` or `month:2026-11`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// When the window's keys expire (Unix seconds): a day after the period ends.
    pub fn expire_at(&self) -> i64 {
        self.expire_at
    }
}

/// A reservation admitted by [`RedisState::reserve`]: settle it with [`RedisState::settle`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// Unique across the fleet: a random per-process token and a counter.
    pub id: String,
    /// What it holds, in nano-dollars.
    pub amount: u64,
}

/// What [`RedisState::reserve`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReserveOutcome {
    /// Admitted: the amount is held until settled or until the hold expires.
    Reserved {
        /// The reservation to settle.
        reservation: Reservation,
        /// The window's settled spend when admitted, in nano-dollars.
        spent: u64,
        /// Everything reserved in the window now, this reservation included.
        reserved: u64,
    },
    /// Refused: `spent + reserved + amount` would pass the limit.
    Refused {
        /// The window's settled spend, in nano-dollars.
        spent: u64,
        /// Reserved by calls in flight across the fleet.
        reserved: u64,
    },
}

/// What [`RedisState::settle`] recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settled {
    /// The window's settled spend now, in nano-dollars.
    pub spent: u64,
    /// Still reserved by other calls in flight.
    pub reserved: u64,
    /// False when the reservation had expired (its hold passed) before this settle: the cost
    /// still counts.
    pub was_held: bool,
    /// The alert thresholds (percent) this settle claimed: each is claimed by exactly one
    /// settle in the fleet per window. Fire these alerts; never the others.
    pub claimed_alerts: Vec<u8>,
}

/// What [`RedisState::add_spent`] recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reconciled {
    /// The window's settled spend now, in nano-dollars.
    pub spent: u64,
    /// The alert thresholds (percent) this addition claimed, as [`Settled::claimed_alerts`].
    pub claimed_alerts: Vec<u8>,
}

/// The totals of a window, for stats and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Settled spend, in nano-dollars.
    pub spent: u64,
    /// Reserved by calls in flight.
    pub reserved: u64,
}

impl RedisState {
    /// Reserves `amount` nano-dollars in `window` if `spent + reserved + amount <= limit`
    /// (always, with no limit: a `warn` budget still counts in flight), atomically for the
    /// fleet. The hold lasts `hold`: a process that dies before settling frees it then.
    /// `now_ms` is the engine clock's time (Unix ms), so tests can move it.
    pub fn reserve(
        &self,
        window: &BudgetWindow,
        limit: Option<u64>,
        amount: u64,
        now_ms: i64,
        hold: Duration,
    ) -> Result<ReserveOutcome, StateError> {
        let id = reservation_id();
        let keys = self.window_keys(window);
        let (status, spent, reserved): (i64, i64, i64) = self.with_connection(|connection| {
            RESERVE
                .key(&keys[0])
                .key(&keys[1])
                .key(&keys[2])
                .arg(limit.map_or(-1, saturating_i64))
                .arg(saturating_i64(amount))
                .arg(&id)
                .arg(now_ms)
                .arg(i64::try_from(hold.as_millis()).unwrap_or(i64::MAX))
                .arg(window.expire_at)
                .invoke(connection)
        })?;
        let (spent, reserved) = (non_negative(spent), non_negative(reserved));
        match status {
            1 => Ok(ReserveOutcome::Reserved {
                reservation: Reservation { id, amount },
                spent,
                reserved,
            }),
            0 => Ok(ReserveOutcome::Refused { spent, reserved }),
            _ => Err(StateError::Unavailable {
                server: self.settings().masked_url(),
                message: format!("reservation id {id} was already held"),
            }),
        }
    }

    /// Replaces `reservation` by the call's `actual` cost (0 to release it unused) and claims
    /// the [`ALERT_THRESHOLDS`] of `limit` that the new spend reached and no one claimed
    /// before in this window. With no limit, nothing is claimed. `holder` (a process or
    /// request id) is recorded with each claim.
    pub fn settle(
        &self,
        window: &BudgetWindow,
        reservation: &Reservation,
        actual: u64,
        limit: Option<u64>,
        holder: &str,
    ) -> Result<Settled, StateError> {
        let keys = self.window_keys(window);
        let (spent, reserved, held, claimed): (i64, i64, i64, Vec<i64>) =
            self.with_connection(|connection| {
                let mut invocation = SETTLE.prepare_invoke();
                invocation
                    .key(&keys[0])
                    .key(&keys[1])
                    .key(&keys[2])
                    .arg(&reservation.id)
                    .arg(saturating_i64(actual))
                    .arg(window.expire_at)
                    .arg(limit.map_or(-1, saturating_i64))
                    .arg(holder);
                for threshold in ALERT_THRESHOLDS {
                    invocation.arg(threshold);
                }
                invocation.invoke(connection)
            })?;
        Ok(Settled {
            spent: non_negative(spent),
            reserved: non_negative(reserved),
            was_held: held == 1,
            claimed_alerts: claimed
                .into_iter()
                .filter_map(|percent| u8::try_from(percent).ok())
                .collect(),
        })
    }

    /// Adds `amount` nano-dollars of spend settled without a reservation on Redis (while it
    /// was unavailable, or restored from elsewhere) to `window` in one script, and claims the
    /// [`ALERT_THRESHOLDS`] of `limit` the new spend reached and no one claimed before, as
    /// [`RedisState::settle`] does. Not idempotent: the caller sends each amount once.
    pub fn add_spent(
        &self,
        window: &BudgetWindow,
        amount: u64,
        limit: Option<u64>,
        holder: &str,
    ) -> Result<Reconciled, StateError> {
        let keys = self.window_keys(window);
        let (spent, claimed): (i64, Vec<i64>) = self.with_connection(|connection| {
            let mut invocation = RECONCILE.prepare_invoke();
            invocation
                .key(&keys[0])
                .arg(saturating_i64(amount))
                .arg(window.expire_at)
                .arg(limit.map_or(-1, saturating_i64))
                .arg(holder);
            for threshold in ALERT_THRESHOLDS {
                invocation.arg(threshold);
            }
            invocation.invoke(connection)
        })?;
        Ok(Reconciled {
            spent: non_negative(spent),
            claimed_alerts: claimed
                .into_iter()
                .filter_map(|percent| u8::try_from(percent).ok())
                .collect(),
        })
    }

    /// Claims the alert at `percent` of `window` for `holder` without spending (the 100% alert
    /// of a refused call: a `block` budget refuses before spend reaches its limit, so no settle
    /// would claim it). True when this call claimed it, false when someone in the fleet did.
    pub fn claim_alert(
        &self,
        window: &BudgetWindow,
        percent: u8,
        holder: &str,
    ) -> Result<bool, StateError> {
        let keys = self.window_keys(window);
        let claimed: i64 = self.with_connection(|connection| {
            CLAIM
                .key(&keys[0])
                .arg(percent)
                .arg(holder)
                .arg(window.expire_at)
                .invoke(connection)
        })?;
        Ok(claimed == 1)
    }

    /// The window's settled spend and what is reserved in flight.
    pub fn totals(&self, window: &BudgetWindow) -> Result<Totals, StateError> {
        let keys = self.window_keys(window);
        let (spent, reserved): (Option<i64>, Option<i64>) = self.with_connection(|connection| {
            redis::cmd("HMGET")
                .arg(&keys[0])
                .arg("spent")
                .arg("reserved")
                .query(connection)
        })?;
        Ok(Totals {
            spent: non_negative(spent.unwrap_or(0)),
            reserved: non_negative(reserved.unwrap_or(0)),
        })
    }

    /// The keys of one window: totals, reservations, reservation deadlines.
    pub fn window_keys(&self, window: &BudgetWindow) -> [String; 3] {
        let tag = [window.scope.as_str(), window.label.as_str()];
        ["totals", "reservations", "deadlines"].map(|field| self.keys().key("budget", &tag, field))
    }
}

/// A reservation id unique across the fleet: a random token drawn once per process (std's
/// randomly keyed hasher), the process id (a forked Puma worker inherits the token and the
/// counter of its parent, never its pid) and a counter.
fn reservation_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    static TOKEN: LazyLock<u64> = LazyLock::new(|| {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.finish()
    });
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:016x}-{}-{}",
        *TOKEN,
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn non_negative(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_day_window_is_labelled_by_its_utc_date_and_expires_a_day_after_it_ends() {
        let now = Utc.with_ymd_and_hms(2026, 11, 30, 23, 59, 0).unwrap();
        let window = BudgetWindow::new("global", Period::Day, now);
        assert_eq!(window.label(), "day:2026-11-30");
        let end = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        assert_eq!(window.expire_at(), end.timestamp() + 86_400);
    }

    #[test]
    fn a_december_month_window_ends_on_the_first_of_january() {
        let now = Utc.with_ymd_and_hms(2026, 12, 15, 8, 0, 0).unwrap();
        let window = BudgetWindow::new("global", Period::Month, now);
        assert_eq!(window.label(), "month:2026-12");
        let end = Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(window.expire_at(), end.timestamp() + 86_400);
    }

    #[test]
    fn dollars_round_up_to_whole_nanos_and_bad_amounts_are_zero() {
        assert_eq!(usd_to_nanos(0.000_001_5), 1_500);
        assert_eq!(usd_to_nanos(20.0), 20_000_000_000);
        assert_eq!(usd_to_nanos(-1.0), 0);
        assert_eq!(usd_to_nanos(f64::NAN), 0);
        assert_eq!(nanos_to_usd(1_500), 0.000_001_5);
    }

    #[test]
    fn reservation_ids_never_repeat_in_a_process() {
        let a = reservation_id();
        let b = reservation_id();
        assert_ne!(a, b);
        assert_eq!(a.split('-').next(), b.split('-').next());
    }
}
