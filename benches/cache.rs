//! A response cache hit through `Engine::complete` (issue 11): resolve, key, lookup and the
//! completion built from the stored answer, with the in-process (moka) store and with Redis on
//! loopback (started by the bench in a temp dir, as the tests do). For scale, the same call
//! with the cache off on the mock provider with no simulated latency.

#[path = "../tests/support/fixture.rs"]
mod fixture;
#[path = "../tests/support/redis_server.rs"]
mod redis_server;
#[path = "../tests/support/temp_dir.rs"]
mod temp_dir;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use prompt_config::state::{RedisSettings, StateBackend};
use prompt_config::{Context, Engine, EngineOptions};
use redis_server::RedisServer;
use serde_json::json;

const FEATURE: &str = "career_path_navigator";

/// The shipped configuration with the mock's simulated latency, rate limits and budgets off
/// (a bench makes far more calls than they allow) and, when `cached`, the navigator's answers
/// cached for an hour by role, degree and sector.
fn fixture(cached: bool) -> fixture::Fixture {
    let fixture = fixture::Fixture::new();
    let providers = fixture.config_dir().join("providers.json");
    fixture.edit_json(&providers, |document| {
        if let Some(object) = document.as_object_mut() {
            object.remove("budget");
        }
        if let Some(providers) = document["providers"].as_object_mut() {
            for provider in providers.values_mut() {
                provider["mock"] = json!({"latency_ms": 0, "jitter_ms": 0});
                if let Some(provider) = provider.as_object_mut() {
                    provider.remove("rate_limit");
                }
                if let Some(models) = provider["models"].as_object_mut() {
                    for model in models.values_mut() {
                        if let Some(model) = model.as_object_mut() {
                            model.remove("rate_limit");
                        }
                    }
                }
            }
        }
    });
    fixture.edit_feature(|feature| {
        if let Some(object) = feature.as_object_mut() {
            object.remove("budget");
        }
    });
    if cached {
        fixture.edit_feature(|feature| {
            feature["cache"] = json!({
                "ttl_seconds": 3600,
                "key_variables": ["current_role", "degree", "sector"],
                "normalize": {"trim": true, "case_fold": true},
                "partition_by": ["sector"],
                "allow_temperature_above_zero": true
            });
        });
    }
    fixture
}

fn open(options: EngineOptions) -> Engine {
    let engine = Engine::open(options.with_mock(true)).unwrap();
    // The first call fills the cache (when there is one) and warms every lazy table.
    engine.complete(FEATURE, &context()).unwrap();
    engine
}

fn context() -> Context {
    Context::new("42")
        .attribute("sector", "technology")
        .with_variables(fixture::profile())
}

fn cache(c: &mut Criterion) {
    let server = RedisServer::start();
    let plain = fixture(false);
    let cached = fixture(true);
    let uncached = open(plain.options());
    let memory = open(cached.options());
    let patient = Duration::from_secs(1);
    let redis = open(
        cached.options().with_state(StateBackend::Redis(
            RedisSettings::new(&server.url())
                .unwrap()
                .with_timeouts(patient, patient),
        )),
    );
    let context = context();
    assert!(memory.complete(FEATURE, &context).unwrap().cache.is_some());
    assert!(redis.complete(FEATURE, &context).unwrap().cache.is_some());

    let mut group = c.benchmark_group("cache");
    group.bench_function("complete_uncached_mock", |b| {
        b.iter(|| black_box(uncached.complete(FEATURE, &context).unwrap()))
    });
    group.bench_function("hit_memory", |b| {
        b.iter(|| black_box(memory.complete(FEATURE, &context).unwrap()))
    });
    group.bench_function("hit_redis", |b| {
        b.iter(|| black_box(redis.complete(FEATURE, &context).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, cache);
criterion_main!(benches);
