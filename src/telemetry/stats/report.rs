//! The analysis result, serializable for `--json`; `text.rs` prints it as tables for people.

use chrono::{DateTime, Utc};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

/// Lines read from one file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileSummary {
    /// The file as given.
    pub path: String,
    /// Non-blank lines.
    pub lines_read: u64,
    /// Lines that were not JSON objects with an event name, or request and feedback lines
    /// without a valid timestamp (or metric).
    pub lines_skipped: u64,
}

/// Everything `stats` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsReport {
    /// Per file, in the order given.
    pub files: Vec<FileSummary>,
    /// Non-blank lines across all files.
    pub lines_read: u64,
    /// Unparseable lines across all files.
    pub lines_skipped: u64,
    /// The dimensions groups are cut by.
    pub by: Vec<String>,
    /// Events older than this were left out.
    pub since: Option<DateTime<Utc>>,
    /// `llm.request` events counted.
    pub requests: u64,
    /// `llm.request` events an evaluation made (`prompt_config.eval.run_id`): left out of
    /// every figure, since they are test runs of pinned versions, not users' requests.
    pub evaluation_requests: u64,
    /// `feedback` events joined to a counted request.
    pub feedback_events: u64,
    /// `feedback` events whose request is in none of the files.
    pub feedback_unmatched: u64,
    /// Events older than `since`, and feedback about such requests.
    pub dropped_before_since: u64,
    /// One per distinct value of the `by` dimensions, sorted.
    pub groups: Vec<GroupStats>,
    /// One per experiment found on requests, sorted by feature and experiment.
    pub experiments: Vec<ExperimentComparison>,
    /// Response cache lookups, hit rate and savings per feature, version and partition; empty
    /// (and absent from JSON) when no request looked in a cache.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache: Vec<super::CacheStats>,
    /// Structured output per feature, version, provider and model: answers, invalid-output
    /// rate and repairs; empty (and absent from JSON) when no version had an output schema or
    /// tools.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<super::OutputStats>,
    /// The latest `eval.run` of each feature and version, with how many runs the files hold,
    /// sorted by feature and version; empty (and absent from JSON) when no evaluation ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evaluations: Vec<super::EvaluationStats>,
}

impl StatsReport {
    /// The group whose `by` values are `values`, in order.
    pub fn group(&self, values: &[&str]) -> Option<&GroupStats> {
        self.groups.iter().find(|group| {
            group.key.len() == values.len()
                && group
                    .key
                    .iter()
                    .zip(values)
                    .all(|((_, have), want)| have == want)
        })
    }

    /// The latest evaluation of `version` of `feature`.
    pub fn evaluation(&self, feature: &str, version: &str) -> Option<&super::EvaluationStats> {
        self.evaluations
            .iter()
            .find(|found| found.feature == feature && found.version == version)
    }

    /// The comparison of `experiment` on `feature`.
    pub fn experiment(&self, feature: &str, experiment: &str) -> Option<&ExperimentComparison> {
        self.experiments
            .iter()
            .find(|found| found.feature == feature && found.experiment == experiment)
    }
}

/// The figures of one group of requests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupStats {
    /// Dimension and value pairs, in `by` order (a JSON object).
    #[serde(serialize_with = "pairs_as_object")]
    pub key: Vec<(String, String)>,
    /// Requests in the group.
    pub requests: u64,
    /// Requests that failed.
    pub errors: u64,
    /// `errors / requests`.
    pub error_rate: f64,
    /// Nearest-rank latency percentiles of successful requests.
    pub latency_ms: Option<LatencyPercentiles>,
    /// Mean latency of successful requests.
    pub mean_latency_ms: Option<f64>,
    /// `gen_ai.usage.input_tokens` summed over all requests.
    pub input_tokens: u64,
    /// `gen_ai.usage.output_tokens` summed over all requests.
    pub output_tokens: u64,
    /// Mean cost of a successful request in USD.
    pub mean_cost_usd: Option<f64>,
    /// Cost of all requests in USD, estimates included.
    pub cost_usd: f64,
    /// The part of `cost_usd` that is estimated (`prompt_config.cost_estimated`: the provider
    /// reported no usage, or the model had no price).
    pub estimated_cost_usd: f64,
    /// Requests whose cost is estimated.
    pub cost_estimated_requests: u64,
    /// Feedback means per metric, sorted by metric.
    pub feedback: Vec<FeedbackStats>,
    /// Streaming figures, when any request of the group streamed (absent from JSON otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<super::StreamGroupStats>,
    /// Structured-output figures, when any request of the group was of a version with an
    /// output schema or tools (absent from JSON otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<super::OutputGroupStats>,
}

impl GroupStats {
    /// This group's value of `dimension`.
    pub fn value(&self, dimension: &str) -> Option<&str> {
        self.key
            .iter()
            .find(|(name, _)| name == dimension)
            .map(|(_, value)| value.as_str())
    }

    /// The feedback figures of `metric`.
    pub fn feedback(&self, metric: &str) -> Option<&FeedbackStats> {
        self.feedback.iter().find(|stats| stats.metric == metric)
    }
}

fn pairs_as_object<S: Serializer>(
    pairs: &[(String, String)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut map = serializer.serialize_map(Some(pairs.len()))?;
    for (name, value) in pairs {
        map.serialize_entry(name, value)?;
    }
    map.end()
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyPercentiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// The mean of one feedback metric: booleans count as 1/0, strings are left out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeedbackStats {
    /// The metric.
    pub metric: String,
    /// Boolean and numeric values received.
    pub count: u64,
    /// Their mean.
    pub mean: f64,
}

/// One experiment's variants, each compared with the control.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExperimentComparison {
    /// The feature the experiment runs on.
    pub feature: String,
    /// The experiment.
    pub experiment: String,
    /// The variant the others are compared with.
    pub control: String,
    /// Every variant seen, sorted by name.
    pub variants: Vec<VariantSummary>,
    /// One per variant other than the control.
    pub comparisons: Vec<VariantComparison>,
}

impl ExperimentComparison {
    /// The comparison of `treatment` with the control.
    pub fn against(&self, treatment: &str) -> Option<&VariantComparison> {
        self.comparisons
            .iter()
            .find(|comparison| comparison.treatment == treatment)
    }
}

/// Request counts of one variant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantSummary {
    /// The variant.
    pub variant: String,
    /// Prompt versions its requests used.
    pub versions: Vec<String>,
    /// Requests.
    pub requests: u64,
    /// Failed requests.
    pub errors: u64,
}

/// One variant against the control, metric by metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantComparison {
    /// The variant compared with the control.
    pub treatment: String,
    /// Error rate, latency, cost, then feedback metrics by name.
    pub metrics: Vec<MetricComparison>,
}

impl VariantComparison {
    /// The comparison of `metric` (`error_rate`, `latency_ms`, `cost_usd`, `feedback.NAME`).
    pub fn metric(&self, metric: &str) -> Option<&MetricComparison> {
        self.metrics.iter().find(|found| found.metric == metric)
    }
}

/// The test behind a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StatisticalTest {
    /// Pooled two-proportion z-test.
    TwoProportionZ,
    /// Welch's unequal-variance t-test.
    WelchT,
}

/// One metric of a variant against the control.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricComparison {
    /// `error_rate`, `latency_ms`, `cost_usd` or `feedback.NAME`.
    pub metric: String,
    /// How verdicts name it: `error rate`, `latency`, `cost`, `NAME rate`, `mean NAME`.
    pub label: String,
    /// The test used.
    pub test: StatisticalTest,
    /// Control observations.
    pub control_count: u64,
    /// Control rate or mean.
    pub control_value: Option<f64>,
    /// Treatment observations.
    pub treatment_count: u64,
    /// Treatment rate or mean.
    pub treatment_value: Option<f64>,
    /// Treatment minus control.
    pub difference: Option<f64>,
    /// The difference as a fraction of the control value.
    pub relative_difference: Option<f64>,
    /// z or t, positive when the treatment is higher.
    pub statistic: Option<f64>,
    /// Welch–Satterthwaite degrees of freedom (t-tests only).
    pub degrees_of_freedom: Option<f64>,
    /// Two-sided p-value; absent when there is too little data to test.
    pub p_value: Option<f64>,
    /// `p_value < 0.05`.
    pub significant: bool,
    /// Observations per variant for 80% power at alpha 0.05 if the observed difference is real.
    pub required_per_variant: Option<u64>,
    /// The plain-language conclusion.
    pub verdict: String,
}
