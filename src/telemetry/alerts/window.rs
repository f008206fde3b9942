//! A sliding window of one feature's requests for the rate and latency rules, kept in a bounded
//! number of time buckets rather than one entry per request: memory is
//! `BUCKETS x (counters + LATENCY_BINS)` whatever the traffic. A record lands in the bucket of
//! its own timestamp; buckets older than the window are dropped as newer records or ticks
//! arrive. p95 comes from a log-spaced latency histogram (bins 5% wide), so it is exact to 5%.

// Until the delivery thread (H4) calls the rules, only the tests (test-hooks) reach them.
#![cfg_attr(not(feature = "test-hooks"), allow(dead_code))]

use std::collections::VecDeque;

/// Buckets per window: the window slides in steps of `window / BUCKETS` (at least 1 s).
pub const BUCKETS: u64 = 30;
/// The first latency bin's upper bound, ms; every next bin is 5% wider.
const LATENCY_FIRST_MS: f64 = 1.0;
const LATENCY_GROWTH: f64 = 1.05;
/// Bins up to ~ 1.05^300 ms (over 6 hours); slower requests count in the last bin.
const LATENCY_BINS: usize = 300;

/// What one request adds to a window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// The call failed (`error`, `stream_incomplete`).
    pub error: bool,
    /// Its wall time, ms.
    pub latency_ms: f64,
    /// Answers validated against the output schema (invalid ones included).
    pub validated: u32,
    /// Answers that were invalid.
    pub invalid: u32,
}

/// Sums over the window.
#[derive(Debug, Clone, PartialEq)]
pub struct Totals {
    /// Requests.
    pub requests: u64,
    /// Failed requests.
    pub errors: u64,
    /// Answers validated.
    pub validated: u64,
    /// Invalid answers.
    pub invalid: u64,
    latencies: Vec<u32>,
}

impl Totals {
    /// `errors / requests` (0 when empty).
    pub fn error_rate(&self) -> f64 {
        ratio(self.errors, self.requests)
    }

    /// `invalid / validated` (0 when nothing was validated).
    pub fn invalid_output_rate(&self) -> f64 {
        ratio(self.invalid, self.validated)
    }

    /// The 95th percentile latency, ms: the upper bound of the bin holding it (nearest rank).
    pub fn p95_ms(&self) -> f64 {
        let count: u64 = self.latencies.iter().map(|&n| u64::from(n)).sum();
        if count == 0 {
            return 0.0;
        }
        let rank = (count * 95).div_ceil(100).max(1);
        let mut seen = 0;
        for (bin, &n) in self.latencies.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                return upper_bound(bin);
            }
        }
        upper_bound(LATENCY_BINS - 1)
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn upper_bound(bin: usize) -> f64 {
    LATENCY_FIRST_MS * LATENCY_GROWTH.powi(bin as i32)
}

fn bin_of(latency_ms: f64) -> usize {
    // NaN, negative and sub-millisecond latencies share the first bin.
    if latency_ms.is_nan() || latency_ms <= LATENCY_FIRST_MS {
        return 0;
    }
    let bin = (latency_ms / LATENCY_FIRST_MS).ln() / LATENCY_GROWTH.ln();
    (bin.ceil() as usize).min(LATENCY_BINS - 1)
}

#[derive(Debug)]
struct Bucket {
    /// Its start, ms since the epoch, a multiple of the bucket width.
    start_ms: i64,
    requests: u64,
    errors: u64,
    validated: u64,
    invalid: u64,
    /// Sparse (bin, count), so a bucket of few requests stays small.
    latencies: Vec<(u16, u32)>,
}

/// One feature's window for one rule.
#[derive(Debug)]
pub struct Window {
    width_ms: i64,
    bucket_ms: i64,
    buckets: VecDeque<Bucket>,
}

impl Window {
    /// A window of `window_seconds` (at least 1).
    pub fn new(window_seconds: u64) -> Window {
        let width_ms = i64::try_from(window_seconds.max(1).saturating_mul(1000)).unwrap_or(i64::MAX);
        let bucket_ms = (width_ms / BUCKETS as i64).max(1000);
        Window {
            width_ms,
            bucket_ms,
            buckets: VecDeque::new(),
        }
    }

    /// The window's width, ms.
    pub fn width_ms(&self) -> i64 {
        self.width_ms
    }

    /// Adds `sample` at `at_ms` (ms since the epoch) and slides the window to end there (or at
    /// the newest sample, when this one is late). A sample older than the window is dropped.
    pub fn add(&mut self, at_ms: i64, sample: Sample) {
        let end = self
            .buckets
            .back()
            .map_or(at_ms, |last| at_ms.max(last.start_ms + self.bucket_ms - 1));
        self.slide(end);
        if at_ms <= end.saturating_sub(self.width_ms) {
            return;
        }
        let start_ms = at_ms.div_euclid(self.bucket_ms) * self.bucket_ms;
        let index = match self.buckets.iter().rposition(|b| b.start_ms <= start_ms) {
            Some(index) if self.buckets[index].start_ms == start_ms => index,
            found => {
                let index = found.map_or(0, |index| index + 1);
                self.buckets.insert(
                    index,
                    Bucket {
                        start_ms,
                        requests: 0,
                        errors: 0,
                        validated: 0,
                        invalid: 0,
                        latencies: Vec::new(),
                    },
                );
                index
            }
        };
        let bucket = &mut self.buckets[index];
        bucket.requests += 1;
        bucket.errors += u64::from(sample.error);
        bucket.validated += u64::from(sample.validated);
        bucket.invalid += u64::from(sample.invalid);
        let bin = bin_of(sample.latency_ms) as u16;
        match bucket.latencies.iter_mut().find(|(b, _)| *b == bin) {
            Some((_, count)) => *count = count.saturating_add(1),
            None => bucket.latencies.push((bin, 1)),
        }
    }

    /// Drops the buckets wholly older than `(now_ms - width, now_ms]`.
    pub fn slide(&mut self, now_ms: i64) {
        let start = now_ms.saturating_sub(self.width_ms);
        while let Some(first) = self.buckets.front() {
            if first.start_ms + self.bucket_ms <= start {
                self.buckets.pop_front();
            } else {
                break;
            }
        }
    }

    /// True when no request is in the window.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The sums over the buckets kept.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals {
            requests: 0,
            errors: 0,
            validated: 0,
            invalid: 0,
            latencies: vec![0; LATENCY_BINS],
        };
        for bucket in &self.buckets {
            totals.requests += bucket.requests;
            totals.errors += bucket.errors;
            totals.validated += bucket.validated;
            totals.invalid += bucket.invalid;
            for &(bin, count) in &bucket.latencies {
                totals.latencies[usize::from(bin)] += count;
            }
        }
        totals
    }

    /// The buckets held (at most [`BUCKETS`] + 1): memory is bounded by this, not traffic.
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p95_is_within_five_percent_of_the_exact_value() {
        let mut window = Window::new(60);
        for i in 1..=100 {
            window.add(1_000, Sample { latency_ms: f64::from(i) * 10.0, ..Sample::default() });
        }
        let p95 = window.totals().p95_ms();
        assert!((950.0..=950.0 * 1.05).contains(&p95), "{p95}");
    }

    #[test]
    fn memory_stays_bounded_by_the_bucket_count_whatever_the_traffic() {
        let mut window = Window::new(300);
        for i in 0..100_000i64 {
            window.add(i * 37, Sample { latency_ms: (i % 5000) as f64, ..Sample::default() });
        }
        assert!(window.buckets() <= BUCKETS as usize + 1, "{}", window.buckets());
    }

    #[test]
    fn requests_older_than_the_window_leave_it() {
        let mut window = Window::new(10);
        window.add(0, Sample { error: true, ..Sample::default() });
        window.add(5_000, Sample::default());
        assert_eq!(window.totals().requests, 2);
        window.slide(12_000);
        assert_eq!(window.totals().requests, 1);
        assert_eq!(window.totals().errors, 0);
        window.slide(20_000);
        assert!(window.is_empty());
    }

    proptest::proptest! {
        #[test]
        fn the_window_counts_what_is_in_it_to_within_one_bucket(
            window_seconds in 1u64..600,
            steps in proptest::collection::vec((0i64..20_000, proptest::bool::ANY), 1..200),
        ) {
            let mut window = Window::new(window_seconds);
            let mut samples = Vec::new();
            let mut at = 0i64;
            for (step, error) in steps {
                at += step;
                window.add(at, Sample { error, ..Sample::default() });
                samples.push((at, error));
            }
            let width = window.width_ms();
            let in_range = |from: i64| samples.iter().filter(|(t, _)| *t > from).count() as u64;
            let totals = window.totals();
            proptest::prop_assert!(totals.requests >= in_range(at - width));
            proptest::prop_assert!(totals.requests <= in_range(at - width - window.bucket_ms));
            proptest::prop_assert!(window.buckets() <= BUCKETS as usize + 1);
        }
    }
}
