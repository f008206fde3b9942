//! Shared fleet state (issue 11) against real Redis servers that each test starts on its own
//! loopback port (tests/support/redis_server.rs): the test servers themselves, the budget and
//! rate-limit primitives on one server and on a 3-master cluster, and Redis down or stalled.
//!
//! Every test here needs `redis-server` and `redis-cli`: build.rs marks them ignored when those
//! are missing (`pc_missing_redis`), unless `CI` is set, where they fail instead.

#[path = "../support/mod.rs"]
mod support;

mod breaker;
mod budget;
mod cache;
mod cluster;
mod fleet_budget;
mod fleet_degraded;
mod fleet_rate;
mod fleet_reconcile;
mod fleet_refusal;
mod fleet_settings;
mod rate;
mod servers;
mod shared;
mod unavailable;
