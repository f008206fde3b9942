//! The figures of issue 14: what evaluating costs beyond the calls it makes, and how many cases
//! a second `Engine::evaluate` gets through on the mock provider with concurrency 8, all on the
//! shipped dataset (`config/evals/career_path_navigator/`).
//!
//! - `eval_grade/typical_case_VERSION_N_assertions`: grading the first shipped case's
//!   assertions that apply to 2.0.0 (prose: contains, regex, limits) or 2.2.0 (JSON: is_json,
//!   json_schema, json_path, limits) on an `Observation` of a real mock answer, no call.
//! - `eval_bookkeeping/complete_per_case_2.2.0`: `Engine::complete` of each of the 24 cases'
//!   contexts on the zero-latency mock, alone (the calls the runs make);
//!   `eval_bookkeeping/evaluate_per_case_2.2.0`: `Engine::evaluate`
//!   of the 24 cases at concurrency 1 on the same mock (per element = per case). Their
//!   difference is the bookkeeping an evaluation adds per case: the pinned context, grading,
//!   the per-case and per-version reports and the worker thread.
//! - `eval_throughput/concurrency_8_zero_latency`: the 24 cases against 2.0.0 and 2.2.0 (48
//!   runs and their comparison) at concurrency 8 on the zero-latency mock (CPU-bound: cases/s
//!   is the ceiling the machine allows).
//! - `eval_shipped_mock/concurrency_8`: one timed evaluation of the same 48 runs on the shipped
//!   mock (350 ms + up to 600 ms of jitter per call, a mean of 650 ms, so about
//!   concurrency / 0.65 s = 12 cases/s), printed once rather than sampled (it takes seconds).
//!
//! The fixtures are the shipped configuration (a temporary copy) with the rate limits lifted
//! and the budgets raised, so thousands of calls a second are neither limited nor downgraded.

#[path = "../tests/support/temp_dir.rs"]
mod temp_dir;

#[path = "../tests/support/fixture.rs"]
mod fixture;

#[path = "../tests/support/eval.rs"]
mod eval_support;

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fixture::Fixture;
use prompt_config::Engine;
use prompt_config::eval::{Assertion, Dataset, EvalOptions, Observation};
use serde_json::{Value, json};

const FEATURE: &str = "career_path_navigator";

/// Lifts the fixture's rate limits and raises its budgets: a benchmark makes more calls a
/// minute than the shipped limits allow, and the downgrade policy would change the model.
fn unlimited(fixture: &Fixture) {
    let providers = fixture.config_dir().join("providers.json");
    fixture.edit_json(&providers, |document| {
        document["budget"] = json!({"daily_usd": 1.0e9, "monthly_usd": 1.0e9, "policy": "block"});
        if let Some(Value::Object(providers)) = document.get_mut("providers") {
            for provider in providers.values_mut() {
                if let Some(settings) = provider.as_object_mut() {
                    settings.remove("rate_limit");
                }
            }
        }
    });
    fixture.edit_feature(|feature| {
        feature["budget"] = json!({"daily_usd": 1.0e9, "monthly_usd": 1.0e9, "policy": "block"});
    });
}

/// The zero-latency mock engine of `tests/support/eval.rs`, unlimited.
fn fast_engine() -> (Fixture, Engine) {
    let fixture = eval_support::fast_mock_fixture();
    unlimited(&fixture);
    let engine = eval_support::mock_engine(&fixture);
    (fixture, engine)
}

/// The shipped mock (its latency and jitter as shipped), unlimited.
fn shipped_engine() -> (Fixture, Engine) {
    let fixture = Fixture::new();
    unlimited(&fixture);
    let engine = eval_support::mock_engine(&fixture);
    (fixture, engine)
}

/// The shipped dataset, `config/evals/career_path_navigator/` (24 cases with prose
/// assertions for 2.0.0 and 2.1.0, JSON ones for 2.2.0, and common limits).
fn shipped_dataset(fixture: &Fixture) -> Dataset {
    let files = Dataset::feature_files(&fixture.config_dir(), FEATURE).unwrap();
    Dataset::load_all(&files).unwrap()
}

fn options(versions: &[&str], concurrency: usize) -> EvalOptions {
    EvalOptions::default()
        .versions(versions.iter().copied())
        .concurrency(concurrency)
}

/// Grading the first shipped case's assertions that apply to `version` on an observation of
/// that version's real mock answer, as the runner does (the threshold applied to each grade).
fn grade(criterion: &mut Criterion) {
    let (fixture, engine) = fast_engine();
    let dataset = shipped_dataset(&fixture);
    let case = &dataset.cases[0];
    let mut group = criterion.benchmark_group("eval_grade");
    for version in ["2.0.0", "2.2.0"] {
        let context = case.context.clone().pin_version(version);
        let completion = engine.complete(FEATURE, &context).unwrap();
        let observation = Observation::of(&completion);
        let assertions: Vec<&Assertion> = case
            .assertions
            .iter()
            .filter(|assertion| assertion.applies_to(version))
            .collect();
        let name = format!("typical_case_{version}_{}_assertions", assertions.len());
        group.bench_function(name, |bencher| {
            bencher.iter(|| {
                for assertion in &assertions {
                    black_box(assertion.with_threshold(assertion.grade(black_box(&observation))));
                }
            })
        });
    }
    // Every shipped case on 2.2.0, per case: the grading share of `evaluate_per_case_2.2.0`.
    let completions: Vec<_> = dataset
        .cases
        .iter()
        .map(|case| {
            engine
                .complete(FEATURE, &case.context.clone().pin_version("2.2.0"))
                .unwrap()
        })
        .collect();
    group.throughput(Throughput::Elements(dataset.cases.len() as u64));
    group.bench_function("every_case_2.2.0", |bencher| {
        bencher.iter(|| {
            for (case, completion) in dataset.cases.iter().zip(&completions) {
                let observation = Observation::of(completion);
                for assertion in case.assertions.iter().filter(|a| a.applies_to("2.2.0")) {
                    black_box(assertion.with_threshold(assertion.grade(&observation)));
                }
            }
        })
    });
    group.finish();
}

/// `complete()` of each case's context alone against `evaluate()` of the same cases, both on
/// 2.2.0 (the JSON version, whose assertions cost the most to grade) at concurrency 1; an
/// element is one case.
fn bookkeeping(criterion: &mut Criterion) {
    let (fixture, engine) = fast_engine();
    let dataset = shipped_dataset(&fixture);
    let contexts: Vec<_> = dataset
        .cases
        .iter()
        .map(|case| case.context.clone().pin_version("2.2.0"))
        .collect();
    let mut group = criterion.benchmark_group("eval_bookkeeping");
    group.throughput(Throughput::Elements(contexts.len() as u64));
    group.bench_function("complete_per_case_2.2.0", |bencher| {
        bencher.iter(|| {
            for context in &contexts {
                black_box(engine.complete(FEATURE, black_box(context)).unwrap());
            }
        })
    });
    group.bench_function("evaluate_per_case_2.2.0", |bencher| {
        bencher.iter(|| {
            engine
                .evaluate(FEATURE, black_box(&dataset), &options(&["2.2.0"], 1))
                .unwrap()
        })
    });
    group.finish();
}

/// The shipped dataset against 2.0.0 and 2.2.0 (48 runs, compared) at concurrency 8 on the
/// zero-latency mock; an element is one case on one version.
fn throughput(criterion: &mut Criterion) {
    let (fixture, engine) = fast_engine();
    let dataset = shipped_dataset(&fixture);
    let mut group = criterion.benchmark_group("eval_throughput");
    group.throughput(Throughput::Elements(2 * dataset.cases.len() as u64));
    group.bench_function("concurrency_8_zero_latency", |bencher| {
        bencher.iter(|| {
            engine
                .evaluate(
                    FEATURE,
                    black_box(&dataset),
                    &options(&["2.0.0", "2.2.0"], 8),
                )
                .unwrap()
        })
    });
    group.finish();
}

/// One timed evaluation on the shipped mock, printed: its latency dominates, so a single run
/// of the shipped dataset against two versions (48 runs, six rounds of eight) measures cases/s
/// well enough.
fn shipped_mock(criterion: &mut Criterion) {
    // Not sampled by criterion: it only gives the group its place in the run order.
    let _ = criterion;
    let (fixture, engine) = shipped_engine();
    let dataset = shipped_dataset(&fixture);
    let started = Instant::now();
    let report = engine
        .evaluate(FEATURE, &dataset, &options(&["2.0.0", "2.2.0"], 8))
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let runs = 2 * dataset.cases.len();
    let passed: Vec<String> = report
        .versions
        .iter()
        .map(|version| {
            format!(
                "{} {}/{} passed, p50 {:.0} ms",
                version.version, version.cases_passed, version.cases_total, version.latency_ms.p50
            )
        })
        .collect();
    println!(
        "eval_shipped_mock/concurrency_8: {runs} cases in {seconds:.2} s = {:.1} cases/s ({})",
        runs as f64 / seconds,
        passed.join("; ")
    );
}

criterion_group!(benches, grade, bookkeeping, throughput, shipped_mock);
criterion_main!(benches);
