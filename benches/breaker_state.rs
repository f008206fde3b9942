//! What sharing breaker knowledge with the fleet costs a call: `complete()` on the mock provider
//! (no simulated latency) with the memory backend and with the Redis backend, measured in one
//! run (on this branch the breakers are the only Redis users of `complete()`), plus the one
//! round trip a breaker makes at most once a second (`GET` of its published `open_until`).
//! A `redis-server` on loopback is started by the bench in a temp dir, as the tests do.

#[path = "../tests/support/redis_server.rs"]
mod redis_server;
#[path = "../tests/support/temp_dir.rs"]
mod temp_dir;

use std::fs;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use prompt_config::state::{RedisSettings, StateBackend};
use prompt_config::{Context, Engine, EngineOptions};
use redis_server::RedisServer;
use serde_json::json;

/// One feature on one mocked provider with a breaker (the defaults).
fn write_config(root: &Path) {
    fs::create_dir_all(root.join("config/features")).unwrap();
    fs::create_dir_all(root.join("prompts/bench/1.0.0")).unwrap();
    let template = "Role: {{ role }}";
    fs::write(root.join("prompts/bench/1.0.0/user.j2"), template).unwrap();
    let providers = json!({"providers": {"openai": {
        "kind": "openai", "mock": {"latency_ms": 0},
        "models": {"gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6}}
    }}});
    let feature = json!({
        "feature": "bench", "active_version": "1.0.0",
        "model": {"provider": "openai", "name": "gpt-4o-mini"},
        "versions": {"1.0.0": {
            "status": "released",
            "sha256": {"user.j2": prompt_config::prompt::sha256_hex(template.as_bytes())},
            "messages": [{"role": "user", "template": "user.j2"}],
            "variables": {"type": "object", "properties": {"role": {"type": "string"}}, "required": ["role"]}
        }}
    });
    fs::write(root.join("config/providers.json"), providers.to_string()).unwrap();
    fs::write(root.join("config/features/bench.json"), feature.to_string()).unwrap();
}

fn engine(root: &Path, state: StateBackend) -> Engine {
    let options = EngineOptions::new(root.join("config"), root.join("prompts"))
        .with_mock(true)
        .with_state(state);
    Engine::open(options).unwrap()
}

fn breaker_state(c: &mut Criterion) {
    let server = RedisServer::start();
    let dir = temp_dir::TempDir::new("bench_breaker_state");
    write_config(dir.path());
    let context = Context::new("user-42").variable("role", "Data Analyst");
    let memory = engine(dir.path(), StateBackend::Memory);
    let settings = RedisSettings::new(&server.url()).unwrap();
    let redis = engine(dir.path(), StateBackend::Redis(settings));
    let state = server.state();

    let mut group = c.benchmark_group("breaker_state");
    // Interleaved A/B: both engines measured in the same run, on the same machine load.
    group.bench_function("complete_memory", |b| {
        b.iter(|| black_box(memory.complete("bench", &context).unwrap()))
    });
    group.bench_function("complete_redis", |b| {
        b.iter(|| black_box(redis.complete("bench", &context).unwrap()))
    });
    group.bench_function("lookup_round_trip", |b| {
        b.iter(|| black_box(state.breaker_lookup("openai").unwrap()))
    });
    group.finish();
}

criterion_group!(benches, breaker_state);
criterion_main!(benches);
