//! Unit tests of the circuit breaker on a manual clock: the thresholds that open it, the
//! sliding window, the doubling open time, half-open probes, forced probes, stale outcomes from
//! earlier episodes and concurrent callers.

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

fn change(from: BreakerState, to: BreakerState, reason: &str, open_ms: Option<u64>) -> Transition {
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

#[test]
fn each_state_name_is_its_serialized_name() {
    for state in [Closed, Open, HalfOpen] {
        assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
    }
}
