//! Figures per group of the `--by` dimensions: counts, error rate, nearest-rank latency
//! percentiles, tokens, cost (and how much of it is estimated), feedback means, streaming and
//! structured output.

use std::collections::BTreeMap;

use super::output::OutputAccumulator;
use super::read::Selection;
use super::report::{FeedbackStats, GroupStats, LatencyPercentiles};
use super::significance::nearest_rank;
use super::streams::StreamAccumulator;

/// What a group collects before its figures are computed.
#[derive(Default)]
struct Accumulator {
    requests: u64,
    errors: u64,
    latencies_ms: Vec<f64>,
    costs_usd: Vec<f64>,
    cost_usd: f64,
    estimated_cost_usd: f64,
    cost_estimated_requests: u64,
    input_tokens: u64,
    output_tokens: u64,
    feedback: BTreeMap<String, Vec<f64>>,
    stream: StreamAccumulator,
    output: OutputAccumulator,
}

/// One [`GroupStats`] per distinct key, sorted by key.
pub(super) fn summarize(selection: &Selection, by: &[String]) -> Vec<GroupStats> {
    let mut groups: BTreeMap<&[String], Accumulator> = BTreeMap::new();
    for request in &selection.requests {
        let group = groups.entry(request.key.as_slice()).or_default();
        group.requests += 1;
        group.cost_usd += request.cost_usd.unwrap_or(0.0);
        if request.cost_estimated {
            group.estimated_cost_usd += request.cost_usd.unwrap_or(0.0);
            group.cost_estimated_requests += 1;
        }
        group.input_tokens += request.input_tokens;
        group.output_tokens += request.output_tokens;
        if let Some(stream) = &request.stream {
            group.stream.add(stream);
        }
        if let Some(output) = &request.output {
            group.output.add(output, request.failed);
        }
        if request.failed {
            group.errors += 1;
            // Failures mix instant refusals and long timeouts, so their latency says more about
            // the kind of failure than about the group; the error rate accounts for them.
            continue;
        }
        group.latencies_ms.extend(request.latency_ms);
        group.costs_usd.extend(request.cost_usd);
    }
    for (index, feedback) in &selection.feedback {
        let (Some(request), Some(value)) =
            (selection.requests.get(*index), feedback.value.number())
        else {
            continue;
        };
        if let Some(group) = groups.get_mut(request.key.as_slice()) {
            group
                .feedback
                .entry(feedback.metric.clone())
                .or_default()
                .push(value);
        }
    }
    groups
        .into_iter()
        .map(|(key, group)| finish(by, key, group))
        .collect()
}

fn finish(by: &[String], key: &[String], mut group: Accumulator) -> GroupStats {
    group.latencies_ms.sort_by(f64::total_cmp);
    let latency_ms = match (
        nearest_rank(&group.latencies_ms, 50),
        nearest_rank(&group.latencies_ms, 95),
        nearest_rank(&group.latencies_ms, 99),
    ) {
        (Some(p50), Some(p95), Some(p99)) => Some(LatencyPercentiles { p50, p95, p99 }),
        _ => None,
    };
    GroupStats {
        key: by.iter().cloned().zip(key.iter().cloned()).collect(),
        requests: group.requests,
        errors: group.errors,
        error_rate: group.errors as f64 / group.requests as f64,
        latency_ms,
        mean_latency_ms: mean(&group.latencies_ms),
        input_tokens: group.input_tokens,
        output_tokens: group.output_tokens,
        mean_cost_usd: mean(&group.costs_usd),
        cost_usd: group.cost_usd,
        estimated_cost_usd: group.estimated_cost_usd,
        cost_estimated_requests: group.cost_estimated_requests,
        feedback: group
            .feedback
            .into_iter()
            .filter_map(|(metric, values)| {
                Some(FeedbackStats {
                    mean: mean(&values)?,
                    count: values.len() as u64,
                    metric,
                })
            })
            .collect(),
        stream: group.stream.finish(),
        output: group.output.finish(),
    }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}
