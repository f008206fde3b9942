//! Telemetry within one process: the engine's lines end to end, the live metrics and their
//! Prometheus text, `stats` over a telemetry log, and the writer (counts, batches, rotation,
//! line format, load). Several processes, SIGKILL and `fork()` are in
//! `tests/telemetry_writer_processes.rs`, which re-executes its own binary.

#[path = "../support/mod.rs"]
mod support;

mod cache;
mod engine;
mod metrics;
mod output_engine;
mod output_lines;
mod stats;
mod stats_output;
mod stats_streams;
mod writer;
mod writer_lines;
mod writer_load;
