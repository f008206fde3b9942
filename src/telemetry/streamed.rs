//! The telemetry of streamed calls: the fields a stream adds to `llm.request` and
//! `llm.attempt`, and how a failed call's outcome, cost and stream fields are read from its
//! error (an interrupted stream was charged for what it received).

use std::time::Duration;

use super::event::StreamFields;
use super::metrics::{Metrics, RequestLabels};
use crate::client::{CompleteError, Completion, StreamStats};

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

/// A failed call's `prompt_config.outcome` (`error`, `stream_incomplete`, `cancelled`), what it
/// was charged in USD (an estimate, for an interrupted stream) and its stream fields.
pub(crate) fn failure_fields(error: &CompleteError) -> (&'static str, f64, Option<StreamFields>) {
    match error {
        CompleteError::Interrupted { kind, interruption } => (
            kind.as_str(),
            interruption.cost_usd,
            Some(StreamFields {
                stream: true,
                time_to_first_chunk: None,
                chunks: interruption
                    .attempts
                    .last()
                    .and_then(|attempt| attempt.stream)
                    .map_or(0, |stats| stats.chunks),
            }),
        ),
        other if other.kind() == crate::ErrorKind::Cancelled => ("cancelled", 0.0, None),
        _ => ("error", 0.0, None),
    }
}
