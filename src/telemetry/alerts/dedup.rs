//! Once per rule, scope and period: before an alert is delivered its rules claim it, and only
//! the claim's winner delivers. Claims live in this process (a map with expiry) or, with the
//! Redis backend, on the fleet's Redis (`SET NX PX` under the keyspace, see
//! [`crate::state::claim`]), so four processes seeing one condition deliver it once. While
//! Redis is unavailable claims fall back to this process's map (the shared state reports the
//! degradation as `state.degraded`); an alert may then go out once per process, never zero
//! times.

// Until the delivery thread (H4) calls the rules, only the tests (test-hooks) reach them.
#![cfg_attr(not(feature = "test-hooks"), allow(dead_code))]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::AlertAction;
use crate::state::SharedState;

/// Claims kept in memory before expired ones are swept on the next claim.
const SWEEP_ABOVE: usize = 1024;

/// What one claim is about: one alert action of one rule, scope and period.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimKey {
    /// The rule's name.
    pub rule: String,
    /// The alert's scope (`overall`, a feature, a breaker, `feature@version`).
    pub scope: String,
    /// The alert's period (a day, a window's start, a breaker's opening, a run id), plus for
    /// budgets the threshold.
    pub period: String,
    /// Trigger or resolve: a resolve is claimed apart from its trigger.
    pub action: AlertAction,
}

impl ClaimKey {
    /// The Redis key's last part, after the `{rule|scope|period}` hash tag: `trigger` or
    /// `resolve` (`PREFIX:alert:{rule|scope|period}:trigger`).
    fn field(&self) -> &'static str {
        self.action.as_str()
    }
}

/// Where alert claims are kept: this process, or the fleet's Redis.
#[derive(Debug, Clone)]
pub struct Dedup {
    shared: Option<SharedState>,
    local: std::sync::Arc<parking_lot::Mutex<HashMap<ClaimKey, Instant>>>,
}

impl Dedup {
    /// Claims in memory when `shared` is `None`, else on the fleet's Redis (falling back to
    /// memory while it is unavailable).
    pub fn new(shared: Option<SharedState>) -> Dedup {
        Dedup {
            shared,
            local: Default::default(),
        }
    }

    /// True when this call is the first claim of `key` within `ttl` (this process's, or the
    /// fleet's with Redis): the caller delivers the alert. False when it was already claimed.
    pub fn claim(&self, key: &ClaimKey, ttl: Duration) -> bool {
        if let Some(shared) = &self.shared {
            let outcome = shared.run(|redis| {
                let name = redis.keys().key(
                    "alert",
                    &[&key.rule, &key.scope, &key.period],
                    key.field(),
                );
                crate::state::claim::claim(redis, &name, ttl)
            });
            if let Ok(won) = outcome {
                return won;
            }
            // Degraded: the shared state has reported it; claim locally so the alert still
            // goes out (once per process at worst).
        }
        self.claim_locally(key, ttl)
    }

    fn claim_locally(&self, key: &ClaimKey, ttl: Duration) -> bool {
        let now = Instant::now();
        let mut claims = self.local.lock();
        if claims.len() >= SWEEP_ABOVE {
            claims.retain(|_, expires| *expires > now);
        }
        match claims.get(key) {
            Some(expires) if *expires > now => false,
            _ => {
                claims.insert(key.clone(), now + ttl);
                true
            }
        }
    }
}
