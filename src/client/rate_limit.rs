//! Client-side rate limits: a request bucket and a token bucket per provider or model, refilled
//! continuously, so we stay under the provider's published limits instead of learning them from
//! 429s. Levels are kept in exact integer units, so a caller that waits the returned time always
//! finds the capacity there.
//!
//! With a Redis state backend (issue 11) the limits are the fleet's: each limiter asks a shared
//! GCRA limit (`state::rate`) instead of its buckets, so every process and host draws from one
//! RPM and one TPM per provider and per model. The buckets take over while Redis is
//! unavailable (each process then enforces the whole limit on its own, as before).

use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::config::RateLimitSettings;
use crate::state::rate::{RateDecision, RateLimit};
use crate::state::{Degraded, SharedState};

/// The share of a shared limit allowed at once after an idle stretch. GCRA lets any one-minute
/// span see the limit plus the burst, so a tenth keeps every minute within 10% of the limit
/// (a call bigger than that, in tokens, is still let through when the limit has room for it).
const FLEET_BURST_DIVISOR: u64 = 10;

/// Where an acquisition was counted, so its release or settlement goes to the same place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquired {
    /// In this process's buckets.
    Local,
    /// In the fleet's shared limits on Redis.
    Fleet,
}

/// Level units per whole request or token: one minute in nanoseconds. A bucket of `capacity`
/// per minute then refills exactly `capacity` units per nanosecond, with no rounding at all.
const UNITS_PER_ITEM: i128 = 60_000_000_000;

/// The request and token buckets of one provider or model.
#[derive(Debug)]
pub struct RateLimiter {
    buckets: Mutex<Buckets>,
    max_wait: Duration,
    fleet: Option<FleetLimits>,
}

/// The shared limits of one provider or model on Redis.
#[derive(Debug)]
struct FleetLimits {
    shared: SharedState,
    requests: Option<RateLimit>,
    tokens: Option<RateLimit>,
}

impl FleetLimits {
    /// One request and `tokens` tokens from the fleet's limits at `now_ms` (Unix ms), or the
    /// wait until both would be there; `Err(Degraded)` when Redis is unavailable.
    fn try_acquire(&self, now_ms: i64, tokens: u64) -> Result<Result<(), Duration>, Degraded> {
        if let Some(requests) = &self.requests {
            let decision = self
                .shared
                .run(|redis| redis.acquire(requests, 1, now_ms))?;
            if let Some(wait) = refusal(decision) {
                return Ok(Err(wait));
            }
        }
        if let Some(limit) = &self.tokens {
            // A call bigger than the burst still goes once the limit has room for it.
            let limit = limit.clone().with_burst(limit.burst.max(tokens));
            let decision = self
                .shared
                .run(|redis| redis.acquire(&limit, tokens, now_ms));
            let wait = match decision {
                Ok(decision) => refusal(decision),
                Err(Degraded) => {
                    self.refund_request(now_ms);
                    return Err(Degraded);
                }
            };
            if let Some(wait) = wait {
                self.refund_request(now_ms);
                return Ok(Err(wait));
            }
        }
        Ok(Ok(()))
    }

    fn refund_request(&self, now_ms: i64) {
        if let Some(requests) = &self.requests {
            let _refunded = self.shared.run(|redis| redis.refund(requests, 1, now_ms));
        }
    }

    fn refund_tokens(&self, now_ms: i64, tokens: u64) {
        if let Some(limit) = &self.tokens {
            let _refunded = self.shared.run(|redis| redis.refund(limit, tokens, now_ms));
        }
    }
}

/// The wait a shared limit asks for, `None` when it allowed the call.
fn refusal(decision: RateDecision) -> Option<Duration> {
    match decision {
        RateDecision::Allowed => None,
        RateDecision::Wait(wait) => Some(wait),
        RateDecision::TooLarge => Some(Duration::MAX),
    }
}

/// A shared GCRA limit of `per_minute` units under `name`, with a tenth of it as burst.
fn fleet_limit(name: String, per_minute: u64) -> RateLimit {
    RateLimit::new(name, per_minute, Duration::from_secs(60))
        .with_burst((per_minute / FLEET_BURST_DIVISOR).max(1))
}

#[derive(Debug)]
struct Buckets {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Items per minute, which is also the most the bucket holds.
    capacity: u64,
    /// In units of `1 / UNITS_PER_ITEM` items; negative after an under-estimated reservation.
    level: i128,
    updated: Instant,
}

impl Bucket {
    fn full(capacity: u64, now: Instant) -> Bucket {
        Bucket {
            capacity,
            level: units(capacity),
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        // Callers on other threads may pass a slightly older `now`; time never runs backwards here.
        if now <= self.updated {
            return;
        }
        let elapsed = now.duration_since(self.updated).as_nanos();
        let gained = elapsed.saturating_mul(u128::from(self.capacity));
        let gained = i128::try_from(gained).unwrap_or(i128::MAX);
        self.level = self.level.saturating_add(gained).min(units(self.capacity));
        self.updated = now;
    }

    /// How long until `items` are in the bucket; zero when they already are.
    fn wait_for(&self, items: u64) -> Duration {
        if items > self.capacity {
            return Duration::MAX;
        }
        let deficit = units(items).saturating_sub(self.level);
        if deficit <= 0 {
            return Duration::ZERO;
        }
        // A zero limit never refills, so an overdraft on it is never paid back.
        if self.capacity == 0 {
            return Duration::MAX;
        }
        let capacity = i128::from(self.capacity);
        let nanoseconds = (deficit + capacity - 1) / capacity;
        u64::try_from(nanoseconds).map_or(Duration::MAX, Duration::from_nanos)
    }

    fn take(&mut self, items: u64) {
        self.level = self.level.saturating_sub(units(items));
    }
}

fn units(items: u64) -> i128 {
    i128::from(items) * UNITS_PER_ITEM
}

impl RateLimiter {
    /// A limiter with full buckets; limits that are None are unlimited.
    pub fn new(settings: &RateLimitSettings, now: Instant) -> RateLimiter {
        RateLimiter {
            buckets: Mutex::new(Buckets {
                requests: settings
                    .requests_per_minute
                    .map(|capacity| Bucket::full(u64::from(capacity), now)),
                tokens: settings
                    .tokens_per_minute
                    .map(|capacity| Bucket::full(capacity, now)),
            }),
            max_wait: Duration::from_millis(settings.max_wait_ms),
            fleet: None,
        }
    }

    /// The same limiter counting on the fleet's shared limits under `name` (`provider:openai`
    /// or `model:openai/gpt-4o-mini`, suffixed `:rpm` and `:tpm`) while Redis answers; its own
    /// buckets serve while it does not. With `None`, the limiter stays per process.
    pub fn with_shared(
        mut self,
        shared: Option<SharedState>,
        name: &str,
        settings: &RateLimitSettings,
    ) -> RateLimiter {
        self.fleet = shared.map(|shared| FleetLimits {
            shared,
            requests: settings
                .requests_per_minute
                .map(|limit| fleet_limit(format!("{name}:rpm"), u64::from(limit))),
            tokens: settings
                .tokens_per_minute
                .map(|limit| fleet_limit(format!("{name}:tpm"), limit)),
        });
        self
    }

    /// As [`RateLimiter::try_acquire`], on the fleet's limits when shared (`now_ms`: the same
    /// moment in Unix ms), on this process's buckets otherwise or while Redis is unavailable.
    /// Says where it counted, for [`RateLimiter::release_at`] and [`RateLimiter::settle_at`].
    pub fn try_acquire_at(
        &self,
        now: Instant,
        now_ms: i64,
        tokens: u64,
    ) -> Result<Acquired, Duration> {
        if let Some(fleet) = &self.fleet
            && let Ok(decision) = fleet.try_acquire(now_ms, tokens)
        {
            return decision.map(|()| Acquired::Fleet);
        }
        self.try_acquire(now, tokens).map(|()| Acquired::Local)
    }

    /// As [`RateLimiter::release`], where the acquisition was counted.
    pub fn release_at(&self, now: Instant, now_ms: i64, tokens: u64, acquired: Acquired) {
        match (acquired, &self.fleet) {
            (Acquired::Fleet, Some(fleet)) => {
                fleet.refund_request(now_ms);
                fleet.refund_tokens(now_ms, tokens);
            }
            _ => self.release(now, tokens),
        }
    }

    /// As [`RateLimiter::settle`], where the acquisition was counted. On the fleet's limits
    /// unused tokens are given back; tokens used beyond the estimate are not charged (the
    /// estimate, prompt plus `max_tokens`, is an upper bound whenever usage is reported).
    pub fn settle_at(
        &self,
        now: Instant,
        now_ms: i64,
        reserved_tokens: u64,
        actual_tokens: u64,
        acquired: Acquired,
    ) {
        match (acquired, &self.fleet) {
            (Acquired::Fleet, Some(fleet)) => {
                fleet.refund_tokens(now_ms, reserved_tokens.saturating_sub(actual_tokens));
            }
            _ => self.settle(now, reserved_tokens, actual_tokens),
        }
    }

    /// Takes one request and `tokens` tokens if both are available now, else nothing and the
    /// time until both would be (`Duration::MAX` when `tokens` can never fit).
    pub fn try_acquire(&self, now: Instant, tokens: u64) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock();
        let Buckets {
            requests,
            tokens: token_bucket,
        } = &mut *buckets;
        let mut wait = Duration::ZERO;
        if let Some(bucket) = requests.as_mut() {
            bucket.refill(now);
            wait = wait.max(bucket.wait_for(1));
        }
        if let Some(bucket) = token_bucket.as_mut() {
            bucket.refill(now);
            wait = wait.max(bucket.wait_for(tokens));
        }
        if wait > Duration::ZERO {
            return Err(wait);
        }
        if let Some(bucket) = requests.as_mut() {
            bucket.take(1);
        }
        if let Some(bucket) = token_bucket.as_mut() {
            bucket.take(tokens);
        }
        Ok(())
    }

    /// Corrects a call's token charge from the estimate reserved to the usage reported: refunds
    /// the difference, or charges it even past empty so later calls wait for the overdraft.
    pub fn settle(&self, now: Instant, reserved_tokens: u64, actual_tokens: u64) {
        let mut buckets = self.buckets.lock();
        let Some(bucket) = buckets.tokens.as_mut() else {
            return;
        };
        bucket.refill(now);
        let refund = units(reserved_tokens) - units(actual_tokens);
        bucket.level = bucket
            .level
            .saturating_add(refund)
            .min(units(bucket.capacity));
    }

    /// Gives back a whole acquisition (one request and its tokens) that never turned into a
    /// call, for example because another limiter of the same model refused.
    pub fn release(&self, now: Instant, tokens: u64) {
        let mut buckets = self.buckets.lock();
        if let Some(bucket) = buckets.requests.as_mut() {
            bucket.refill(now);
            bucket.level = bucket
                .level
                .saturating_add(units(1))
                .min(units(bucket.capacity));
        }
        if let Some(bucket) = buckets.tokens.as_mut() {
            bucket.refill(now);
            bucket.level = bucket
                .level
                .saturating_add(units(tokens))
                .min(units(bucket.capacity));
        }
    }

    /// How long a call may wait for capacity before moving to the next provider.
    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(
        requests_per_minute: Option<u32>,
        tokens_per_minute: Option<u64>,
        now: Instant,
    ) -> RateLimiter {
        let settings = RateLimitSettings {
            requests_per_minute,
            tokens_per_minute,
            max_wait_ms: 1_500,
        };
        RateLimiter::new(&settings, now)
    }

    #[test]
    fn requests_run_out_after_the_per_minute_capacity() {
        let now = Instant::now();
        let limiter = limiter(Some(3), None, now);
        for _ in 0..3 {
            assert_eq!(limiter.try_acquire(now, 0), Ok(()));
        }
        assert_eq!(limiter.try_acquire(now, 0), Err(Duration::from_secs(20)));
    }

    #[test]
    fn requests_refill_continuously() {
        let start = Instant::now();
        let limiter = limiter(Some(60), None, start);
        for _ in 0..60 {
            assert_eq!(limiter.try_acquire(start, 0), Ok(()));
        }
        let later = start + Duration::from_millis(400);
        assert_eq!(
            limiter.try_acquire(later, 0),
            Err(Duration::from_millis(600))
        );
        assert_eq!(
            limiter.try_acquire(start + Duration::from_secs(1), 0),
            Ok(())
        );
        assert!(
            limiter
                .try_acquire(start + Duration::from_secs(1), 0)
                .is_err()
        );
    }

    #[test]
    fn waiting_the_returned_time_always_suffices() {
        let start = Instant::now();
        let limiter = limiter(Some(7), Some(1_000), start);
        let mut now = start;
        for _ in 0..50 {
            match limiter.try_acquire(now, 333) {
                Ok(()) => {}
                Err(wait) => {
                    now += wait;
                    assert_eq!(limiter.try_acquire(now, 333), Ok(()));
                }
            }
        }
    }

    #[test]
    fn refill_stops_at_capacity() {
        let start = Instant::now();
        let limiter = limiter(Some(2), None, start);
        let much_later = start + Duration::from_secs(3_600);
        assert_eq!(limiter.try_acquire(much_later, 0), Ok(()));
        assert_eq!(limiter.try_acquire(much_later, 0), Ok(()));
        assert!(limiter.try_acquire(much_later, 0).is_err());
    }

    #[test]
    fn tokens_run_out_and_report_the_refill_time() {
        let now = Instant::now();
        let limiter = limiter(None, Some(6_000), now);
        assert_eq!(limiter.try_acquire(now, 5_000), Ok(()));
        // 1000 left, 1000 more needed at 100 tokens per second.
        assert_eq!(
            limiter.try_acquire(now, 2_000),
            Err(Duration::from_secs(10))
        );
        assert_eq!(
            limiter.try_acquire(now + Duration::from_secs(10), 2_000),
            Ok(())
        );
    }

    #[test]
    fn acquire_is_all_or_nothing() {
        let now = Instant::now();
        let limiter = limiter(Some(2), Some(1_000), now);
        assert_eq!(limiter.try_acquire(now, 900), Ok(()));
        // The token bucket refuses, so the request bucket must keep its last request.
        assert!(limiter.try_acquire(now, 500).is_err());
        assert_eq!(limiter.try_acquire(now, 100), Ok(()));
    }

    #[test]
    fn wait_is_the_longer_of_both_buckets() {
        let now = Instant::now();
        let limiter = limiter(Some(1), Some(600), now);
        assert_eq!(limiter.try_acquire(now, 600), Ok(()));
        // Requests need 60 s; 600 tokens also need 60 s; 60 tokens only 6 s.
        assert_eq!(limiter.try_acquire(now, 60), Err(Duration::from_secs(60)));
    }

    #[test]
    fn settle_refunds_unused_tokens() {
        let now = Instant::now();
        let limiter = limiter(None, Some(1_000), now);
        assert_eq!(limiter.try_acquire(now, 1_000), Ok(()));
        limiter.settle(now, 1_000, 400);
        assert_eq!(limiter.try_acquire(now, 600), Ok(()));
        assert!(limiter.try_acquire(now, 1).is_err());
    }

    #[test]
    fn settle_refund_does_not_exceed_capacity() {
        let now = Instant::now();
        let limiter = limiter(None, Some(1_000), now);
        limiter.settle(now, 5_000, 0);
        assert_eq!(limiter.try_acquire(now, 1_000), Ok(()));
        assert!(limiter.try_acquire(now, 1).is_err());
    }

    #[test]
    fn settle_extra_charge_can_overdraw_and_delays_later_calls() {
        let now = Instant::now();
        let limiter = limiter(None, Some(600), now);
        assert_eq!(limiter.try_acquire(now, 600), Ok(()));
        limiter.settle(now, 600, 900);
        // 300 tokens owed plus 60 wanted, at 10 tokens per second.
        assert_eq!(limiter.try_acquire(now, 60), Err(Duration::from_secs(36)));
    }

    #[test]
    fn settle_without_a_token_limit_does_nothing() {
        let now = Instant::now();
        let limiter = limiter(Some(1), None, now);
        limiter.settle(now, 0, 1_000_000);
        assert_eq!(limiter.try_acquire(now, 1_000_000), Ok(()));
    }

    #[test]
    fn oversized_request_can_never_be_served() {
        let now = Instant::now();
        let limiter = limiter(Some(10), Some(1_000), now);
        assert_eq!(limiter.try_acquire(now, 1_001), Err(Duration::MAX));
        assert_eq!(limiter.try_acquire(now, 1_000), Ok(()));
    }

    #[test]
    fn unlimited_limiter_always_admits() {
        let now = Instant::now();
        let limiter = limiter(None, None, now);
        for _ in 0..10_000 {
            assert_eq!(limiter.try_acquire(now, u64::MAX), Ok(()));
        }
    }

    #[test]
    fn older_timestamps_from_other_threads_do_not_refill() {
        let start = Instant::now();
        let limiter = limiter(Some(1), None, start + Duration::from_secs(1));
        assert_eq!(
            limiter.try_acquire(start + Duration::from_secs(1), 0),
            Ok(())
        );
        assert!(limiter.try_acquire(start, 0).is_err());
        assert_eq!(
            limiter.try_acquire(start + Duration::from_secs(1), 0),
            Err(Duration::from_secs(60))
        );
    }

    #[test]
    fn zero_limit_never_admits() {
        let now = Instant::now();
        let closed = limiter(Some(0), Some(0), now);
        assert_eq!(closed.try_acquire(now, 0), Err(Duration::MAX));
    }

    #[test]
    fn overdraft_on_a_zero_limit_is_never_repaid() {
        let now = Instant::now();
        let overdrawn = limiter(None, Some(0), now);
        overdrawn.settle(now, 0, 5);
        assert_eq!(overdrawn.try_acquire(now, 0), Err(Duration::MAX));
    }

    #[test]
    fn release_gives_back_the_request_and_its_tokens() {
        let now = Instant::now();
        let limiter = limiter(Some(1), Some(100), now);
        limiter.try_acquire(now, 100).unwrap();
        assert!(limiter.try_acquire(now, 1).is_err());
        limiter.release(now, 100);
        assert_eq!(limiter.try_acquire(now, 100), Ok(()));
    }

    #[test]
    fn max_wait_comes_from_the_settings() {
        let limiter = limiter(None, None, Instant::now());
        assert_eq!(limiter.max_wait(), Duration::from_millis(1_500));
    }
}
