//! Time and randomness behind traits, so breakers, backoff, rate limits and budgets can be driven
//! by a manual clock and a seeded random source in tests: deterministic and fast.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

/// A source of monotonic and wall-clock time that can also sleep.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Monotonic now, for deadlines, windows and open times.
    fn now(&self) -> Instant;
    /// Wall-clock now in UTC, for budget periods and timestamps.
    fn utc_now(&self) -> DateTime<Utc>;
    /// Waits `duration` (a manual clock advances instead).
    fn sleep(&self, duration: Duration);
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn utc_now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, duration: Duration) {
        // A cancel token in scope cuts the sleep short (the call then stops at its next check).
        super::cancel::sleep(duration);
    }
}

/// A clock that only moves when told to (or when something sleeps on it).
#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    start_utc: DateTime<Utc>,
    elapsed: Mutex<Duration>,
}

impl ManualClock {
    /// A clock that reads `start_utc` as wall-clock time now.
    pub fn new(start_utc: DateTime<Utc>) -> ManualClock {
        ManualClock {
            start: Instant::now(),
            start_utc,
            elapsed: Mutex::new(Duration::ZERO),
        }
    }

    /// Moves time forward.
    pub fn advance(&self, duration: Duration) {
        *self.elapsed.lock() += duration;
    }

    /// Time passed since the clock was made.
    pub fn elapsed(&self) -> Duration {
        *self.elapsed.lock()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.start + *self.elapsed.lock()
    }

    fn utc_now(&self) -> DateTime<Utc> {
        let elapsed =
            chrono::Duration::from_std(*self.elapsed.lock()).unwrap_or(chrono::Duration::MAX);
        self.start_utc + elapsed
    }

    fn sleep(&self, duration: Duration) {
        self.advance(duration);
    }
}

/// A source of uniform random numbers in [0, 1), for jitter and mock fault rates.
pub trait Random: Send + Sync + std::fmt::Debug {
    /// The next number in [0, 1).
    fn next_f64(&self) -> f64;
}

/// SplitMix64: tiny, fast and good enough for jitter; seeded explicitly in tests.
#[derive(Debug)]
pub struct SeededRandom {
    state: AtomicU64,
}

impl SeededRandom {
    /// A generator with a fixed seed (reproducible).
    pub fn new(seed: u64) -> SeededRandom {
        SeededRandom {
            state: AtomicU64::new(seed),
        }
    }

    /// A generator seeded from the time and process id.
    pub fn from_entropy() -> SeededRandom {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos() as u64)
            .unwrap_or(0);
        SeededRandom::new(nanos ^ (u64::from(std::process::id()) << 32))
    }
}

impl Random for SeededRandom {
    fn next_f64(&self) -> f64 {
        let mut z = self
            .state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // The top 53 bits give every representable double in [0, 1) with equal spacing.
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}
