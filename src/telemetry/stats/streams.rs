//! Streaming in `stats`: per group, how many requests streamed, their time to first chunk
//! (median and p95), chunks, and the share that ended `stream_incomplete` or `cancelled`. Read
//! from the stream fields of `llm.request` lines (`prompt_config.stream`,
//! `gen_ai.response.time_to_first_chunk` in seconds, `prompt_config.stream.chunks`) and their
//! `prompt_config.outcome`.

use serde::Serialize;
use serde_json::{Map, Value};

/// The stream fields of one `llm.request` line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct StreamLine {
    /// `gen_ai.response.time_to_first_chunk` in milliseconds; only completed streams that
    /// received text carry it.
    pub time_to_first_chunk_ms: Option<f64>,
    /// `prompt_config.stream.chunks`, 0 when absent.
    pub chunks: u64,
    /// How the stream ended, from `prompt_config.outcome`.
    pub ending: StreamEnding,
}

/// How a streamed request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StreamEnding {
    /// `success`, or any outcome not listed below.
    Other,
    /// `stream_incomplete`: cut, stalled or broken after the first chunk.
    Incomplete,
    /// `cancelled`: the caller stopped it.
    Cancelled,
}

impl StreamLine {
    /// The stream fields of a line, `None` unless it carries `prompt_config.stream: true`.
    /// (A stream that failed or was cancelled before its first chunk is logged without them,
    /// like any failed call, so it counts as an error of its group but not as a stream.)
    pub fn read(fields: &Map<String, Value>) -> Option<StreamLine> {
        if fields.get("prompt_config.stream").and_then(Value::as_bool) != Some(true) {
            return None;
        }
        let ending = match fields.get("prompt_config.outcome").and_then(Value::as_str) {
            Some("stream_incomplete") => StreamEnding::Incomplete,
            Some("cancelled") => StreamEnding::Cancelled,
            _ => StreamEnding::Other,
        };
        Some(StreamLine {
            time_to_first_chunk_ms: fields
                .get("gen_ai.response.time_to_first_chunk")
                .and_then(Value::as_f64)
                .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
                .map(|seconds| seconds * 1000.0),
            chunks: fields
                .get("prompt_config.stream.chunks")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            ending,
        })
    }
}

/// The streaming figures of one group; absent (and left out of JSON) when none of its requests
/// streamed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamGroupStats {
    /// Requests logged with `prompt_config.stream: true`.
    pub streams: u64,
    /// Nearest-rank time to first chunk in milliseconds, over the streams that carry it
    /// (completed streams that received text); `None` when none does.
    pub time_to_first_chunk_ms: Option<TimeToFirstChunk>,
    /// Chunks received, summed over the streams (interrupted ones included).
    pub chunks: u64,
    /// `chunks / streams`.
    pub mean_chunks: f64,
    /// Streams that ended `stream_incomplete`.
    pub incomplete: u64,
    /// `incomplete / streams`.
    pub incomplete_rate: f64,
    /// Streams that ended `cancelled`.
    pub cancelled: u64,
    /// `cancelled / streams`.
    pub cancelled_rate: f64,
}

/// Time to first chunk percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TimeToFirstChunk {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
}

/// What a group's streams collect before their figures are computed.
#[derive(Debug, Default)]
pub(super) struct StreamAccumulator {
    streams: u64,
    times_to_first_chunk_ms: Vec<f64>,
    chunks: u64,
    incomplete: u64,
    cancelled: u64,
}

impl StreamAccumulator {
    /// Counts one streamed request.
    pub fn add(&mut self, line: &StreamLine) {
        self.streams += 1;
        self.times_to_first_chunk_ms
            .extend(line.time_to_first_chunk_ms);
        self.chunks += line.chunks;
        match line.ending {
            StreamEnding::Incomplete => self.incomplete += 1,
            StreamEnding::Cancelled => self.cancelled += 1,
            StreamEnding::Other => {}
        }
    }

    /// The group's figures, `None` when it had no stream.
    pub fn finish(mut self) -> Option<StreamGroupStats> {
        if self.streams == 0 {
            return None;
        }
        self.times_to_first_chunk_ms.sort_by(f64::total_cmp);
        let percentile =
            |percent| super::significance::nearest_rank(&self.times_to_first_chunk_ms, percent);
        let time_to_first_chunk_ms = percentile(50)
            .zip(percentile(95))
            .map(|(p50, p95)| TimeToFirstChunk { p50, p95 });
        let streams = self.streams as f64;
        Some(StreamGroupStats {
            streams: self.streams,
            time_to_first_chunk_ms,
            chunks: self.chunks,
            mean_chunks: self.chunks as f64 / streams,
            incomplete: self.incomplete,
            incomplete_rate: self.incomplete as f64 / streams,
            cancelled: self.cancelled,
            cancelled_rate: self.cancelled as f64 / streams,
        })
    }
}
