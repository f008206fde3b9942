//! The storage of one metrics series: its key of label values, found through borrowed labels
//! so that recording into an existing series allocates nothing; the bucket counts of a
//! histogram; and the ring of recent durations with its nearest-rank percentiles.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

use super::{BUCKET_COUNT, RECENT_DURATIONS};

/// The label values of one series, stored once when the series is created.
///
/// Maps are keyed by it but searched through [`LabelView`], so that recording into an existing
/// series hashes and compares the caller's `&str`s without building a key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct SeriesKey<const N: usize>(pub(super) [Option<String>; N]);

impl<const N: usize> SeriesKey<N> {
    pub(super) fn new(values: [Option<&str>; N]) -> SeriesKey<N> {
        SeriesKey(values.map(|value| value.map(str::to_owned)))
    }
}

/// Label values seen as borrowed strings, whether owned by a key or by the caller.
pub(super) trait LabelView<const N: usize> {
    fn values(&self) -> [Option<&str>; N];
}

impl<const N: usize> LabelView<N> for SeriesKey<N> {
    fn values(&self) -> [Option<&str>; N] {
        self.0.each_ref().map(Option::as_deref)
    }
}

impl<const N: usize> LabelView<N> for [Option<&str>; N] {
    fn values(&self) -> [Option<&str>; N] {
        *self
    }
}

// `HashMap` requires a key and its borrowed form to hash and compare alike, so both go
// through the same borrowed values.
impl<const N: usize> Hash for SeriesKey<N> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        LabelView::values(self).hash(state);
    }
}

impl<const N: usize> Hash for dyn LabelView<N> + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.values().hash(state);
    }
}

impl<const N: usize> PartialEq for dyn LabelView<N> + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.values() == other.values()
    }
}

impl<const N: usize> Eq for dyn LabelView<N> + '_ {}

impl<'a, const N: usize> Borrow<dyn LabelView<N> + 'a> for SeriesKey<N> {
    fn borrow(&self) -> &(dyn LabelView<N> + 'a) {
        self
    }
}

/// Applies `update` to the series with these labels, creating it first only when it is new.
pub(super) fn update_series<const N: usize, V, S: BuildHasher>(
    series: &mut HashMap<SeriesKey<N>, V, S>,
    labels: [Option<&str>; N],
    create: impl FnOnce() -> V,
    update: impl FnOnce(&mut V),
) {
    if let Some(existing) = series.get_mut(&labels as &dyn LabelView<N>) {
        update(existing);
        return;
    }
    let mut created = create();
    update(&mut created);
    series.insert(SeriesKey::new(labels), created);
}

/// Observations per bucket (not cumulative; the last is the overflow), with their sum.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Histogram {
    pub(super) bucket_counts: [u64; BUCKET_COUNT + 1],
    pub(super) sum: f64,
    pub(super) count: u64,
}

impl Histogram {
    pub(super) fn observe(&mut self, bounds: &[f64; BUCKET_COUNT], value: f64) {
        // Prometheus buckets are `le`: a value equal to a bound belongs to that bound's bucket.
        let index = bounds.partition_point(|bound| *bound < value);
        if let Some(count) = self.bucket_counts.get_mut(index) {
            *count += 1;
        }
        self.sum += value;
        self.count += 1;
    }
}

/// The most recent durations of a series in nanoseconds, overwritten oldest first once full.
#[derive(Debug)]
pub(super) struct RecentDurations {
    pub(super) values: Vec<u64>,
    next: usize,
}

impl RecentDurations {
    pub(super) fn new() -> RecentDurations {
        // Reserved up front so that recording never reallocates once the series exists.
        RecentDurations {
            values: Vec::with_capacity(RECENT_DURATIONS),
            next: 0,
        }
    }

    pub(super) fn push(&mut self, nanoseconds: u64) {
        if self.values.len() < RECENT_DURATIONS {
            self.values.push(nanoseconds);
        } else if let Some(slot) = self.values.get_mut(self.next) {
            *slot = nanoseconds;
        }
        self.next = (self.next + 1) % RECENT_DURATIONS;
    }
}

/// The nearest-rank percentile of sorted nanoseconds, in milliseconds: the smallest value with
/// at least `percent` percent of the values at or below it (0 when there are none).
pub(super) fn nearest_rank_milliseconds(sorted_nanoseconds: &[u64], percent: usize) -> f64 {
    let rank = (percent * sorted_nanoseconds.len()).div_ceil(100).max(1);
    sorted_nanoseconds
        .get(rank - 1)
        .map_or(0.0, |nanoseconds| *nanoseconds as f64 / 1_000_000.0)
}
