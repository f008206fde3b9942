//! Telemetry: every resolve, call, attempt, breaker transition, budget alert, reload and piece of
//! feedback becomes one JSON line in a log file (written by a background thread that never
//! blocks the caller and loses nothing on a clean shutdown), and live in-process metrics with a
//! Prometheus text exposition. `stats` reads the logs back for A/B analysis.

pub mod alerts;
pub(crate) mod emit;
internal_mod!(event);
internal_mod!(metrics);
pub mod otlp;
pub(crate) mod rebuild;
internal_mod!(recent);
pub(crate) mod sink;
pub mod stats;
mod streamed;
mod structured;
internal_mod!(writer);

pub use metrics::{
    BreakerSnapshot, DURATION_BUCKETS_SECONDS, FeedbackSnapshot, HistogramSnapshot,
    LatencyPercentiles, MetricsSnapshot, OtlpSnapshot, OutputLabels, OutputSnapshot,
    RECENT_DURATIONS, RequestLabels, RequestSnapshot, ResolveSnapshot, TOKEN_BUCKETS,
};
pub use writer::{
    DEFAULT_DROP_REPORT_INTERVAL, DEFAULT_FLUSH_INTERVAL, DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_MAX_QUEUE_BYTES, DEFAULT_QUEUE_CAPACITY, DEFAULT_ROTATE_BYTES, DEFAULT_ROTATED_FILES,
    WriterOptions,
};

use std::path::PathBuf;

/// Errors of the telemetry layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// The telemetry file could not be opened.
    #[error("telemetry file {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// An exporter or alert setting is unusable (a bad `OTEL_EXPORTER_OTLP_PROTOCOL`, a
    /// malformed `OTEL_EXPORTER_OTLP_HEADERS`, a URL that does not parse); names the setting,
    /// never a secret value.
    #[error("{setting}: {message}")]
    InvalidSettings {
        /// The setting: an environment variable, an engine options JSON pointer or a CLI flag.
        setting: String,
        /// What is wrong with it.
        message: String,
    },
    /// A feedback call had no request id, no metric, or an unusable value.
    #[error("{message}")]
    InvalidFeedback {
        /// What was wrong.
        message: String,
    },
}

impl TelemetryError {
    /// `io` or `invalid_feedback`.
    pub fn kind(&self) -> crate::ErrorKind {
        match self {
            TelemetryError::Io { .. } => crate::ErrorKind::Io,
            TelemetryError::InvalidFeedback { .. } => crate::ErrorKind::InvalidFeedback,
            TelemetryError::InvalidSettings { .. } => crate::ErrorKind::InvalidArgument,
        }
    }

    /// The file at fault, as JSON.
    pub fn details(&self) -> serde_json::Value {
        match self {
            TelemetryError::Io { path, .. } => {
                serde_json::json!({ "path": path.display().to_string() })
            }
            TelemetryError::InvalidFeedback { .. } => serde_json::json!({}),
            TelemetryError::InvalidSettings { setting, .. } => {
                serde_json::json!({ "argument": setting })
            }
        }
    }
}
