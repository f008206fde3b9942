//! Live in-process metrics: per-series counters, histograms and recent latencies of every
//! `complete()`, resolve and piece of feedback, plus circuit-breaker states and dropped telemetry
//! events, read back as a [`MetricsSnapshot`] or as Prometheus text. Recording happens on every
//! request, so each family is a map behind its own lock that is held only for arithmetic, and
//! looking up an existing series borrows the caller's labels instead of allocating owned keys.

mod alerts;
mod cache;
mod otlp;
mod output;
mod prometheus;
mod series;
mod snapshot;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
pub use alerts::AlertDeliverySnapshot;
pub use cache::CacheSnapshot;
pub use otlp::{OtlpCounters, OtlpSignal, OtlpSnapshot};
pub use output::{OutputLabels, OutputSnapshot};
pub use snapshot::{
    BreakerSnapshot, FeedbackSnapshot, HistogramSnapshot, LatencyPercentiles, MetricsSnapshot, RequestSnapshot,
    ResolveSnapshot,
};

use crate::client::{BreakerState, Usage};
use series::{Histogram, LabelView, RecentDurations, SeriesKey, update_series};
use snapshot::{breaker_gauge, request_snapshot};

/// Upper bounds in seconds of the `gen_ai.client.operation.duration` buckets (OpenTelemetry GenAI).
pub const DURATION_BUCKETS_SECONDS: [f64; BUCKET_COUNT] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// Upper bounds in tokens of the `gen_ai.client.token.usage` buckets (OpenTelemetry GenAI).
pub const TOKEN_BUCKETS: [f64; BUCKET_COUNT] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

/// Upper bounds in seconds of the `gen_ai.client.operation.time_to_first_chunk` buckets: the
/// duration buckets, since the first chunk of a slow model can take as long as a whole call.
pub const TIME_TO_FIRST_CHUNK_BUCKETS_SECONDS: [f64; BUCKET_COUNT] = DURATION_BUCKETS_SECONDS;

/// Upper bounds in seconds of the `gen_ai.client.operation.time_per_output_chunk` buckets:
/// from 1 ms (a fast model's token) to 2.5 s (a stall just under a typical limit).
pub const TIME_PER_OUTPUT_CHUNK_BUCKETS_SECONDS: [f64; BUCKET_COUNT] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5,
];

/// How many of a series' most recent durations its latency percentiles are computed from.
pub const RECENT_DURATIONS: usize = 1024;

/// The finite bucket bounds of both histograms; an overflow bucket (`+Inf`) follows them.
const BUCKET_COUNT: usize = 14;

/// The `error.type` OpenTelemetry prescribes when an error has no better name.
const OTHER_ERROR_TYPE: &str = "_OTHER";

/// Labels of one request series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLabels<'a> {
    /// The feature (`gen_ai.prompt.name`).
    pub feature: &'a str,
    /// The prompt version (`gen_ai.prompt.version`).
    pub version: &'a str,
    /// The experiment variant, when an experiment decided.
    pub variant: Option<&'a str>,
    /// The provider that answered, or the last one tried (`gen_ai.provider.name`).
    pub provider: &'a str,
    /// The model that answered, or the last one tried (`gen_ai.request.model`).
    pub model: &'a str,
}

impl RequestLabels<'_> {
    fn values(&self) -> [Option<&str>; 5] {
        [
            Some(self.feature),
            Some(self.version),
            present(self.variant),
            Some(self.provider),
            Some(self.model),
        ]
    }
}

/// Series by label values, hashed with foldhash rather than SipHash: every request and resolve
/// hashes its labels here. foldhash is seeded at random per map, as SipHash is in std, which
/// keeps collisions hard to plan from outside.
type SeriesMap<const N: usize, V> = HashMap<SeriesKey<N>, V, hashbrown::DefaultHashBuilder>;

/// Live counters, histograms and gauges of one engine; cheap to record into from any thread.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<SeriesMap<5, RequestSeries>>,
    resolves: Mutex<SeriesMap<3, u64>>,
    feedback: Mutex<SeriesMap<4, FeedbackTotals>>,
    breakers: Mutex<BTreeMap<String, BreakerState>>,
    dropped_events: AtomicU64,
    /// 1 while the fleet's shared state is degraded, else 0.
    state_degraded: AtomicU64,
    /// How often the shared state became degraded.
    state_degradations: AtomicU64,
    cache: cache::CacheCounters,
    output: output::OutputCounters,
    /// The OTLP exporter's delivery counters, shared with the exporter's thread.
    otlp: std::sync::Arc<OtlpCounters>,
    alerts: alerts::AlertCounters,
}

impl Metrics {
    /// Metrics with no series yet.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// One response cache lookup of a `complete()` for `feature`/`version` in `partition`:
    /// a hit saving `saved_usd`, or a miss.
    pub fn record_cache(
        &self,
        feature: &str,
        version: &str,
        partition: Option<&str>,
        hit: bool,
        saved_usd: f64,
    ) {
        self.cache
            .record(feature, version, partition, hit, saved_usd);
    }

    /// One answer validated against a version's output schema or tools, by the provider and
    /// model that gave it: `invalid` when it broke the schema, `repair` when it was a repair
    /// attempt (the previous answer of the same model was invalid).
    pub fn record_output(&self, labels: &OutputLabels<'_>, invalid: bool, repair: bool) {
        self.output.record(labels, invalid, repair);
    }

    /// One `complete()` call: a success when `error_type` is `None`, else an error of that type.
    ///
    /// Token histograms only see successful calls, because a failed call reports no usage and its
    /// zeros would drag the distribution down; token and cost sums take whatever is passed. A
    /// negative or non-finite cost counts as zero so the cost counter never goes backwards.
    pub fn record_request(
        &self,
        labels: &RequestLabels<'_>,
        error_type: Option<&str>,
        duration: Duration,
        usage: &Usage,
        cost_usd: f64,
    ) {
        self.record_call(labels, error_type, duration, usage, cost_usd, false);
    }

    /// [`Metrics::record_request`] for a call whose cost may be estimated: an estimated cost
    /// counts in the total cost and also in the estimated cost and estimated-call counters.
    pub fn record_call(
        &self,
        labels: &RequestLabels<'_>,
        error_type: Option<&str>,
        duration: Duration,
        usage: &Usage,
        cost_usd: f64,
        cost_estimated: bool,
    ) {
        let observation = RequestObservation {
            cost_estimated,
            error_type: error_type.map(|name| present(Some(name)).unwrap_or(OTHER_ERROR_TYPE)),
            seconds: duration.as_secs_f64(),
            nanoseconds: u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX),
            usage,
            cost_usd: if cost_usd.is_finite() && cost_usd > 0.0 {
                cost_usd
            } else {
                0.0
            },
        };
        let mut requests = self.requests.lock();
        update_series(
            &mut requests,
            labels.values(),
            RequestSeries::new,
            |series| series.record(&observation),
        );
    }

    /// One streamed call that received text: its time to the first chunk, and the mean gap
    /// between later chunks (`None` with a single chunk). OpenTelemetry records the gap per
    /// chunk; one mean per call keeps the stream's reading loop free of metric locks.
    pub fn record_stream(
        &self,
        labels: &RequestLabels<'_>,
        time_to_first_chunk: Duration,
        time_per_output_chunk: Option<Duration>,
    ) {
        let mut requests = self.requests.lock();
        update_series(
            &mut requests,
            labels.values(),
            RequestSeries::new,
            |series| {
                let totals = &mut series.totals;
                totals.streams += 1;
                totals.time_to_first_chunk.observe(
                    &TIME_TO_FIRST_CHUNK_BUCKETS_SECONDS,
                    time_to_first_chunk.as_secs_f64(),
                );
                if let Some(gap) = time_per_output_chunk {
                    totals
                        .time_per_output_chunk
                        .observe(&TIME_PER_OUTPUT_CHUNK_BUCKETS_SECONDS, gap.as_secs_f64());
                }
            },
        );
    }

    /// One resolve, counted per feature, version and variant.
    pub fn record_resolve(&self, feature: &str, version: &str, variant: Option<&str>) {
        let labels = [Some(feature), Some(version), present(variant)];
        let mut resolves = self.resolves.lock();
        update_series(&mut resolves, labels, || 0, |count| *count += 1);
    }

    /// One feedback value (a boolean as 1 or 0), counted and summed per metric and request.
    ///
    /// Feature, version and variant are those of the request when it is still known. A
    /// non-finite value is ignored: one NaN would turn the series' sum and mean into NaN forever.
    pub fn record_feedback(
        &self,
        feature: Option<&str>,
        version: Option<&str>,
        variant: Option<&str>,
        metric: &str,
        value: f64,
    ) {
        if !value.is_finite() {
            return;
        }
        let labels = [
            present(feature),
            present(version),
            present(variant),
            Some(metric),
        ];
        let mut feedback = self.feedback.lock();
        update_series(&mut feedback, labels, FeedbackTotals::default, |totals| {
            totals.count += 1;
            totals.sum += value;
        });
    }

    /// The current state of a circuit breaker (a provider, or `provider/model`).
    pub fn set_breaker_state(&self, breaker: &str, state: BreakerState) {
        let mut breakers = self.breakers.lock();
        match breakers.get_mut(breaker) {
            Some(current) => *current = state,
            None => {
                breakers.insert(breaker.to_owned(), state);
            }
        }
    }

    /// The telemetry writer's running total of dropped events.
    ///
    /// A lower total than already seen is ignored, because the exposed counter must never
    /// decrease.
    pub fn set_dropped_events(&self, total: u64) {
        self.dropped_events.fetch_max(total, Ordering::Relaxed);
    }

    /// One alert on `channel` (its name in `alerts.json`) with `outcome` `sent` or `failed`
    /// (after the retries): `prompt_config_alert_deliveries_total{channel,outcome}`.
    pub fn record_alert_delivery(&self, channel: &str, outcome: &'static str) {
        self.alerts.record(channel, outcome);
    }

    /// The alerts queue's running total of records it dropped because it was full:
    /// `prompt_config_alert_records_dropped_total` (a lower total is ignored).
    pub fn set_alert_records_dropped(&self, total: u64) {
        self.alerts.set_dropped(total);
    }

    /// The shared state (Redis) became degraded (`true`: gauge 1, one more degradation
    /// counted) or was restored (`false`: gauge 0).
    pub fn set_state_degraded(&self, degraded: bool) {
        self.state_degraded
            .store(u64::from(degraded), Ordering::Relaxed);
        if degraded {
            self.state_degradations.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The OTLP exporter's counters, for the exporter to count into.
    pub fn otlp_counters(&self) -> std::sync::Arc<OtlpCounters> {
        std::sync::Arc::clone(&self.otlp)
    }

    /// Every series as plain data, sorted by labels, with latency percentiles.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let collected = self.collect(true);
        MetricsSnapshot {
            requests: collected
                .requests
                .into_iter()
                .map(request_snapshot)
                .collect(),
            resolves: collected
                .resolves
                .into_iter()
                .map(|(key, resolves)| {
                    let [feature, version, variant] = key.0;
                    ResolveSnapshot {
                        feature: feature.unwrap_or_default(),
                        version: version.unwrap_or_default(),
                        variant,
                        resolves,
                    }
                })
                .collect(),
            feedback: collected
                .feedback
                .into_iter()
                .map(|(key, totals)| {
                    let [feature, version, variant, metric] = key.0;
                    FeedbackSnapshot {
                        feature,
                        version,
                        variant,
                        metric: metric.unwrap_or_default(),
                        count: totals.count,
                        sum: totals.sum,
                        mean: totals.mean(),
                    }
                })
                .collect(),
            breakers: collected
                .breakers
                .into_iter()
                .map(|(breaker, state)| BreakerSnapshot {
                    breaker,
                    state: state.as_str().to_owned(),
                    gauge: breaker_gauge(state),
                })
                .collect(),
            dropped_events: collected.dropped_events,
            state_degraded: collected.state_degraded,
            state_degradations: collected.state_degradations,
            cache: collected.cache,
            output: collected.output,
            otlp: collected.otlp,
            alert_deliveries: self.alerts.snapshot(),
        }
    }

    /// Every series in the Prometheus text exposition format 0.0.4.
    pub fn prometheus_text(&self) -> String {
        let mut text = prometheus::render(&self.collect(false));
        // Appended after the other families; writing into a String cannot fail.
        let _ = alerts::render(&self.alerts.snapshot(), self.alerts.dropped(), &mut text);
        text
    }

    /// Copies every series out, sorted, so the locks are released before any sorting or
    /// formatting; recent durations are copied only when asked for.
    fn collect(&self, with_recent_durations: bool) -> Collected {
        let mut requests: Vec<CollectedRequest> = self
            .requests
            .lock()
            .iter()
            .map(|(key, series)| CollectedRequest {
                key: key.clone(),
                totals: series.totals.clone(),
                recent_nanoseconds: if with_recent_durations {
                    series.recent.values.clone()
                } else {
                    Vec::new()
                },
            })
            .collect();
        requests.sort_by(|left, right| left.key.cmp(&right.key));
        let mut resolves: Vec<_> = self
            .resolves
            .lock()
            .iter()
            .map(|(key, count)| (key.clone(), *count))
            .collect();
        resolves.sort_by(|left, right| left.0.cmp(&right.0));
        let mut feedback: Vec<_> = self
            .feedback
            .lock()
            .iter()
            .map(|(key, totals)| (key.clone(), *totals))
            .collect();
        feedback.sort_by(|left, right| left.0.cmp(&right.0));
        let breakers = self
            .breakers
            .lock()
            .iter()
            .map(|(name, state)| (name.clone(), *state))
            .collect();
        Collected {
            requests,
            resolves,
            feedback,
            breakers,
            dropped_events: self.dropped_events.load(Ordering::Relaxed),
            state_degraded: self.state_degraded.load(Ordering::Relaxed),
            state_degradations: self.state_degradations.load(Ordering::Relaxed),
            cache: self.cache.snapshot(),
            output: self.output.snapshot(),
            otlp: self.otlp.snapshot(),
        }
    }
}


/// An empty label value is no value: exposed, `""` and an absent label are the same series.
fn present(value: Option<&str>) -> Option<&str> {
    value.filter(|value| !value.is_empty())
}

/// One request, prepared before taking the lock.
struct RequestObservation<'a> {
    cost_estimated: bool,
    error_type: Option<&'a str>,
    seconds: f64,
    nanoseconds: u64,
    usage: &'a Usage,
    cost_usd: f64,
}

#[derive(Debug)]
struct RequestSeries {
    totals: RequestTotals,
    recent: RecentDurations,
}

impl RequestSeries {
    fn new() -> RequestSeries {
        RequestSeries {
            totals: RequestTotals::default(),
            recent: RecentDurations::new(),
        }
    }

    fn record(&mut self, observation: &RequestObservation<'_>) {
        let totals = &mut self.totals;
        match observation.error_type {
            None => {
                totals.successes += 1;
                let usage = observation.usage;
                // OpenTelemetry's input token count includes cached tokens, however billed,
                // and so does ours.
                totals
                    .input_token_usage
                    .observe(&TOKEN_BUCKETS, usage.input_tokens as f64);
                totals
                    .output_token_usage
                    .observe(&TOKEN_BUCKETS, usage.output_tokens as f64);
            }
            Some(error_type) => match totals.errors.get_mut(error_type) {
                Some(count) => *count += 1,
                None => {
                    totals.errors.insert(error_type.to_owned(), 1);
                }
            },
        }
        totals
            .duration
            .observe(&DURATION_BUCKETS_SECONDS, observation.seconds);
        let usage = observation.usage;
        totals.input_tokens = totals.input_tokens.saturating_add(usage.input_tokens);
        totals.output_tokens = totals.output_tokens.saturating_add(usage.output_tokens);
        totals.cache_read_input_tokens = totals
            .cache_read_input_tokens
            .saturating_add(usage.cache_read_input_tokens);
        if usage.cache_read_input_tokens > 0 {
            totals.cache_hits += 1;
        }
        totals.cost_usd += observation.cost_usd;
        if observation.cost_estimated {
            totals.estimated_cost_usd += observation.cost_usd;
            totals.cost_estimated_requests += 1;
        }
        self.recent.push(observation.nanoseconds);
    }
}

/// The cumulative part of a request series, cheap to copy out for exposition.
#[derive(Debug, Clone, Default)]
struct RequestTotals {
    successes: u64,
    errors: BTreeMap<String, u64>,
    duration: Histogram,
    input_token_usage: Histogram,
    output_token_usage: Histogram,
    input_tokens: u64,
    output_tokens: u64,
    cache_read_input_tokens: u64,
    cost_usd: f64,
    estimated_cost_usd: f64,
    cost_estimated_requests: u64,
    cache_hits: u64,
    /// Streamed calls that received text.
    streams: u64,
    time_to_first_chunk: Histogram,
    time_per_output_chunk: Histogram,
}

impl RequestTotals {
    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct FeedbackTotals {
    count: u64,
    sum: f64,
}

impl FeedbackTotals {
    fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }
}

/// A request series copied out of its lock.
struct CollectedRequest {
    key: SeriesKey<5>,
    totals: RequestTotals,
    recent_nanoseconds: Vec<u64>,
}

/// Every series copied out of the locks, each family sorted by labels.
struct Collected {
    requests: Vec<CollectedRequest>,
    resolves: Vec<(SeriesKey<3>, u64)>,
    feedback: Vec<(SeriesKey<4>, FeedbackTotals)>,
    breakers: Vec<(String, BreakerState)>,
    dropped_events: u64,
    state_degraded: u64,
    state_degradations: u64,
    cache: Vec<CacheSnapshot>,
    output: Vec<OutputSnapshot>,
    otlp: OtlpSnapshot,
}
