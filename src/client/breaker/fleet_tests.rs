//! Unit tests of the fleet hint on a manual clock, over an in-memory store that behaves as the
//! Redis scripts do: the lookup cache's timing, refusals, the probe lease, publishing and
//! closing, and a degraded store.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::*;
use crate::client::breaker::BreakerFailure;
use crate::client::clock::ManualClock;
use crate::config::BreakerSettings;

/// The Redis side in memory: one breaker's entry and lease, and how often each was asked.
#[derive(Default)]
struct MemoryStore {
    entry: Mutex<Option<FleetOpen>>,
    lease: Mutex<Option<String>>,
    lookups: AtomicU32,
    lease_requests: AtomicU32,
    down: AtomicBool,
}

impl MemoryStore {
    fn up(&self) -> Result<(), Degraded> {
        if self.down.load(Ordering::Relaxed) {
            Err(Degraded)
        } else {
            Ok(())
        }
    }

    fn lookups(&self) -> u32 {
        self.lookups.load(Ordering::Relaxed)
    }
}

impl FleetStore for MemoryStore {
    fn lookup(&self, _breaker: &str) -> Result<Option<FleetOpen>, Degraded> {
        self.up()?;
        self.lookups.fetch_add(1, Ordering::Relaxed);
        Ok(*self.entry.lock())
    }

    fn publish(
        &self,
        _breaker: &str,
        open: FleetOpen,
        _ttl: Duration,
        lease_token: Option<&str>,
    ) -> Result<FleetOpen, Degraded> {
        self.up()?;
        let mut lease = self.lease.lock();
        if lease_token.is_some() && lease.as_deref() == lease_token {
            *lease = None;
        }
        let mut entry = self.entry.lock();
        match *entry {
            Some(stored) if stored.until_ms >= open.until_ms => Ok(stored),
            _ => {
                *entry = Some(open);
                Ok(open)
            }
        }
    }

    fn take_lease(&self, _breaker: &str, token: &str, _lease: Duration) -> Result<bool, Degraded> {
        self.up()?;
        self.lease_requests.fetch_add(1, Ordering::Relaxed);
        let mut lease = self.lease.lock();
        if lease.is_some() {
            return Ok(false);
        }
        *lease = Some(token.to_string());
        Ok(true)
    }

    fn end_lease(
        &self,
        _breaker: &str,
        token: &str,
        now_ms: i64,
        close: bool,
    ) -> Result<bool, Degraded> {
        self.up()?;
        let mut lease = self.lease.lock();
        if lease.as_deref() == Some(token) {
            *lease = None;
        }
        let mut entry = self.entry.lock();
        match *entry {
            None => Ok(true),
            Some(stored) if close && stored.until_ms <= now_ms => {
                *entry = None;
                Ok(true)
            }
            Some(_) => Ok(false),
        }
    }
}

const OPEN_MS: u64 = 10_000;

/// One "process": a breaker named `openai` (opens after 2 failures in a row, 10 s) sharing
/// `store`, on a clock of its own that `Processes::advance` moves with the others.
fn process(store: &Arc<MemoryStore>, clock: &Arc<ManualClock>) -> CircuitBreaker {
    let settings = BreakerSettings {
        consecutive_failures: 2,
        minimum_calls: 100,
        open_ms: OPEN_MS,
        max_open_ms: 60_000,
        ..BreakerSettings::default()
    };
    let store: Arc<dyn FleetStore> = Arc::clone(store) as Arc<dyn FleetStore>;
    let clock: Arc<dyn Clock> = Arc::clone(clock) as Arc<dyn Clock>;
    CircuitBreaker::new("openai", settings).with_fleet(Fleet::new(
        store,
        clock,
        Duration::from_secs(3),
    ))
}

struct Fixture {
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    a: CircuitBreaker,
    b: CircuitBreaker,
}

impl Fixture {
    fn new() -> Fixture {
        let store = Arc::new(MemoryStore::default());
        let clock = Arc::new(ManualClock::new(
            chrono::DateTime::from_timestamp_millis(1_796_040_000_000).unwrap(),
        ));
        Fixture {
            a: process(&store, &clock),
            b: process(&store, &clock),
            store,
            clock,
        }
    }

    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn now_ms(&self) -> i64 {
        self.clock.utc_now().timestamp_millis()
    }

    fn advance(&self, milliseconds: u64) {
        self.clock.advance(Duration::from_millis(milliseconds));
    }

    /// Trips `breaker` with two failed calls.
    fn trip(&self, breaker: &CircuitBreaker) {
        for _ in 0..2 {
            let admission = breaker.admit(self.now()).expect("closed");
            let _ = breaker.record_failure(self.now(), &admission, BreakerFailure::Ordinary);
        }
        assert_eq!(breaker.state(), BreakerState::Open);
    }
}

#[test]
fn a_local_opening_publishes_open_until_its_open_time_ends() {
    let f = Fixture::new();
    f.trip(&f.a);
    let entry = f.store.entry.lock().expect("published");
    assert_eq!(entry.until_ms, f.now_ms() + OPEN_MS as i64);
    assert_eq!(entry.open_for_ms, OPEN_MS);
}

#[test]
fn another_process_refuses_a_breaker_the_fleet_has_open_and_reports_it_once() {
    let f = Fixture::new();
    f.trip(&f.a);
    let refusal = f.b.admit(f.now()).expect_err("open for the fleet");
    assert!(refusal.fleet);
    assert_eq!(refusal.rejection.retry_in, Duration::from_millis(OPEN_MS));
    let transition = refusal.transition.expect("reported");
    assert_eq!(
        (transition.from, transition.to, transition.reason.as_str()),
        (BreakerState::Closed, BreakerState::Open, "fleet_open")
    );
    let again = f.b.admit(f.now()).expect_err("still open");
    assert_eq!(again.transition, None, "reported once");
    assert_eq!(f.b.state(), BreakerState::Closed, "the local breaker stays");
    assert_eq!(f.b.observed_state(), BreakerState::Open);
}

#[test]
fn the_fleet_is_looked_up_at_most_once_per_interval() {
    let f = Fixture::new();
    let admission = f.b.admit(f.now()).unwrap();
    f.b.release(&admission);
    assert_eq!(f.store.lookups(), 1);
    f.advance(999);
    for _ in 0..10 {
        let admission = f.b.admit(f.now()).unwrap();
        f.b.release(&admission);
    }
    assert_eq!(
        f.store.lookups(),
        1,
        "within the interval: the cached answer"
    );
    f.advance(1);
    let admission = f.b.admit(f.now()).unwrap();
    f.b.release(&admission);
    assert_eq!(f.store.lookups(), 2, "a second after the last lookup");
}

#[test]
fn an_opening_elsewhere_is_seen_at_the_next_lookup_not_before() {
    let f = Fixture::new();
    let admission = f.b.admit(f.now()).unwrap();
    f.b.release(&admission);
    f.advance(100);
    f.trip(&f.a);
    f.advance(800);
    assert!(
        f.b.admit(f.now()).is_ok(),
        "900 ms after the lookup: cached"
    );
    f.advance(100);
    assert!(f.b.admit(f.now()).is_err(), "the next lookup sees it");
}

#[test]
fn at_the_fleets_half_open_only_the_lease_holder_is_let_through() {
    let f = Fixture::new();
    let c = process(&f.store, &f.clock);
    f.trip(&f.a);
    assert!(f.b.admit(f.now()).is_err());
    assert!(c.admit(f.now()).is_err());
    f.advance(OPEN_MS);
    let probe =
        f.a.admit(f.now())
            .expect("the opener's probe takes the lease");
    assert!(probe.probe && probe.lease);
    let b = f.b.admit(f.now()).expect_err("lease taken");
    let c_refusal = c.admit(f.now()).expect_err("lease taken");
    assert!(b.fleet && c_refusal.fleet);
    assert_eq!(f.store.lease_requests.load(Ordering::Relaxed), 3);
    assert!(f.b.admit(f.now()).is_err());
    assert_eq!(
        f.store.lease_requests.load(Ordering::Relaxed),
        3,
        "a refused lease is not asked for again before the next lookup"
    );
    let _ = f.a.record_success(f.now(), &probe);
    assert_eq!(
        *f.store.entry.lock(),
        None,
        "the probe closed the fleet's breaker"
    );
    assert_eq!(*f.store.lease.lock(), None);
}

#[test]
fn others_close_on_their_next_lookup_after_the_probe_succeeded() {
    let f = Fixture::new();
    f.trip(&f.a);
    assert!(f.b.admit(f.now()).is_err());
    f.advance(OPEN_MS);
    let probe = f.a.admit(f.now()).unwrap();
    let _ = f.a.record_success(f.now(), &probe);
    f.advance(1_000);
    let admission = f.b.admit(f.now()).expect("closed for the fleet");
    assert!(!admission.lease);
    let transition = admission.transition.clone().expect("reported");
    assert_eq!(
        (transition.to, transition.reason.as_str()),
        (BreakerState::Closed, "fleet_closed")
    );
    f.b.release(&admission);
}

#[test]
fn a_locally_closed_process_may_hold_the_lease_and_close_the_fleets_breaker() {
    let f = Fixture::new();
    f.trip(&f.a);
    assert!(f.b.admit(f.now()).is_err());
    f.advance(OPEN_MS);
    let probe = f.b.admit(f.now()).expect("b takes the lease first");
    assert!(!probe.probe && probe.lease);
    let transition = f.b.record_success(f.now(), &probe).expect("reported");
    assert_eq!(transition.reason, "fleet_closed");
    assert_eq!(*f.store.entry.lock(), None);
}

#[test]
fn a_failed_lease_holders_call_publishes_a_later_open_until() {
    let f = Fixture::new();
    f.trip(&f.a);
    assert!(f.b.admit(f.now()).is_err());
    f.advance(OPEN_MS);
    let probe = f.b.admit(f.now()).unwrap();
    let _ =
        f.b.record_failure(f.now(), &probe, BreakerFailure::Ordinary);
    let entry = f.store.entry.lock().expect("published again");
    assert_eq!(
        entry.open_for_ms,
        2 * OPEN_MS,
        "twice the fleet's last open time"
    );
    assert_eq!(entry.until_ms, f.now_ms() + 2 * OPEN_MS as i64);
    assert_eq!(*f.store.lease.lock(), None, "the lease is freed");
    assert_eq!(
        f.b.state(),
        BreakerState::Closed,
        "one failure: b stays closed"
    );
    assert!(f.b.admit(f.now()).is_err());
}

#[test]
fn a_later_open_until_is_never_shortened() {
    let f = Fixture::new();
    // `a` looked up before another process published a 60 s opening.
    let admission = f.a.admit(f.now()).unwrap();
    f.a.release(&admission);
    f.store.entry.lock().replace(FleetOpen {
        until_ms: f.now_ms() + 60_000,
        open_for_ms: 60_000,
    });
    f.trip(&f.a);
    assert_eq!(
        f.store.entry.lock().unwrap().until_ms,
        f.now_ms() + 60_000,
        "the 10 s trip kept the 60 s one"
    );
}

#[test]
fn a_released_lease_is_freed_for_the_next_prober() {
    let f = Fixture::new();
    f.trip(&f.a);
    f.advance(OPEN_MS);
    let probe = f.a.admit(f.now()).unwrap();
    f.a.release(&probe);
    assert_eq!(*f.store.lease.lock(), None);
}

#[test]
fn a_degraded_store_leaves_the_local_breaker_alone() {
    let f = Fixture::new();
    f.store.down.store(true, Ordering::Relaxed);
    f.trip(&f.a);
    assert_eq!(*f.store.entry.lock(), None, "nothing published");
    let admission = f.b.admit(f.now()).expect("b decides alone");
    f.b.release(&admission);
    f.advance(OPEN_MS);
    let probe = f.a.admit(f.now()).expect("a probe without a lease");
    assert!(probe.probe && !probe.lease);
    let transition = f.a.record_success(f.now(), &probe).expect("closed");
    assert_eq!(transition.reason, "probe_succeeded");
}

#[test]
fn a_breaker_without_fleet_reads_as_its_local_state() {
    let breaker = CircuitBreaker::new("openai", BreakerSettings::default());
    let now = Instant::now();
    let admission = breaker.admit(now).unwrap();
    assert!(!admission.lease);
    breaker.release(&admission);
    assert_eq!(breaker.observed_state(), BreakerState::Closed);
    assert_eq!(breaker.observed_opened_at(), None);
}
