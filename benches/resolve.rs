//! Resolve plus render of the shipped feature, load plus validate of the shipped config, and
//! `Engine::open` of 1,000 copies of the shipped feature (time, and resident memory printed once).

use std::hint::black_box;
use std::path::{Path, PathBuf};

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
        bencher
            .iter(|| Snapshot::load(black_box(&options.paths)).map(|snapshot| snapshot.summary()))
    });
}

/// How many renamed copies of the shipped feature `open_1000_features` loads.
const MANY: usize = 1_000;

/// Writes `MANY` copies of `career_path_navigator` (feature file and prompts, renamed
/// `feature_0000`...) plus the shipped providers.json under `root`; returns the options.
fn many_features(root: &Path) -> EngineOptions {
    let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = root.join("config");
    let prompts = root.join("prompts");
    let features = config.join("features");
    std::fs::create_dir_all(&features).expect("temp config dir");
    std::fs::copy(
        shipped.join("config/providers.json"),
        config.join("providers.json"),
    )
    .expect("copy providers.json");
    let feature =
        std::fs::read_to_string(shipped.join("config/features/career_path_navigator.json"))
            .expect("shipped feature");
    let versions = shipped.join("prompts/career_path_navigator");
    for index in 0..MANY {
        let name = format!("feature_{index:04}");
        std::fs::write(
            features.join(format!("{name}.json")),
            feature.replace("career_path_navigator", &name),
        )
        .expect("write feature");
        for version in std::fs::read_dir(&versions)
            .expect("shipped prompts")
            .flatten()
        {
            let target = prompts.join(&name).join(version.file_name());
            std::fs::create_dir_all(&target).expect("temp prompts dir");
            for file in std::fs::read_dir(version.path())
                .expect("version dir")
                .flatten()
            {
                std::fs::copy(file.path(), target.join(file.file_name())).expect("copy template");
            }
        }
    }
    EngineOptions::new(config, prompts)
}

/// Resident set size of this process in bytes, from /proc/self/statm (Linux; 0 elsewhere).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn open_many(criterion: &mut Criterion) {
    let root = std::env::temp_dir().join(format!("prompt_config_bench_{}", std::process::id()));
    let options = many_features(&root);
    // Memory first, in a fresh state: what one open engine holds on top of the process.
    let before = resident_bytes();
    let engine = Engine::open(options.clone()).expect("1,000 features load");
    let after = resident_bytes();
    eprintln!(
        "open_1000_features: resident memory {:.1} MiB before open, {:.1} MiB after, {:.1} MiB held ({} features)",
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        after.saturating_sub(before) as f64 / 1048576.0,
        engine.snapshot().summary().features,
    );
    drop(engine);
    let mut group = criterion.benchmark_group("open");
    group.sample_size(10);
    group.bench_function("open_1000_features", |bencher| {
        bencher.iter(|| Engine::open(black_box(options.clone())).map(drop))
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&root);
}

criterion_group!(benches, resolve, open_many);
criterion_main!(benches);
