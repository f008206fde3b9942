//! Breaker knowledge shared by the fleet (issue 11), with the Redis backend. Each process keeps
//! its own breaker and statistics (as Envoy's outlier detection does); this file adds a *fleet
//! hint* next to it, and never moves the local breaker itself:
//!
//! - When the local breaker opens, the process publishes `open_until` (Unix ms) for it on Redis
//!   ([`crate::state::breaker`]); a later `open_until` another process published is never
//!   shortened.
//! - Before a call, the process looks at what the fleet published, at most once per
//!   [`LOOKUP_INTERVAL`] per breaker (the answer is cached with the time of the lookup). Until
//!   `open_until` the call is refused like one of a locally open breaker, so `complete()` fails
//!   over to the next model. The refusal is the hint's, not the local breaker's: the local
//!   breaker stays closed, with its statistics untouched.
//! - Past `open_until`, while the entry still exists, the fleet's breaker is half-open: only the
//!   holder of the probe lease (`SET NX PX`, one per breaker for the fleet) sends; everyone else
//!   keeps failing over. A local half-open probe needs the lease too. The holder's success closes
//!   the fleet's breaker (the entry is deleted, others see it on their next lookup); its failure
//!   publishes a later `open_until` (the local one, or twice the last fleet open time).
//!
//! Every Redis call goes through [`SharedState::run`]: while it answers `Degraded`, the breaker
//! behaves exactly as the local one does alone (nothing published, no lease needed). The Unix
//! ms shared with the fleet are read from the engine clock's wall time.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{Admission, BreakerRejection, BreakerState, CircuitBreaker};
use crate::client::clock::Clock;
use crate::client::events::CircuitTransition;
use crate::state::breaker::FleetOpen;
use crate::state::{Degraded, SharedState};

#[cfg(test)]
#[path = "fleet_tests.rs"]
mod tests;

/// How often a process asks Redis what the fleet knows about one breaker, at most.
pub(crate) const LOOKUP_INTERVAL: Duration = Duration::from_secs(1);

/// The reason of a transition the fleet caused: another process published `open_until`.
const FLEET_OPEN: &str = "fleet_open";
/// The reason of a transition the fleet caused: its probe succeeded (here or elsewhere).
const FLEET_CLOSED: &str = "fleet_closed";

/// The Redis operations of the fleet hint; a trait so the hint is unit-tested without Redis.
pub(crate) trait FleetStore: Send + Sync {
    /// What the fleet published for `breaker`.
    fn lookup(&self, breaker: &str) -> Result<Option<FleetOpen>, Degraded>;
    /// Publishes `open` (never shortening a later one), freeing the lease of `lease_token`.
    fn publish(
        &self,
        breaker: &str,
        open: FleetOpen,
        ttl: Duration,
        lease_token: Option<&str>,
    ) -> Result<FleetOpen, Degraded>;
    /// Takes the probe lease: true when taken.
    fn take_lease(&self, breaker: &str, token: &str, lease: Duration) -> Result<bool, Degraded>;
    /// Frees the lease and, with `close`, deletes the published entry: true when none is left.
    fn end_lease(
        &self,
        breaker: &str,
        token: &str,
        now_ms: i64,
        close: bool,
    ) -> Result<bool, Degraded>;
}

impl FleetStore for SharedState {
    fn lookup(&self, breaker: &str) -> Result<Option<FleetOpen>, Degraded> {
        self.run(|redis| redis.breaker_lookup(breaker))
    }

    fn publish(
        &self,
        breaker: &str,
        open: FleetOpen,
        ttl: Duration,
        lease_token: Option<&str>,
    ) -> Result<FleetOpen, Degraded> {
        self.run(|redis| redis.breaker_publish(breaker, open, ttl, lease_token))
    }

    fn take_lease(&self, breaker: &str, token: &str, lease: Duration) -> Result<bool, Degraded> {
        self.run(|redis| redis.breaker_take_lease(breaker, token, lease))
    }

    fn end_lease(
        &self,
        breaker: &str,
        token: &str,
        now_ms: i64,
        close: bool,
    ) -> Result<bool, Degraded> {
        self.run(|redis| redis.breaker_end_lease(breaker, token, now_ms, close))
    }
}

/// A refusal to call: by the local breaker, or by the fleet hint.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Refusal {
    /// When the breaker opened and how long to stay away.
    pub rejection: BreakerRejection,
    /// A transition the refused admission caused (the local open to half-open, or the fleet
    /// hint turning open), to be reported all the same.
    pub transition: Option<CircuitTransition>,
    /// True when the fleet refused (another process's `open_until`, or its probe lease).
    pub fleet: bool,
}

/// The fleet hint of one breaker: the last lookup and the lease token of this process.
pub(crate) struct Fleet {
    store: Arc<dyn FleetStore>,
    clock: Arc<dyn Clock>,
    /// Names this process as a lease holder; unique per breaker and process.
    token: String,
    /// How long a probe lease lasts: the provider's timeout and a margin, so a holder that died
    /// mid-probe frees it by itself.
    lease: Duration,
    cache: Mutex<Cache>,
}

#[derive(Debug, Default)]
struct Cache {
    /// When Redis was last asked (or told), on the engine clock.
    looked_up_at: Option<Instant>,
    /// What the fleet published then.
    view: Option<FleetOpen>,
    /// When this process first saw the current entry.
    seen_open_at: Option<Instant>,
    /// The lease was refused since the last lookup: do not ask again before the next one.
    lease_busy: bool,
    /// The hint last reported the breaker open (a `fleet_open` transition not yet followed by
    /// a `fleet_closed` one).
    reported_open: bool,
}

/// What trying to take the probe lease led to.
enum Lease {
    Taken,
    Busy,
    /// Redis is unavailable: behave as the local breaker alone.
    Unshared,
}

impl Fleet {
    /// The hint of one breaker over `store`, with probe leases of `lease`.
    pub(crate) fn new(store: Arc<dyn FleetStore>, clock: Arc<dyn Clock>, lease: Duration) -> Fleet {
        Fleet {
            store,
            clock,
            token: new_token(),
            lease,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// A hint over the fleet's shared state.
    pub(crate) fn shared(shared: &SharedState, clock: &Arc<dyn Clock>, lease: Duration) -> Fleet {
        Fleet::new(Arc::new(shared.clone()), Arc::clone(clock), lease)
    }

    fn now_ms(&self) -> i64 {
        self.clock.utc_now().timestamp_millis()
    }

    /// What the fleet published, asking Redis when the last lookup is `LOOKUP_INTERVAL` old.
    /// One caller refreshes; the others use the previous answer meanwhile.
    fn view(&self, breaker: &str, now: Instant) -> Option<FleetOpen> {
        {
            let mut cache = self.cache.lock();
            let due = cache
                .looked_up_at
                .is_none_or(|at| now.saturating_duration_since(at) >= LOOKUP_INTERVAL);
            if !due {
                return cache.view;
            }
            cache.looked_up_at = Some(now);
        }
        // Degraded: nothing is shared, the local breaker decides alone.
        let view = self.store.lookup(breaker).unwrap_or(None);
        let mut cache = self.cache.lock();
        cache.set_view(view, now);
        cache.lease_busy = false;
        view
    }

    /// Lets `admission` (from the local breaker) through, or refuses it for the fleet.
    fn admit(
        &self,
        breaker: &CircuitBreaker,
        mut admission: Admission,
        now: Instant,
    ) -> Result<Admission, Refusal> {
        let view = self.view(breaker.name(), now);
        let now_ms = self.now_ms();
        // Only a locally closed breaker reports what the fleet says: an open one reports its
        // own transitions.
        let hint = if admission.probe {
            None
        } else {
            self.report(breaker.name(), view, now_ms)
        };
        let refuse = |admission: Admission, retry_in: Duration, seen: Option<Instant>| {
            breaker.release(&admission);
            Refusal {
                rejection: BreakerRejection {
                    opened_at: seen.unwrap_or(now),
                    retry_in,
                },
                transition: admission.transition.or(hint.clone()),
                fleet: true,
            }
        };
        let seen = self.cache.lock().seen_open_at;
        match view {
            Some(open) if open.until_ms > now_ms => {
                let retry_in = Duration::from_millis(open.until_ms.abs_diff(now_ms));
                Err(refuse(admission, retry_in, seen))
            }
            None if !admission.probe => {
                admission.transition = admission.transition.or(hint);
                Ok(admission)
            }
            // Half-open for the fleet, or a local probe: only the lease holder sends.
            _ => match self.take_lease(breaker.name()) {
                Lease::Taken => {
                    admission.lease = true;
                    admission.transition = admission.transition.or(hint);
                    Ok(admission)
                }
                Lease::Unshared => {
                    admission.transition = admission.transition.or(hint);
                    Ok(admission)
                }
                Lease::Busy => Err(refuse(admission, Duration::ZERO, seen)),
            },
        }
    }

    fn take_lease(&self, breaker: &str) -> Lease {
        if self.cache.lock().lease_busy {
            return Lease::Busy;
        }
        match self.store.take_lease(breaker, &self.token, self.lease) {
            Ok(true) => Lease::Taken,
            Ok(false) => {
                self.cache.lock().lease_busy = true;
                Lease::Busy
            }
            Err(Degraded) => Lease::Unshared,
        }
    }

    /// The `fleet_open` or `fleet_closed` transition when what the fleet says about a locally
    /// closed breaker changed since it was last reported.
    fn report(
        &self,
        breaker: &str,
        view: Option<FleetOpen>,
        now_ms: i64,
    ) -> Option<CircuitTransition> {
        let open = view.is_some();
        let mut cache = self.cache.lock();
        if cache.reported_open == open {
            return None;
        }
        cache.reported_open = open;
        drop(cache);
        Some(match view {
            Some(view) => CircuitTransition {
                breaker: breaker.to_string(),
                from: BreakerState::Closed,
                to: BreakerState::Open,
                reason: FLEET_OPEN.to_string(),
                open_for_ms: Some(u64::try_from(view.until_ms.saturating_sub(now_ms)).unwrap_or(0)),
            },
            None => closed_by_fleet(breaker),
        })
    }

    /// The lease holder's call succeeded: free the lease, and close the fleet's breaker when
    /// the local one is closed (a probe that closed it, or a call of a closed one).
    pub(super) fn probe_succeeded(
        &self,
        breaker: &CircuitBreaker,
        now: Instant,
        transition: Option<CircuitTransition>,
    ) -> Option<CircuitTransition> {
        let close = breaker.state() == BreakerState::Closed;
        let cleared = self
            .store
            .end_lease(breaker.name(), &self.token, self.now_ms(), close);
        let mut cache = self.cache.lock();
        cache.lease_busy = false;
        if !(close && cleared == Ok(true)) {
            return transition;
        }
        cache.set_view(None, now);
        cache.looked_up_at = Some(now);
        let was_reported = std::mem::take(&mut cache.reported_open);
        drop(cache);
        match transition {
            Some(transition) => Some(transition),
            None if was_reported => Some(closed_by_fleet(breaker.name())),
            None => None,
        }
    }

    /// A call failed: publish `open_until` when the local breaker opened (for its open time),
    /// or when the lease holder's call failed (for twice the fleet's last open time).
    pub(super) fn failed(
        &self,
        breaker: &CircuitBreaker,
        now: Instant,
        lease: bool,
        opened_for_ms: Option<u64>,
    ) {
        let open_for_ms = match (opened_for_ms, lease) {
            (Some(open_for_ms), _) => open_for_ms,
            (None, true) => {
                let settings = &breaker.settings;
                let last = self.cache.lock().view.map_or(0, |view| view.open_for_ms);
                last.saturating_mul(2)
                    .max(settings.open_ms)
                    .min(settings.max_open_ms)
            }
            (None, false) => return,
        };
        let open_for = Duration::from_millis(open_for_ms);
        let open = FleetOpen {
            until_ms: self
                .now_ms()
                .saturating_add(i64::try_from(open_for_ms).unwrap_or(i64::MAX)),
            open_for_ms,
        };
        // Kept a hold past `until` (the fleet's half-open time), then forgotten by itself.
        let ttl = open_for.saturating_add(open_for.max(self.lease));
        let token = lease.then_some(self.token.as_str());
        let published = self.store.publish(breaker.name(), open, ttl, token);
        let mut cache = self.cache.lock();
        cache.lease_busy = false;
        if let Ok(stored) = published {
            cache.set_view(Some(stored), now);
            cache.looked_up_at = Some(now);
        }
    }

    /// Frees the lease of a call that was not made (or told nothing about the provider).
    pub(crate) fn end_lease(&self, breaker: &str) {
        // Degraded: the lease expires by itself.
        let _ = self
            .store
            .end_lease(breaker, &self.token, self.now_ms(), false);
        self.cache.lock().lease_busy = false;
    }

    /// True while the last lookup found the breaker open or half-open for the fleet.
    fn says_open(&self) -> bool {
        self.cache.lock().view.is_some()
    }

    fn seen_open_at(&self) -> Option<Instant> {
        self.cache.lock().seen_open_at
    }
}

impl Cache {
    fn set_view(&mut self, view: Option<FleetOpen>, now: Instant) {
        if view.is_none() {
            self.seen_open_at = None;
        } else if self.view.is_none() {
            self.seen_open_at = Some(now);
        }
        self.view = view;
    }
}

fn closed_by_fleet(breaker: &str) -> CircuitTransition {
    CircuitTransition {
        breaker: breaker.to_string(),
        from: BreakerState::Open,
        to: BreakerState::Closed,
        reason: FLEET_CLOSED.to_string(),
        open_for_ms: None,
    }
}

/// A token naming this process (and breaker) as a lease holder: the process id, the wall
/// clock in ns and a counter, so two processes on two hosts do not share one.
fn new_token() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    format!(
        "{:x}-{nanos:x}-{:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl fmt::Debug for Fleet {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Fleet")
            .field("token", &self.token)
            .field("lease", &self.lease)
            .field("cache", &*self.cache.lock())
            .finish_non_exhaustive()
    }
}

impl CircuitBreaker {
    /// Admits a call as [`CircuitBreaker::try_acquire`] does, then asks the fleet hint (with the
    /// Redis backend): a breaker another process opened refuses like a locally open one, and at
    /// the fleet's half-open only the probe lease holder is let through.
    pub(crate) fn admit(&self, now: Instant) -> Result<Admission, Refusal> {
        let admission = self.try_acquire(now).map_err(|rejection| Refusal {
            rejection,
            transition: None,
            fleet: false,
        })?;
        match &self.fleet {
            Some(fleet) => fleet.admit(self, admission, now),
            None => Ok(admission),
        }
    }

    /// The state a caller sees: the local one, or open while the fleet hint says so of a
    /// locally closed breaker (from the last lookup; no Redis call).
    pub fn observed_state(&self) -> BreakerState {
        let state = self.state();
        match &self.fleet {
            Some(fleet) if state == BreakerState::Closed && fleet.says_open() => BreakerState::Open,
            _ => state,
        }
    }

    /// When the breaker last opened, locally or (first seen) for the fleet.
    pub fn observed_opened_at(&self) -> Option<Instant> {
        self.opened_at()
            .or_else(|| self.fleet.as_ref().and_then(Fleet::seen_open_at))
    }
}
