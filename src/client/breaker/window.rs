//! The failure-rate window of a circuit breaker: `WINDOW_BUCKETS` buckets of calls and failures
//! that slide one bucket width at a time, so memory stays bounded whatever the traffic. The state
//! lives in the breaker's `Inner` (its origin and buckets, guarded by the breaker's lock); this
//! file owns the bucket type and the arithmetic that records outcomes, totals and clears it.

use std::time::{Duration, Instant};

use super::Inner;

/// Buckets of the failure-rate window; bounded memory whatever the traffic.
pub(super) const WINDOW_BUCKETS: usize = 60;

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Bucket {
    /// The bucket's position since the window's origin; a stale ordinal means empty.
    ordinal: u64,
    calls: u32,
    failures: u32,
}

impl Inner {
    /// Forgets every outcome: the next one starts a new window.
    pub(super) fn clear_window(&mut self) {
        self.window_origin = None;
        self.buckets = [Bucket::default(); WINDOW_BUCKETS];
    }

    /// The bucket ordinal of `now`, counted from the first outcome of the window.
    fn ordinal(&mut self, now: Instant, width: Duration) -> u64 {
        let origin = *self.window_origin.get_or_insert(now);
        let width_nanos = width.as_nanos().max(1);
        let ordinal = now.saturating_duration_since(origin).as_nanos() / width_nanos;
        // Offset by one so the zeroed default bucket never looks current.
        u64::try_from(ordinal).unwrap_or(u64::MAX).saturating_add(1)
    }

    pub(super) fn record_in_window(&mut self, now: Instant, width: Duration, failed: bool) {
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
    pub(super) fn window_totals(&mut self, now: Instant, width: Duration) -> (u32, u32) {
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
