//! A rate limit shared by the fleet: GCRA in one Lua script (`scripts/rate_gcra.lua`), for
//! requests per minute (cost 1 per call) or tokens per minute (cost = the call's tokens), per
//! provider or per model. The answer is "go" or "wait this long", so the client keeps its
//! wait-or-move-on policy.

use std::sync::LazyLock;
use std::time::Duration;

use super::{RedisState, StateError};

static GCRA: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("scripts/rate_gcra.lua")));

/// One shared limit: `limit` units per `period` under the name `name` (for example
/// `provider:openai:rpm` or `model:gpt-4o-mini:tpm`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// What is limited; names the key, so every process using the same name shares it.
    pub name: String,
    /// Units allowed per period (over 0).
    pub limit: u64,
    /// The period (a minute for RPM and TPM).
    pub period: Duration,
}

/// What [`RedisState::acquire`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateDecision {
    /// Go: the units are counted.
    Allowed,
    /// Not now: the same call would be allowed after this wait (nothing was counted).
    Wait(Duration),
    /// Never: the call alone costs more than the limit allows in a period.
    TooLarge,
}

impl RedisState {
    /// Takes `cost` units of `limit` at `now_ms` (the engine clock, Unix ms), atomically for the
    /// fleet: at most `limit` units in any stretch of `period` that follows an idle one, and a
    /// steady `limit` per `period` under sustained load.
    pub fn acquire(
        &self,
        limit: &RateLimit,
        cost: u64,
        now_ms: i64,
    ) -> Result<RateDecision, StateError> {
        if limit.limit == 0 || cost > limit.limit {
            return Ok(RateDecision::TooLarge);
        }
        let period_ms = limit.period.as_secs_f64() * 1000.0;
        let interval_ms = period_ms / limit.limit as f64;
        let key = self.keys().key("rate", &[&limit.name], "tat");
        let (allowed, wait_ms): (i64, i64) = self.with_connection(|connection| {
            GCRA.key(&key)
                .arg(now_ms)
                .arg(format!("{interval_ms:.6}"))
                .arg(format!("{period_ms:.3}"))
                .arg(cost)
                .invoke(connection)
        })?;
        Ok(if allowed == 1 {
            RateDecision::Allowed
        } else {
            RateDecision::Wait(Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0)))
        })
    }
}
