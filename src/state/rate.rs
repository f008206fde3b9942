//! A rate limit shared by the fleet: GCRA in one Lua script (`scripts/rate_gcra.lua`), for
//! requests per minute (cost 1 per call) or tokens per minute (cost = the call's tokens), per
//! provider or per model. The answer is "go" or "wait this long", so the client keeps its
//! wait-or-move-on policy.

use std::sync::LazyLock;
use std::time::Duration;

use super::{RedisState, StateError};

static GCRA: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("scripts/rate_gcra.lua")));
static REFUND: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("scripts/rate_refund.lua")));

/// One shared limit: `limit` units per `period` under the name `name` (for example
/// `provider:openai:rpm` or `model:gpt-4o-mini:tpm`), at most `burst` of them at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// What is limited; names the key, so every process using the same name shares it.
    pub name: String,
    /// Units allowed per period (over 0).
    pub limit: u64,
    /// The period (a minute for RPM and TPM).
    pub period: Duration,
    /// Units allowed at once after an idle stretch (1 to `limit`). With `limit`, any stretch
    /// of one period right after an idle one may see up to twice the limit; a tenth of it
    /// keeps every period within 10% of the limit. A call costing more than `burst` is
    /// [`RateDecision::TooLarge`].
    pub burst: u64,
}

impl RateLimit {
    /// `limit` units per `period`, the whole limit allowed at once (`burst = limit`).
    pub fn new(name: impl Into<String>, limit: u64, period: Duration) -> RateLimit {
        RateLimit {
            name: name.into(),
            limit,
            period,
            burst: limit,
        }
    }

    /// The same limit allowing at most `burst` units at once (kept within 1 to `limit`).
    pub fn with_burst(mut self, burst: u64) -> RateLimit {
        self.burst = burst.clamp(1, self.limit.max(1));
        self
    }
}

/// What [`RedisState::acquire`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateDecision {
    /// Go: the units are counted.
    Allowed,
    /// Not now: the same call would be allowed after this wait (nothing was counted).
    Wait(Duration),
    /// Never: the call alone costs more than the burst (or the limit) allows.
    TooLarge,
}

impl RedisState {
    /// Takes `cost` units of `limit` at `now_ms` (the engine clock, Unix ms), atomically for the
    /// fleet: at most `burst` units at once after an idle stretch, and a steady `limit` per
    /// `period` under sustained load.
    pub fn acquire(
        &self,
        limit: &RateLimit,
        cost: u64,
        now_ms: i64,
    ) -> Result<RateDecision, StateError> {
        if limit.limit == 0 || cost > limit.burst.min(limit.limit) {
            return Ok(RateDecision::TooLarge);
        }
        let period_ms = limit.period.as_secs_f64() * 1000.0;
        let interval_ms = period_ms / limit.limit as f64;
        let tolerance_ms = interval_ms * limit.burst.min(limit.limit) as f64;
        let key = self.keys().key("rate", &[&limit.name], "tat");
        let (allowed, wait_ms): (i64, i64) = self.with_connection(|connection| {
            GCRA.key(&key)
                .arg(now_ms)
                .arg(format!("{interval_ms:.6}"))
                .arg(format!("{tolerance_ms:.3}"))
                .arg(cost)
                .invoke(connection)
        })?;
        Ok(if allowed == 1 {
            RateDecision::Allowed
        } else {
            RateDecision::Wait(Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0)))
        })
    }

    /// Gives `units` back to `limit` at `now_ms`: a call that took more tokens than it used,
    /// or one that never went out because another limit refused. Never builds credit beyond
    /// the burst (the theoretical arrival time does not move before now).
    pub fn refund(&self, limit: &RateLimit, units: u64, now_ms: i64) -> Result<(), StateError> {
        if units == 0 || limit.limit == 0 {
            return Ok(());
        }
        let interval_ms = limit.period.as_secs_f64() * 1000.0 / limit.limit as f64;
        let key = self.keys().key("rate", &[&limit.name], "tat");
        let _moved: i64 = self.with_connection(|connection| {
            REFUND
                .key(&key)
                .arg(now_ms)
                .arg(format!("{interval_ms:.6}"))
                .arg(units)
                .invoke(connection)
        })?;
        Ok(())
    }
}
