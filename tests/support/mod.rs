//! Code shared by the integration tests, one module per kind of helper. Each test binary
//! declares it once (`#[path = "../support/mod.rs"] mod support;` from `tests/AREA/main.rs`,
//! `mod support;` from a binary at `tests/NAME.rs`) and imports what it uses from
//! `crate::support::...`. The benches include `http_server.rs` and `telemetry_records.rs` by
//! path, so those two depend on no other module here; `redis_server.rs` (also included by a
//! bench) depends only on `temp_dir.rs`, which that bench includes beside it, with
//! `one_feature.rs` and `fleet.rs` (which uses only `one_feature.rs`).

pub mod alert_records;
pub mod alert_receiver;
pub mod cache;
pub mod cli;
pub mod engine_faults;
pub mod eval;
pub mod fixture;
pub mod fleet;
pub mod http_server;
pub mod one_feature;
pub mod otlp_collector;
pub mod prometheus;
pub mod provider_fixtures;
pub mod redis_server;
pub mod release;
pub mod sse_fixtures;
pub mod stream_engine;
pub mod summary_tree;
pub mod telemetry_records;
pub mod temp_dir;
pub mod writer_harness;
