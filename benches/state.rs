//! The fleet state's cost (issue 11), against a real `redis-server` on loopback (started by the
//! bench in a temp dir, as the tests do):
//! - one round trip of each primitive: a budget reserve + settle pair (two scripts), a
//!   rate-limit acquire (one script) and a PING for the floor;
//! - `complete()` on the mock provider (no latency) with one feature budget (day) and a
//!   provider RPM + TPM limit, on the memory backend and on Redis, in the same run: the
//!   difference is what shared state adds to a call (five scripts: reserve, RPM, TPM, settle,
//!   TPM refund).

#[path = "../tests/support/fleet.rs"]
mod fleet;
#[path = "../tests/support/one_feature.rs"]
mod one_feature;
#[path = "../tests/support/redis_server.rs"]
mod redis_server;
#[path = "../tests/support/temp_dir.rs"]
mod temp_dir;

use std::hint::black_box;
use std::time::Duration;

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use prompt_config::Engine;
use prompt_config::state::StateBackend;
use prompt_config::state::budget::{BudgetWindow, Period, ReserveOutcome};
use prompt_config::state::rate::RateLimit;
use redis_server::RedisServer;
use serde_json::json;

fn primitives(c: &mut Criterion, server: &RedisServer) {
    let state = server.state();
    let window = BudgetWindow::new("feature:bench", Period::Day, Utc::now());
    let mut group = c.benchmark_group("state");
    group.bench_function("ping", |b| b.iter(|| state.ping().unwrap()));
    group.bench_function("budget_reserve_settle", |b| {
        b.iter(|| {
            let outcome = state
                .reserve(&window, None, 10_000, 0, Duration::from_secs(60))
                .unwrap();
            let ReserveOutcome::Reserved { reservation, .. } = outcome else {
                panic!("no limit: always reserved")
            };
            black_box(
                state
                    .settle(&window, &reservation, 9_000, None, "bench")
                    .unwrap(),
            )
        })
    });
    let limit = RateLimit::new("provider:bench:rpm", 1_000_000_000, Duration::from_secs(60));
    group.bench_function("rate_acquire", |b| {
        b.iter(|| black_box(state.acquire(&limit, 1, 0).unwrap()))
    });
    group.finish();
}

fn complete(c: &mut Criterion, server: &RedisServer) {
    let config = fleet::config(
        Some(json!({"daily_usd": 1_000_000.0})),
        Some(
            json!({"requests_per_minute": 1_000_000_000u64, "tokens_per_minute": 1_000_000_000_000u64}),
        ),
    );
    let open = |state: StateBackend| {
        Engine::open(
            prompt_config::EngineOptions::new(
                config.root.join("config"),
                config.root.join("prompts"),
            )
            .with_state(state),
        )
        .unwrap()
    };
    let memory = open(StateBackend::Memory);
    let redis = open(fleet::redis(&server.url(), Duration::from_millis(50)));
    let context = one_feature::asking("x");
    let mut group = c.benchmark_group("complete_mock");
    group.bench_function("memory", |b| {
        b.iter(|| black_box(memory.complete("ask", &context).unwrap()))
    });
    group.bench_function("redis", |b| {
        b.iter(|| black_box(redis.complete("ask", &context).unwrap()))
    });
    group.finish();
    assert_eq!(
        redis.metrics().state_degradations,
        0,
        "Redis failed during the bench: the figures are not Redis's"
    );
}

fn state(c: &mut Criterion) {
    let server = RedisServer::start();
    primitives(c, &server);
    complete(c, &server);
}

criterion_group!(benches, state);
criterion_main!(benches);
