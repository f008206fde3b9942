//! The telemetry of streamed calls: the fields a stream adds to `llm.request` and
//! `llm.attempt`, and how a failed call's outcome, cost and stream fields are read from its
//! error (an interrupted stream was charged for what it received).

use std::time::Duration;

use super::event::StreamFields;
use super::metrics::{Metrics, RequestLabels};
use crate::client::{CompleteError, Completion, StreamStats, Usage};

/// Records a completed stream that received text in the time-to-first-chunk histogram, and its
/// mean gap between later chunks (the call's time after the first chunk over the gaps) in the
/// time-per-chunk one. A `complete()` records nothing here.
pub(crate) fn record_metrics(
    metrics: &Metrics,
    labels: &RequestLabels<'_>,
    completion: &Completion,
) {
    let Some(stats) = completion.stream.filter(|stats| stats.chunks > 0) else {
        return;
    };
    let first = stats.time_to_first_token_ms.max(0.0);
    let per_chunk = (stats.chunks > 1).then(|| {
        let after_first = (completion.latency_ms - first).max(0.0);
        Duration::from_secs_f64(after_first / (stats.chunks - 1) as f64 / 1000.0)
    });
    metrics.record_stream(labels, Duration::from_secs_f64(first / 1000.0), per_chunk);
}

/// The telemetry fields of a stream's figures (milliseconds become OpenTelemetry's seconds).
pub(crate) fn stream_fields(stats: StreamStats) -> StreamFields {
    StreamFields {
        stream: true,
        time_to_first_chunk: (stats.chunks > 0).then(|| stats.time_to_first_token_ms / 1000.0),
        chunks: stats.chunks,
    }
}

/// What the `llm.request` line of a failed call says beyond its error.
pub(crate) struct FailureFields {
    /// `prompt_config.outcome`: `error`, `stream_incomplete` or `cancelled`.
    pub(crate) outcome: &'static str,
    /// What the call was charged in USD (an estimate, for an interrupted stream).
    pub(crate) cost_usd: f64,
    /// The token counts that charge was for (estimated with it), zero when nothing was charged.
    pub(crate) usage: Usage,
    /// The interrupted stream's fields.
    pub(crate) stream: Option<StreamFields>,
}

/// The `llm.request` fields of a failed call: an interrupted stream was charged for the prompt
/// and the text it received, and its line carries those counts and the stream's figures as a
/// finished stream's line does.
pub(crate) fn failure_fields(error: &CompleteError) -> FailureFields {
    match error {
        CompleteError::Interrupted { kind, interruption } => FailureFields {
            outcome: kind.as_str(),
            cost_usd: interruption.cost_usd,
            usage: interruption.usage,
            stream: Some(match interruption.stream {
                Some(stats) => stream_fields(stats),
                // An interruption without the call's figures (a replayed cache answer).
                None => StreamFields {
                    stream: true,
                    time_to_first_chunk: None,
                    chunks: interruption
                        .attempts
                        .last()
                        .and_then(|attempt| attempt.stream)
                        .map_or(0, |stats| stats.chunks),
                },
            }),
        },
        other => {
            // Answers the call could not use (invalid, refused, cut) were paid for: the line
            // carries what budgets were charged.
            let (cost_usd, usage) = other.charged().unwrap_or((0.0, Usage::default()));
            FailureFields {
                outcome: if other.kind() == crate::ErrorKind::Cancelled {
                    "cancelled"
                } else {
                    "error"
                },
                cost_usd,
                usage,
                stream: None,
            }
        }
    }
}
