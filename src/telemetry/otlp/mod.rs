//! OTLP export (issue 15): the engine's telemetry records as OpenTelemetry spans (one parent
//! span per `complete()`/`stream()`, a resolve span and a `chat {model}` client span per
//! attempt, GenAI semantic conventions), log records (events that are not spans) and metrics,
//! sent over OTLP/HTTP (protobuf by default, JSON as an option) from the exporter's own
//! background thread: batched, gzip-compressed, retried with backoff on 429/502/503/504 as the
//! OTLP specification asks, and dropped (counted) when its bounded queue is full. Nothing here
//! runs on the caller's thread but the sink's `accept` (a push onto the queue).
//!
//! - `options.rs`, `env.rs`: [`OtlpOptions`], from code or the `OTEL_*` environment variables
//!   ([`OtlpOptions::from_env`]).
//! - `exporter.rs`, `transport.rs`: the queue, the thread, batching, encoding, gzip, retries.
//! - `convert/`: records to OTLP messages (spans, logs, metrics) and the pinned semantic
//!   conventions.

pub(crate) mod convert;
mod env;
mod options;
// Public (hidden) to this crate's tests and benches only: the transport is driven without a
// converter, the exporter fed records directly.
internal_mod!(exporter);
internal_mod!(transport);

pub use options::{OtlpCloseListener, OtlpOptions, OtlpProtocol};

/// The OpenTelemetry semantic conventions the exported names follow, recorded as the
/// resource's and scopes' `schema_url` (the telemetry lines use the same names).
pub const SEMCONV_VERSION: &str = "1.41.0";

/// `https://opentelemetry.io/schemas/{SEMCONV_VERSION}`.
pub const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.41.0";
