//! The figures of issue 14: what evaluating costs beyond the calls it makes, and how many cases
//! a second `Engine::evaluate` gets through on the mock provider with concurrency 8.
//!
//! - `eval_grade/typical_case`: grading one typical case's assertions (text, regex, tokens,
//!   latency, cost, finish reason) on an `Observation` of a real mock answer, no call.
//! - `eval_bookkeeping/complete`: one `Engine::complete` on the zero-latency mock, alone (the
//!   call every run makes); `eval_bookkeeping/evaluate_per_case`: `Engine::evaluate` of 32
//!   cases at concurrency 1 on the same mock (per element = per case). Their difference is the
//!   bookkeeping an evaluation adds per case: the pinned context, grading, the per-case and
//!   per-version reports, the comparison and the scoped worker thread.
//! - `eval_throughput/concurrency_8_zero_latency`: 64 cases at concurrency 8 on the
//!   zero-latency mock (bookkeeping- and CPU-bound: cases/s is the ceiling).
//! - `shipped mock`: one timed evaluation of 48 cases at concurrency 8 on the shipped mock
//!   (350 ms + up to 600 ms of jitter per call, so about concurrency / 0.65 s = 12 cases/s),
//!   printed once rather than sampled (each run takes seconds of real time).
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
use fixture::{Fixture, profile};
use prompt_config::eval::{Assertion, AssertionKind, Case, Dataset, EvalOptions, Observation};
use prompt_config::{Context, Engine};
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

/// The assertions of a typical case on a prose version.
fn typical_assertions() -> Vec<Assertion> {
    let text = |kind: fn(String, bool) -> AssertionKind, value: &str, case_sensitive| {
        Assertion::new(kind(value.to_string(), case_sensitive))
    };
    vec![
        text(
            |value, case_sensitive| AssertionKind::Contains {
                value,
                case_sensitive,
            },
            "Paths",
            false,
        ),
        text(
            |value, case_sensitive| AssertionKind::NotContains {
                value,
                case_sensitive,
            },
            "lorem ipsum",
            true,
        ),
        Assertion::new(AssertionKind::Regex {
            pattern: regex::Regex::new(r"(?i)\b(step|course)\b").unwrap(),
        }),
        Assertion::new(AssertionKind::MaxTokens { value: 900 }),
        Assertion::new(AssertionKind::MaxLatencyMs { value: 5000.0 }),
        Assertion::new(AssertionKind::MaxCostUsd { value: 0.01 }),
        Assertion::new(AssertionKind::FinishReason {
            value: "stop".to_string(),
        }),
    ]
}

/// `count` cases with distinct subjects and goals (so the mock's answers differ) and the
/// typical assertions.
fn dataset(count: usize) -> Dataset {
    let cases = (0..count)
        .map(|index| {
            let mut variables = profile();
            variables.insert(
                "goals".to_string(),
                json!(format!("Goal number {index}: move into a data role")),
            );
            Case::new(
                format!("case-{index}"),
                Context::new(format!("user-{index}")).with_variables(variables),
                typical_assertions(),
            )
        })
        .collect();
    Dataset::new("bench", cases)
}

fn options(concurrency: usize) -> EvalOptions {
    EvalOptions::default()
        .versions(["2.0.0"])
        .concurrency(concurrency)
}

fn grade(criterion: &mut Criterion) {
    let (_fixture, engine) = fast_engine();
    let context = Context::new("user-1").with_variables(profile());
    let completion = engine
        .complete(FEATURE, &context.pin_version("2.0.0"))
        .unwrap();
    let observation = Observation::of(&completion);
    let assertions = typical_assertions();
    criterion.bench_function("eval_grade/typical_case", |bencher| {
        bencher.iter(|| {
            for assertion in &assertions {
                black_box(assertion.with_threshold(assertion.grade(black_box(&observation))));
            }
        })
    });
}

fn bookkeeping(criterion: &mut Criterion) {
    let (_fixture, engine) = fast_engine();
    let context = Context::new("user-1")
        .with_variables(profile())
        .pin_version("2.0.0");
    let mut group = criterion.benchmark_group("eval_bookkeeping");
    group.throughput(Throughput::Elements(1));
    group.bench_function("complete", |bencher| {
        bencher.iter(|| engine.complete(FEATURE, black_box(&context)).unwrap())
    });
    let cases = 32;
    let data = dataset(cases);
    group.throughput(Throughput::Elements(cases as u64));
    group.bench_function("evaluate_per_case", |bencher| {
        bencher.iter(|| {
            engine
                .evaluate(FEATURE, black_box(&data), &options(1))
                .unwrap()
        })
    });
    group.finish();
}

fn throughput(criterion: &mut Criterion) {
    let (_fixture, engine) = fast_engine();
    let cases = 64;
    let data = dataset(cases);
    let mut group = criterion.benchmark_group("eval_throughput");
    group.throughput(Throughput::Elements(cases as u64));
    group.bench_function("concurrency_8_zero_latency", |bencher| {
        bencher.iter(|| {
            engine
                .evaluate(FEATURE, black_box(&data), &options(8))
                .unwrap()
        })
    });
    group.finish();
}

/// One timed evaluation on the shipped mock, printed: its latency dominates, so a single run
/// of 48 cases (six rounds of eight) measures cases/s well enough.
fn shipped_mock(criterion: &mut Criterion) {
    // Not sampled by criterion: it only gives the group its place in the run order.
    let _ = criterion;
    let (_fixture, engine) = shipped_engine();
    let cases = 48;
    let data = dataset(cases);
    let started = Instant::now();
    let report = engine.evaluate(FEATURE, &data, &options(8)).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let version = &report.versions[0];
    println!(
        "eval_shipped_mock/concurrency_8: {cases} cases in {seconds:.2} s = {:.1} cases/s \
         (call latency p50 {:.0} ms, p95 {:.0} ms; {} of {} cases passed)",
        cases as f64 / seconds,
        version.latency_ms.p50,
        version.latency_ms.p95,
        version.cases_passed,
        version.cases_total
    );
}

criterion_group!(benches, grade, bookkeeping, throughput, shipped_mock);
criterion_main!(benches);
