//! The circuit breaker of a provider (or of one model): it stops sending traffic to a provider
//! that keeps failing, waits an open time that doubles with each trip, then lets a few probes
//! through and closes when they succeed. Every admission carries the breaker's episode, so the
//! late outcome of a call admitted before a state change cannot corrupt the new state.

mod fleet;
mod window;

#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;

use super::events::CircuitTransition;
use crate::config::BreakerSettings;
use window::{Bucket, WINDOW_BUCKETS};

pub(crate) use fleet::Fleet;

/// The state of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BreakerState {
    /// Traffic flows.
    Closed,
    /// No traffic except probes after the open time.
    Open,
    /// A limited number of probes are let through.
    HalfOpen,
}

impl BreakerState {
    /// The state's name in telemetry lines, metrics labels and JSON (`closed`, `open`,
    /// `half_open`): the one place it is spelled, matching the serde name.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// How a failed call counts against the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerFailure {
    /// A transient failure (5xx, timeout, connection): counts toward the thresholds.
    Ordinary,
    /// The provider rejects our credentials (401, 403): opens at once.
    Misconfigured,
    /// The provider rate-limits us (429): opens at once, for exactly `retry_after` when given
    /// (so a retry after that wait is the half-open probe), else for the normal open time.
    RateLimited {
        /// How long the provider asked us to wait.
        retry_after: Option<Duration>,
    },
}

/// Permission to make one call, to be passed back with its outcome.
#[must_use = "an admission must be recorded or released, or a half-open probe slot stays taken"]
#[derive(Debug, Clone, PartialEq)]
pub struct Admission {
    /// True when the call probes a half-open (or, when forced, open) breaker.
    pub probe: bool,
    /// The transition admitting this call caused (open to half-open), to be reported.
    pub transition: Option<CircuitTransition>,
    /// The episode the call was admitted in; outcomes from another episode are stale.
    episode: u64,
    /// The call holds the fleet's probe lease of this breaker (see `fleet.rs`).
    lease: bool,
}

/// A refusal by an open or saturated half-open breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerRejection {
    /// When the breaker last opened.
    pub opened_at: Instant,
    /// How long until it admits a probe (zero when half-open and waiting for probe outcomes).
    pub retry_in: Duration,
}

/// A thread-safe circuit breaker; time is passed in, never read (except the Unix ms the fleet
/// hint shares, read from the engine clock: see `fleet.rs`).
#[derive(Debug)]
pub struct CircuitBreaker {
    name: String,
    settings: BreakerSettings,
    /// The window split in `WINDOW_BUCKETS` equal buckets, so it slides one bucket at a time.
    bucket_width: Duration,
    inner: Mutex<Inner>,
    /// What the fleet shares about this breaker, with the Redis backend; `None` keeps it
    /// purely local (the memory backend).
    fleet: Option<Fleet>,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    /// Bumped on every trip and every close.
    episode: u64,
    /// Trips since the last close; drives the doubling of the open time.
    trips: u32,
    opened_at: Option<Instant>,
    open_for: Duration,
    /// Probes admitted in this episode and not released, whether finished or not.
    probes_admitted: u32,
    probe_successes: u32,
    last_probe_at: Option<Instant>,
    consecutive_failures: u32,
    window_origin: Option<Instant>,
    buckets: [Bucket; WINDOW_BUCKETS],
}

/// A transition decided under the lock; the event (which allocates) is built after unlocking.
#[derive(Debug, Clone, Copy)]
struct Change {
    from: BreakerState,
    to: BreakerState,
    reason: &'static str,
    open_for: Option<Duration>,
}

impl CircuitBreaker {
    /// A closed breaker named after its provider (or `provider/model`).
    pub fn new(name: impl Into<String>, settings: BreakerSettings) -> CircuitBreaker {
        let window = Duration::from_millis(settings.window_ms.max(1));
        CircuitBreaker {
            name: name.into(),
            bucket_width: window / WINDOW_BUCKETS as u32,
            settings,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                episode: 0,
                trips: 0,
                opened_at: None,
                open_for: Duration::ZERO,
                probes_admitted: 0,
                probe_successes: 0,
                last_probe_at: None,
                consecutive_failures: 0,
                window_origin: None,
                buckets: [Bucket::default(); WINDOW_BUCKETS],
            }),
            fleet: None,
        }
    }

    /// The same breaker, sharing its openings and half-open probes with the fleet.
    pub(crate) fn with_fleet(mut self, fleet: Fleet) -> CircuitBreaker {
        self.fleet = Some(fleet);
        self
    }

    /// The breaker's name, as reported in transitions.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Admits a call when closed, or a probe when half-open with a free slot (moving from open
    /// to half-open once the open time has elapsed); else says how long to stay away.
    pub fn try_acquire(&self, now: Instant) -> Result<Admission, BreakerRejection> {
        let mut inner = self.inner.lock();
        match inner.state {
            BreakerState::Closed => Ok(Admission::plain(inner.episode)),
            BreakerState::Open => {
                let opened_at = inner.opened_at.unwrap_or(now);
                let reopens_at = opened_at.checked_add(inner.open_for);
                let remaining =
                    reopens_at.map_or(Duration::MAX, |at| at.saturating_duration_since(now));
                if remaining > Duration::ZERO || !inner.probe_slot_free(self.required_probes(), now)
                {
                    return Err(BreakerRejection {
                        opened_at,
                        retry_in: remaining,
                    });
                }
                let change = inner.half_open();
                let episode = inner.admit_probe(now);
                drop(inner);
                Ok(Admission::probe(episode, Some(self.event(change))))
            }
            BreakerState::HalfOpen => {
                if !inner.probe_slot_free(self.required_probes(), now) {
                    return Err(BreakerRejection {
                        opened_at: inner.opened_at.unwrap_or(now),
                        retry_in: Duration::ZERO,
                    });
                }
                Ok(Admission::probe(inner.admit_probe(now), None))
            }
        }
    }

    /// Admits one call whatever the state: the last resort when every breaker of a chain is
    /// open. It is a probe unless the breaker is closed, and moves an open breaker whose open
    /// time has elapsed to half-open like `try_acquire`.
    pub fn force_probe(&self, now: Instant) -> Admission {
        let mut inner = self.inner.lock();
        match inner.state {
            BreakerState::Closed => Admission::plain(inner.episode),
            BreakerState::HalfOpen => Admission::probe(inner.admit_probe(now), None),
            BreakerState::Open => {
                let elapsed = inner
                    .opened_at
                    .and_then(|at| at.checked_add(inner.open_for))
                    .is_some_and(|reopens_at| now >= reopens_at);
                let change = elapsed.then(|| inner.half_open());
                let episode = inner.admit_probe(now);
                drop(inner);
                Admission::probe(episode, change.map(|change| self.event(change)))
            }
        }
    }

    /// Gives back an admission whose call was never made (or told nothing about the provider),
    /// freeing its half-open probe slot.
    pub fn release(&self, admission: &Admission) {
        if let (true, Some(fleet)) = (admission.lease, &self.fleet) {
            fleet.end_lease(&self.name);
        }
        if !admission.probe {
            return;
        }
        let mut inner = self.inner.lock();
        if admission.episode == inner.episode {
            inner.probes_admitted = inner.probes_admitted.saturating_sub(1);
        }
    }

    /// Records a successful call; closes the breaker when enough probes have succeeded. A call
    /// holding the fleet's probe lease frees it, and closes the fleet's breaker when this one
    /// is closed.
    pub fn record_success(&self, now: Instant, admission: &Admission) -> Option<CircuitTransition> {
        let transition = self.local_success(now, admission);
        match &self.fleet {
            Some(fleet) if admission.lease => fleet.probe_succeeded(self, now, transition),
            _ => transition,
        }
    }

    fn local_success(&self, now: Instant, admission: &Admission) -> Option<CircuitTransition> {
        let mut inner = self.inner.lock();
        if admission.episode != inner.episode {
            return None;
        }
        if !admission.probe {
            // The episode matches, so the breaker is still closed.
            inner.consecutive_failures = 0;
            inner.record_in_window(now, self.bucket_width, false);
            return None;
        }
        inner.probe_successes = inner.probe_successes.saturating_add(1);
        if inner.probe_successes < self.required_probes() {
            return None;
        }
        let change = inner.close();
        drop(inner);
        Some(self.event(change))
    }

    /// Records a failed call; opens (or reopens) the breaker when the failure warrants it. With
    /// the fleet, an opening (or a failed probe holding the lease) publishes `open_until`.
    pub fn record_failure(
        &self,
        now: Instant,
        admission: &Admission,
        failure: BreakerFailure,
    ) -> Option<CircuitTransition> {
        let transition = self.local_failure(now, admission, failure);
        if let Some(fleet) = &self.fleet {
            let opened_for_ms = transition
                .as_ref()
                .filter(|transition| transition.to == BreakerState::Open)
                .and_then(|transition| transition.open_for_ms);
            fleet.failed(self, now, admission.lease, opened_for_ms);
        }
        transition
    }

    fn local_failure(
        &self,
        now: Instant,
        admission: &Admission,
        failure: BreakerFailure,
    ) -> Option<CircuitTransition> {
        let mut inner = self.inner.lock();
        if admission.episode != inner.episode {
            return None;
        }
        let reason = if admission.probe {
            "probe_failed"
        } else {
            // The episode matches, so the breaker is still closed.
            inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
            inner.record_in_window(now, self.bucket_width, true);
            match failure {
                BreakerFailure::Misconfigured => "misconfigured",
                BreakerFailure::RateLimited { .. } => "rate_limited",
                BreakerFailure::Ordinary => {
                    if inner.consecutive_failures >= self.settings.consecutive_failures.max(1) {
                        "consecutive_failures"
                    } else {
                        let (calls, failures) = inner.window_totals(now, self.bucket_width);
                        if !self.failure_rate_reached(calls, failures) {
                            return None;
                        }
                        "failure_rate"
                    }
                }
            }
        };
        let (minimum, exactly) = match failure {
            // The provider said when it will take traffic again: that is the open time, and it
            // is not a sign of ill health, so it does not lengthen later trips.
            BreakerFailure::RateLimited {
                retry_after: Some(wait),
            } => (wait, Some(wait)),
            BreakerFailure::RateLimited { retry_after } => {
                (retry_after.unwrap_or(Duration::ZERO), None)
            }
            BreakerFailure::Ordinary | BreakerFailure::Misconfigured => (Duration::ZERO, None),
        };
        let change = match exactly {
            Some(wait) => inner.open_for_exactly(now, reason, wait),
            None => inner.trip(now, reason, &self.settings, minimum),
        };
        drop(inner);
        Some(self.event(change))
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.inner.lock().state
    }

    /// When the breaker last opened, while it is open or half-open.
    pub fn opened_at(&self) -> Option<Instant> {
        self.inner.lock().opened_at
    }

    fn required_probes(&self) -> u32 {
        self.settings.half_open_probes.max(1)
    }

    fn failure_rate_reached(&self, calls: u32, failures: u32) -> bool {
        calls >= self.settings.minimum_calls.max(1)
            && f64::from(failures) >= self.settings.failure_rate_threshold * f64::from(calls)
    }

    fn event(&self, change: Change) -> CircuitTransition {
        CircuitTransition {
            breaker: self.name.clone(),
            from: change.from,
            to: change.to,
            reason: change.reason.to_string(),
            open_for_ms: change
                .open_for
                .map(|open_for| u64::try_from(open_for.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

impl Admission {
    fn plain(episode: u64) -> Admission {
        Admission {
            probe: false,
            transition: None,
            episode,
            lease: false,
        }
    }

    fn probe(episode: u64, transition: Option<CircuitTransition>) -> Admission {
        Admission {
            probe: true,
            transition,
            episode,
            lease: false,
        }
    }
}

impl Inner {
    /// A probe slot is free, or the probes holding them are presumed lost: a probe outliving
    /// the open time never reported back, and must not keep the breaker half-open forever.
    fn probe_slot_free(&self, required: u32, now: Instant) -> bool {
        self.probes_admitted < required
            || self
                .last_probe_at
                .is_none_or(|at| now.saturating_duration_since(at) >= self.open_for)
    }

    fn admit_probe(&mut self, now: Instant) -> u64 {
        self.probes_admitted = self.probes_admitted.saturating_add(1);
        self.last_probe_at = Some(now);
        self.episode
    }

    /// Open to half-open. Probes (forced ones) of the same episode keep counting.
    fn half_open(&mut self) -> Change {
        self.state = BreakerState::HalfOpen;
        Change {
            from: BreakerState::Open,
            to: BreakerState::HalfOpen,
            reason: "open_timeout_elapsed",
            open_for: None,
        }
    }

    fn trip(
        &mut self,
        now: Instant,
        reason: &'static str,
        settings: &BreakerSettings,
        minimum: Duration,
    ) -> Change {
        let from = self.state;
        self.trips = self.trips.saturating_add(1);
        self.open_for = open_time(settings, self.trips).max(minimum);
        self.state = BreakerState::Open;
        self.opened_at = Some(now);
        self.start_episode();
        Change {
            from,
            to: BreakerState::Open,
            reason,
            open_for: Some(self.open_for),
        }
    }

    /// Opens for `wait` without counting a trip.
    fn open_for_exactly(&mut self, now: Instant, reason: &'static str, wait: Duration) -> Change {
        let from = self.state;
        self.open_for = wait;
        self.state = BreakerState::Open;
        self.opened_at = Some(now);
        self.start_episode();
        Change {
            from,
            to: BreakerState::Open,
            reason,
            open_for: Some(wait),
        }
    }

    fn close(&mut self) -> Change {
        let from = self.state;
        self.state = BreakerState::Closed;
        self.trips = 0;
        self.opened_at = None;
        self.open_for = Duration::ZERO;
        // The window's failures led to the trip the probes have just disproved.
        self.clear_window();
        self.start_episode();
        Change {
            from,
            to: BreakerState::Closed,
            reason: "probe_succeeded",
            open_for: None,
        }
    }

    fn start_episode(&mut self) {
        self.episode = self.episode.wrapping_add(1);
        self.probes_admitted = 0;
        self.probe_successes = 0;
        self.last_probe_at = None;
        self.consecutive_failures = 0;
    }
}

/// `open_ms * 2^(trips - 1)`, capped at `max_open_ms`, saturating for long outages.
fn open_time(settings: &BreakerSettings, trips: u32) -> Duration {
    let factor = 1u64
        .checked_shl(trips.saturating_sub(1))
        .unwrap_or(u64::MAX);
    Duration::from_millis(
        settings
            .open_ms
            .saturating_mul(factor)
            .min(settings.max_open_ms),
    )
}
