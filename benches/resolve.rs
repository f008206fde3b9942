//! Resolve plus render of the shipped feature, and load plus validate of the shipped config.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use prompt_config::{Context, Engine, EngineOptions, Snapshot, Source};
use serde_json::json;

fn options() -> EngineOptions {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    EngineOptions::new(root.join("config"), root.join("prompts"))
}

fn subject(user: &str) -> Context {
    Context::new(user)
        .attribute("sector", "technology")
        .attribute("degree", "BSc Economics")
        .variable("current_role", "Data Analyst")
        .variable("degree", "BSc Economics")
        .variable("skills", json!(["SQL", "Excel", "Tableau"]))
        .variable("sector", "technology")
        .variable("goals", "Move into product management within two years")
        .variable("years_experience", 4)
}

/// A subject whose resolution takes `source`, so each path is measured on its own.
fn subject_with(engine: &Engine, source: Source) -> Context {
    (0..10_000)
        .map(|n| subject(&format!("user-{n}")))
        .find(|candidate| {
            engine
                .resolve("career_path_navigator", candidate)
                .is_ok_and(|r| r.source == source)
        })
        .expect("no subject for that source")
}

fn resolve(criterion: &mut Criterion) {
    let engine = Engine::open(options()).expect("shipped config loads");
    let mut group = criterion.benchmark_group("resolve_and_render");
    for (name, source) in [
        ("active", Source::Active),
        ("experiment", Source::Experiment),
    ] {
        let context = subject_with(&engine, source);
        group.bench_function(name, |bencher| {
            bencher.iter(|| engine.resolve(black_box("career_path_navigator"), black_box(&context)))
        });
    }
    group.finish();

    criterion.bench_function("load_and_validate_config_dir", |bencher| {
        let options = options();
        bencher.iter(|| Snapshot::load(black_box(&options)).map(|snapshot| snapshot.summary()))
    });
}

criterion_group!(benches, resolve);
criterion_main!(benches);
