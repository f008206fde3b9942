//! Telemetry: every resolve, call, attempt, breaker transition, budget alert, reload and piece of
//! feedback becomes one JSON line in a log file (written by a background thread that never
//! blocks the caller and loses nothing on a clean shutdown), and live in-process metrics with a
//! Prometheus text exposition. `stats` reads the logs back for A/B analysis.

pub mod event;
pub mod metrics;
pub mod stats;
pub mod writer;
