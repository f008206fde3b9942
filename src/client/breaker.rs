//! The circuit breaker of a provider (or of one model): it stops sending traffic to a provider
//! that keeps failing, waits an open time that doubles with each trip, then lets a few probes
//! through and closes when they succeed. Every admission carries the breaker's episode, so the
//! late outcome of a call admitted before a state change cannot corrupt the new state.

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;

use super::events::CircuitTransition;
use crate::config::BreakerSettings;

/// The state of a circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Traffic flows.
    Closed,
    /// No traffic except probes after the open time.
    Open,
    /// A limited number of probes are let through.
    HalfOpen,
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
}

/// A refusal by an open or saturated half-open breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerRejection {
    /// When the breaker last opened.
    pub opened_at: Instant,
    /// How long until it admits a probe (zero when half-open and waiting for probe outcomes).
    pub retry_in: Duration,
}

/// A thread-safe circuit breaker; time is passed in, never read.
#[derive(Debug)]
pub struct CircuitBreaker {
    name: String,
    settings: BreakerSettings,
    /// The window split in `WINDOW_BUCKETS` equal buckets, so it slides one bucket at a time.
    bucket_width: Duration,
    inner: Mutex<Inner>,
}

/// Buckets of the failure-rate window; bounded memory whatever the traffic.
const WINDOW_BUCKETS: usize = 60;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// The bucket's position since the window's origin; a stale ordinal means empty.
    ordinal: u64,
    calls: u32,
    failures: u32,
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
        }
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
        if !admission.probe {
            return;
        }
        let mut inner = self.inner.lock();
        if admission.episode == inner.episode {
            inner.probes_admitted = inner.probes_admitted.saturating_sub(1);
        }
    }

    /// Records a successful call; closes the breaker when enough probes have succeeded.
    pub fn record_success(&self, now: Instant, admission: &Admission) -> Option<CircuitTransition> {
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

    /// Records a failed call; opens (or reopens) the breaker when the failure warrants it.
    pub fn record_failure(
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
            } if !admission.probe => (wait, Some(wait)),
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
        }
    }

    fn probe(episode: u64, transition: Option<CircuitTransition>) -> Admission {
        Admission {
            probe: true,
            transition,
            episode,
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
        self.window_origin = None;
        self.buckets = [Bucket::default(); WINDOW_BUCKETS];
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

    /// The bucket ordinal of `now`, counted from the first outcome of the window.
    fn ordinal(&mut self, now: Instant, width: Duration) -> u64 {
        let origin = *self.window_origin.get_or_insert(now);
        let width_nanos = width.as_nanos().max(1);
        let ordinal = now.saturating_duration_since(origin).as_nanos() / width_nanos;
        // Offset by one so the zeroed default bucket never looks current.
        u64::try_from(ordinal).unwrap_or(u64::MAX).saturating_add(1)
    }

    fn record_in_window(&mut self, now: Instant, width: Duration, failed: bool) {
        let ordinal = self.ordinal(now, width);
        let bucket = &mut self.buckets[(ordinal % WINDOW_BUCKETS as u64) as usize];
        if bucket.ordinal > ordinal {
            // A timestamp a whole window late must not wipe the newer bucket sharing its slot.
            return;
        }
        if bucket.ordinal < ordinal {
            *bucket = Bucket {
                ordinal,
                ..Bucket::default()
            };
        }
        bucket.calls = bucket.calls.saturating_add(1);
        bucket.failures = bucket.failures.saturating_add(u32::from(failed));
    }

    /// The calls and failures of the window ending at `now`.
    fn window_totals(&mut self, now: Instant, width: Duration) -> (u32, u32) {
        let newest = self.ordinal(now, width);
        let oldest = newest.saturating_sub(WINDOW_BUCKETS as u64 - 1);
        self.buckets
            .iter()
            .filter(|bucket| (oldest..=newest).contains(&bucket.ordinal))
            .fold((0u32, 0u32), |(calls, failures), bucket| {
                (
                    calls.saturating_add(bucket.calls),
                    failures.saturating_add(bucket.failures),
                )
            })
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

#[cfg(test)]
mod tests {
    use super::BreakerState::{Closed, HalfOpen, Open};
    use super::*;
    use crate::client::clock::{Clock, ManualClock};
    use std::sync::Arc;

    const ORDINARY: BreakerFailure = BreakerFailure::Ordinary;

    /// A breaker named `openai` (window 10 s, 4 calls minimum, 3 in a row, open 1 s to 5 s).
    struct Fixture {
        breaker: CircuitBreaker,
        clock: ManualClock,
    }

    impl Fixture {
        fn new() -> Fixture {
            Fixture::with(|_| {})
        }

        fn with(adjust: impl FnOnce(&mut BreakerSettings)) -> Fixture {
            let mut settings = BreakerSettings {
                window_ms: 10_000,
                minimum_calls: 4,
                consecutive_failures: 3,
                open_ms: 1_000,
                max_open_ms: 5_000,
                ..BreakerSettings::default()
            };
            adjust(&mut settings);
            let clock = ManualClock::new(chrono::DateTime::UNIX_EPOCH);
            Fixture {
                breaker: CircuitBreaker::new("openai", settings),
                clock,
            }
        }

        fn now(&self) -> Instant {
            self.clock.now()
        }

        fn advance(&self, milliseconds: u64) {
            self.clock.advance(Duration::from_millis(milliseconds));
        }

        fn admit(&self) -> Admission {
            self.breaker.try_acquire(self.now()).expect("admitted")
        }

        fn rejection(&self) -> BreakerRejection {
            self.breaker.try_acquire(self.now()).expect_err("rejected")
        }

        fn fail_with(&self, admission: &Admission, failure: BreakerFailure) -> Transition {
            self.breaker.record_failure(self.now(), admission, failure)
        }

        fn succeed_with(&self, admission: &Admission) -> Transition {
            self.breaker.record_success(self.now(), admission)
        }

        fn fail(&self) -> Transition {
            self.fail_with(&self.admit(), ORDINARY)
        }

        fn succeed(&self) -> Transition {
            self.succeed_with(&self.admit())
        }

        /// Trips the breaker with failures in a row.
        fn trip(&self) {
            assert!((0..100).find_map(|_| self.fail()).is_some());
        }

        /// Waits out `open_ms` and takes the half-open probe.
        fn probe_after(&self, open_ms: u64) -> Admission {
            self.advance(open_ms);
            self.admit()
        }
    }

    type Transition = Option<CircuitTransition>;

    fn change(
        from: BreakerState,
        to: BreakerState,
        reason: &str,
        open_ms: Option<u64>,
    ) -> Transition {
        let (breaker, reason) = ("openai".to_string(), reason.to_string());
        Some(CircuitTransition {
            breaker,
            from,
            to,
            reason,
            open_for_ms: open_ms,
        })
    }

    fn open_for_ms(transition: Transition) -> Option<u64> {
        transition.and_then(|transition| transition.open_for_ms)
    }

    #[test]
    fn starts_closed_and_admits_plain_calls() {
        let fixture = Fixture::new();
        assert_eq!(fixture.admit(), Admission::plain(0));
        assert_eq!(fixture.breaker.name(), "openai");
        assert_eq!(
            (fixture.breaker.state(), fixture.breaker.opened_at()),
            (Closed, None)
        );
    }

    #[test]
    fn opens_after_consecutive_failures() {
        let fixture = Fixture::new();
        assert_eq!((fixture.fail(), fixture.fail()), (None, None));
        let expected = change(Closed, Open, "consecutive_failures", Some(1_000));
        assert_eq!(fixture.fail(), expected);
        assert_eq!(fixture.breaker.state(), Open);
        assert_eq!(fixture.breaker.opened_at(), Some(fixture.now()));
    }

    #[test]
    fn success_resets_the_consecutive_count() {
        let fixture = Fixture::with(|settings| settings.minimum_calls = 100);
        for _ in 0..10 {
            assert_eq!(
                (fixture.fail(), fixture.fail(), fixture.succeed()),
                (None, None, None)
            );
        }
    }

    #[test]
    fn opens_when_failure_rate_reaches_threshold() {
        let fixture = Fixture::new();
        assert_eq!(
            (fixture.succeed(), fixture.fail(), fixture.succeed()),
            (None, None, None)
        );
        assert_eq!(
            fixture.fail(),
            change(Closed, Open, "failure_rate", Some(1_000))
        );
    }

    #[test]
    fn failure_rate_waits_for_minimum_calls() {
        let fixture = Fixture::with(|settings| settings.minimum_calls = 6);
        for _ in 0..3 {
            assert_eq!((fixture.fail(), fixture.succeed()), (None, None));
        }
        assert_eq!(
            fixture.fail(),
            change(Closed, Open, "failure_rate", Some(1_000))
        );
    }

    #[test]
    fn sliding_window_forgets_old_failures() {
        let fixture = Fixture::new();
        assert_eq!(
            (fixture.fail(), fixture.fail(), fixture.succeed()),
            (None, None, None)
        );
        fixture.advance(10_000);
        // Counting the old calls, this would be 3 failures of 5; the window holds 1 of 2.
        assert_eq!((fixture.succeed(), fixture.fail()), (None, None));
    }

    #[test]
    fn sliding_window_keeps_recent_failures() {
        let fixture = Fixture::new();
        assert_eq!(
            (fixture.fail(), fixture.fail(), fixture.succeed()),
            (None, None, None)
        );
        fixture.advance(9_800);
        assert_eq!(
            fixture.fail().map(|transition| transition.reason),
            Some("failure_rate".into())
        );
    }

    #[test]
    fn opens_at_once_when_misconfigured() {
        let fixture = Fixture::new();
        let transition = fixture.fail_with(&fixture.admit(), BreakerFailure::Misconfigured);
        assert_eq!(
            transition,
            change(Closed, Open, "misconfigured", Some(1_000))
        );
    }

    #[test]
    fn rate_limit_opens_for_at_least_retry_after() {
        let fixture = Fixture::new();
        let retry_after = Some(Duration::from_millis(2_500));
        let transition = fixture.fail_with(
            &fixture.admit(),
            BreakerFailure::RateLimited { retry_after },
        );
        assert_eq!(
            transition,
            change(Closed, Open, "rate_limited", Some(2_500))
        );
        fixture.advance(2_000);
        assert_eq!(fixture.rejection().retry_in, Duration::from_millis(500));
    }

    #[test]
    fn short_retry_after_is_the_open_time_and_does_not_count_as_a_trip() {
        let fixture = Fixture::new();
        let retry_after = Some(Duration::from_millis(10));
        let transition = fixture.fail_with(
            &fixture.admit(),
            BreakerFailure::RateLimited { retry_after },
        );
        assert_eq!(open_for_ms(transition), Some(10));
        let probe = fixture.probe_after(10);
        assert!(probe.probe);
        let reopened = fixture.fail_with(&probe, BreakerFailure::Ordinary);
        assert_eq!(
            open_for_ms(reopened),
            Some(1_000),
            "the first real trip keeps the base open time"
        );
    }

    #[test]
    fn rate_limit_without_retry_after_trips_normally() {
        let fixture = Fixture::new();
        let transition = fixture.fail_with(
            &fixture.admit(),
            BreakerFailure::RateLimited { retry_after: None },
        );
        assert_eq!(open_for_ms(transition), Some(1_000));
    }

    #[test]
    fn open_breaker_rejects_with_the_remaining_time() {
        let fixture = Fixture::new();
        fixture.trip();
        let opened_at = fixture.now();
        fixture.advance(400);
        let retry_in = Duration::from_millis(600);
        assert_eq!(
            fixture.rejection(),
            BreakerRejection {
                opened_at,
                retry_in
            }
        );
    }

    #[test]
    fn half_opens_after_the_open_time() {
        let fixture = Fixture::new();
        fixture.trip();
        let probe = fixture.probe_after(1_000);
        assert!(probe.probe);
        assert_eq!(
            probe.transition,
            change(Open, HalfOpen, "open_timeout_elapsed", None)
        );
        assert_eq!(fixture.breaker.state(), HalfOpen);
    }

    #[test]
    fn half_open_rejects_calls_beyond_the_probe_slots() {
        let fixture = Fixture::new();
        fixture.trip();
        let _probe = fixture.probe_after(1_000);
        assert_eq!(fixture.rejection().retry_in, Duration::ZERO);
    }

    #[test]
    fn closes_when_all_probes_succeed() {
        let fixture = Fixture::with(|settings| settings.half_open_probes = 2);
        fixture.trip();
        let (first, second) = (fixture.probe_after(1_000), fixture.admit());
        assert!(second.probe && second.transition.is_none());
        assert_eq!(fixture.succeed_with(&first), None);
        let expected = change(HalfOpen, Closed, "probe_succeeded", None);
        assert_eq!(fixture.succeed_with(&second), expected);
        assert_eq!(
            (fixture.breaker.state(), fixture.breaker.opened_at()),
            (Closed, None)
        );
    }

    #[test]
    fn probe_failure_reopens_with_double_the_open_time() {
        let fixture = Fixture::new();
        fixture.trip();
        let probe = fixture.probe_after(1_000);
        let expected = change(HalfOpen, Open, "probe_failed", Some(2_000));
        assert_eq!(fixture.fail_with(&probe, ORDINARY), expected);
        assert_eq!(fixture.breaker.opened_at(), Some(fixture.now()));
    }

    #[test]
    fn open_time_doubles_up_to_the_cap() {
        let fixture = Fixture::new();
        fixture.trip();
        let mut open_times = vec![1_000];
        for _ in 0..5 {
            let probe = fixture.probe_after(open_times[open_times.len() - 1]);
            open_times.extend(open_for_ms(fixture.fail_with(&probe, ORDINARY)));
        }
        assert_eq!(open_times, vec![1_000, 2_000, 4_000, 5_000, 5_000, 5_000]);
    }

    #[test]
    fn open_time_saturates_for_many_trips() {
        let settings = BreakerSettings {
            open_ms: u64::MAX / 4,
            max_open_ms: u64::MAX,
            ..BreakerSettings::default()
        };
        assert_eq!(
            open_time(&settings, u32::MAX),
            Duration::from_millis(u64::MAX)
        );
    }

    #[test]
    fn closing_resets_the_doubling() {
        let fixture = Fixture::new();
        fixture.trip();
        let probe = fixture.probe_after(1_000);
        assert!(fixture.fail_with(&probe, ORDINARY).is_some());
        assert!(fixture.succeed_with(&fixture.probe_after(2_000)).is_some());
        assert_eq!(
            open_for_ms((0..3).find_map(|_| fixture.fail())),
            Some(1_000)
        );
    }

    #[test]
    fn closing_clears_the_window() {
        let fixture = Fixture::with(|settings| settings.consecutive_failures = 100);
        assert!((0..4).find_map(|_| fixture.fail()).is_some());
        assert!(fixture.succeed_with(&fixture.probe_after(1_000)).is_some());
        // Counting the old failures, this would be 5 of 8.
        assert!((0..3).all(|_| fixture.succeed().is_none()));
        assert_eq!(fixture.fail(), None);
    }

    #[test]
    fn release_gives_back_a_probe_slot() {
        let fixture = Fixture::new();
        fixture.trip();
        fixture.breaker.release(&fixture.probe_after(1_000));
        let again = fixture.admit();
        assert!(again.probe && again.transition.is_none());
    }

    #[test]
    fn releasing_a_plain_admission_changes_nothing() {
        let fixture = Fixture::new();
        fixture.breaker.release(&fixture.admit());
        assert_eq!((fixture.fail(), fixture.fail()), (None, None));
        assert!(fixture.fail().is_some());
    }

    #[test]
    fn force_probe_admits_while_open() {
        let fixture = Fixture::new();
        fixture.trip();
        let forced = fixture.breaker.force_probe(fixture.now());
        assert!(forced.probe && forced.transition.is_none());
        assert_eq!(fixture.breaker.state(), Open);
    }

    #[test]
    fn forced_probe_success_closes_the_breaker() {
        let fixture = Fixture::new();
        fixture.trip();
        let forced = fixture.breaker.force_probe(fixture.now());
        let expected = change(Open, Closed, "probe_succeeded", None);
        assert_eq!(fixture.succeed_with(&forced), expected);
    }

    #[test]
    fn forced_probe_failure_reopens_from_now() {
        let fixture = Fixture::new();
        fixture.trip();
        fixture.advance(300);
        let forced = fixture.breaker.force_probe(fixture.now());
        let expected = change(Open, Open, "probe_failed", Some(2_000));
        assert_eq!(fixture.fail_with(&forced, ORDINARY), expected);
        assert_eq!(fixture.breaker.opened_at(), Some(fixture.now()));
    }

    #[test]
    fn force_probe_after_the_open_time_half_opens() {
        let fixture = Fixture::new();
        fixture.trip();
        fixture.advance(1_000);
        let forced = fixture.breaker.force_probe(fixture.now());
        assert_eq!(
            forced.transition,
            change(Open, HalfOpen, "open_timeout_elapsed", None)
        );
    }

    #[test]
    fn force_probe_on_a_closed_breaker_is_a_plain_call() {
        let fixture = Fixture::new();
        assert!(!fixture.breaker.force_probe(fixture.now()).probe);
    }

    #[test]
    fn late_outcome_of_a_call_admitted_before_the_trip_is_ignored() {
        let fixture = Fixture::new();
        let slow = fixture.admit();
        fixture.trip();
        assert_eq!(
            fixture.fail_with(&slow, BreakerFailure::Misconfigured),
            None
        );
        let probe = fixture.probe_after(1_000);
        assert_eq!(fixture.succeed_with(&slow), None);
        assert!(fixture.succeed_with(&probe).is_some());
        assert_eq!(fixture.fail_with(&slow, ORDINARY), None);
        assert_eq!((fixture.fail(), fixture.fail()), (None, None));
    }

    #[test]
    fn probe_from_an_earlier_episode_is_ignored() {
        let fixture = Fixture::with(|settings| settings.half_open_probes = 2);
        fixture.trip();
        let (old, failing) = (fixture.probe_after(1_000), fixture.admit());
        assert!(fixture.fail_with(&failing, ORDINARY).is_some());
        let fresh = fixture.probe_after(2_000);
        assert_eq!(fixture.succeed_with(&old), None);
        assert_eq!(fixture.fail_with(&old, ORDINARY), None);
        assert_eq!(fixture.succeed_with(&fresh), None);
        assert_eq!(fixture.breaker.state(), HalfOpen);
    }

    #[test]
    fn lost_probe_slot_is_reclaimed_after_the_open_time() {
        let fixture = Fixture::new();
        fixture.trip();
        let _lost = fixture.probe_after(1_000);
        fixture.advance(999);
        assert_eq!(fixture.rejection().retry_in, Duration::ZERO);
        assert!(fixture.probe_after(1).probe);
    }

    /// Runs `calls` per thread on 8 threads and counts the transitions they caused.
    fn on_eight_threads(fixture: &Arc<Fixture>, call: fn(&Fixture) -> Transition) -> usize {
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let fixture = Arc::clone(fixture);
                std::thread::spawn(move || (0..1_000).filter_map(|_| call(&fixture)).count())
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().expect("joined"))
            .sum()
    }

    #[test]
    fn concurrent_successes_keep_it_closed() {
        let fixture = Arc::new(Fixture::new());
        assert_eq!(on_eight_threads(&fixture, Fixture::succeed), 0);
        let width = fixture.breaker.bucket_width;
        let totals = fixture
            .breaker
            .inner
            .lock()
            .window_totals(fixture.now(), width);
        assert_eq!((fixture.breaker.state(), totals), (Closed, (8_000, 0)));
    }

    #[test]
    fn concurrent_failures_open_it_exactly_once() {
        let fixture = Arc::new(Fixture::new());
        let fail_if_admitted = |fixture: &Fixture| {
            let admission = fixture.breaker.try_acquire(fixture.now()).ok()?;
            fixture.fail_with(&admission, ORDINARY)
        };
        assert_eq!(on_eight_threads(&fixture, fail_if_admitted), 1);
        assert_eq!(fixture.breaker.state(), Open);
    }
}
