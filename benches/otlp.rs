//! OTLP exporter costs (issue 15): what the exporter adds to a `complete()` on the caller's
//! thread (the zero-latency mock, exporter off and on in the same run, the exporter sending to
//! a loopback collector), and export throughput: spans per second through the whole pipeline
//! (queue, conversion, protobuf encoding, gzip, POST to a loopback collector), the records fed
//! straight to the exporter so the callers' own work is not counted.

#[path = "../tests/support/otlp_collector.rs"]
mod otlp_collector;
#[path = "../tests/support/telemetry_records.rs"]
mod telemetry_records;

use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use otlp_collector::OtlpCollector;
use prompt_config::telemetry::event::TelemetryRecord;
use prompt_config::telemetry::metrics::Metrics;
use prompt_config::telemetry::otlp::OtlpOptions;
use prompt_config::telemetry::otlp::exporter::OtlpExporter;
use prompt_config::telemetry::sink::RecordSink;
use prompt_config::{Context, Engine, EngineOptions};
use serde_json::json;
use telemetry_records::{attempt_record, request_record, resolve_record};

/// Calls per timed throughput round (three records each).
const THROUGHPUT_CALLS: u64 = 20_000;

/// Timed throughput rounds; the median is reported.
const THROUGHPUT_ROUNDS: usize = 5;

/// A config directory with one zero-latency mock provider and a one-template feature.
fn write_config(root: &Path) {
    let _ = fs::remove_dir_all(root);
    fs::create_dir_all(root.join("config/features")).unwrap();
    fs::create_dir_all(root.join("prompts/bench/1.0.0")).unwrap();
    let template = "You are a careful career advisor.\nRole: {{ role }}\nGoals: {{ goals }}";
    fs::write(root.join("prompts/bench/1.0.0/user.j2"), template).unwrap();
    let providers = json!({"providers": {"openai": {
        "kind": "mock", "base_url": "http://127.0.0.1:9", "api_key_env": "PROMPT_CONFIG_BENCH_KEY",
        "models": {"gpt-4o-mini": {"input_per_million": 0.15, "output_per_million": 0.6}}
    }}});
    let feature = json!({
        "feature": "bench", "active_version": "1.0.0",
        "model": {"provider": "openai", "name": "gpt-4o-mini", "parameters": {"temperature": 0.4, "max_tokens": 300}},
        "versions": {"1.0.0": {
            "status": "released",
            "sha256": {"user.j2": prompt_config::prompt::sha256_hex(template.as_bytes())},
            "messages": [{"role": "user", "template": "user.j2"}],
            "variables": {"type": "object", "properties": {"role": {"type": "string"}, "goals": {"type": "string"}}, "required": ["role", "goals"]}
        }}
    });
    fs::write(root.join("config/providers.json"), providers.to_string()).unwrap();
    fs::write(root.join("config/features/bench.json"), feature.to_string()).unwrap();
}

fn context() -> Context {
    Context::new("user-42")
        .variable("role", "Data Analyst")
        .variable("goals", "Move into product management")
}

/// The calling thread's CPU time spent in `work`.
fn thread_cpu(work: impl FnOnce()) -> Duration {
    let read = || {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid timespec to write into.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
        Duration::new(
            u64::try_from(now.tv_sec).unwrap_or(0),
            u32::try_from(now.tv_nsec).unwrap_or(0),
        )
    };
    let started = read();
    work();
    read().saturating_sub(started)
}

/// The caller's cost of `complete()` on the mock, exporter off, then on (same run).
fn caller_cost(criterion: &mut Criterion) {
    let root: PathBuf =
        std::env::temp_dir().join(format!("prompt-config-otlp-bench-{}", std::process::id()));
    write_config(&root);
    let collector = OtlpCollector::start();
    collector.discard_bodies();
    let off = Engine::open(EngineOptions::new(
        root.join("config"),
        root.join("prompts"),
    ))
    .unwrap();
    let mut on_options = EngineOptions::new(root.join("config"), root.join("prompts"));
    on_options.otlp = Some(OtlpOptions::new(collector.endpoint()));
    let on = Engine::open(on_options).unwrap();
    // With a telemetry log already written (the usual production setting) the records exist
    // either way: the exporter's own share is then its queue push alone.
    let log_off = Engine::open(
        EngineOptions::new(root.join("config"), root.join("prompts"))
            .with_telemetry(root.join("off.jsonl")),
    )
    .unwrap();
    let mut log_on_options = EngineOptions::new(root.join("config"), root.join("prompts"))
        .with_telemetry(root.join("on.jsonl"));
    log_on_options.otlp = Some(OtlpOptions::new(collector.endpoint()));
    let log_on = Engine::open(log_on_options).unwrap();
    let context = context();
    let mut group = criterion.benchmark_group("otlp");
    group.bench_function("complete_mock_exporter_off", |bencher| {
        bencher.iter(|| {
            off.complete(black_box("bench"), black_box(&context))
                .unwrap()
        })
    });
    group.bench_function("complete_mock_exporter_on", |bencher| {
        bencher.iter(|| {
            on.complete(black_box("bench"), black_box(&context))
                .unwrap()
        })
    });
    // The caller's own CPU time per call (its thread's clock): on a shared 2-core machine the
    // exporter thread's work also slows the caller's wall clock by taking its core.
    group.bench_function("complete_mock_exporter_off_thread_cpu", |bencher| {
        bencher.iter_custom(|iterations| {
            thread_cpu(|| {
                for _ in 0..iterations {
                    black_box(
                        off.complete(black_box("bench"), black_box(&context))
                            .unwrap(),
                    );
                }
            })
        })
    });
    group.bench_function("complete_mock_exporter_on_thread_cpu", |bencher| {
        bencher.iter_custom(|iterations| {
            thread_cpu(|| {
                for _ in 0..iterations {
                    black_box(
                        on.complete(black_box("bench"), black_box(&context))
                            .unwrap(),
                    );
                }
            })
        })
    });
    for (name, engine) in [
        ("complete_mock_log_exporter_off_thread_cpu", &log_off),
        ("complete_mock_log_exporter_on_thread_cpu", &log_on),
    ] {
        group.bench_function(name, |bencher| {
            bencher.iter_custom(|iterations| {
                thread_cpu(|| {
                    for _ in 0..iterations {
                        black_box(
                            engine
                                .complete(black_box("bench"), black_box(&context))
                                .unwrap(),
                        );
                    }
                })
            })
        });
    }
    group.finish();
    log_off.close();
    log_on.close();
    paced(&off, &on, &context);
    on.close();
    let counted = on.metrics().otlp;
    println!(
        "otlp/caller: exported {} spans, {} log records, {} metric points; dropped queue_full {}, rejected {}, failed {}",
        counted.spans_exported,
        counted.log_records_exported,
        counted.metric_points_exported,
        counted.dropped_queue_full,
        counted.dropped_rejected,
        counted.dropped_failed
    );
    let _ = fs::remove_dir_all(&root);
}

/// Calls made at a steady 10,000 per second in `paced`, far below the exporter's throughput,
/// so its thread is mostly idle as in production.
const PACED_CALLS: u32 = 20_000;

/// The calling thread's CPU per `complete()` at 10,000 calls per second (one every 100 µs),
/// exporter off then on, alternating blocks of 1,000 calls; the median of the blocks.
fn paced(off: &Engine, on: &Engine, context: &Context) {
    let period = Duration::from_micros(100);
    let mut blocks: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for block in 0..(PACED_CALLS / 1000) {
        for (index, engine) in [off, on].into_iter().enumerate() {
            let mut cpu = Duration::ZERO;
            let mut next = Instant::now();
            for _ in 0..1000 {
                cpu += thread_cpu(|| {
                    black_box(
                        engine
                            .complete(black_box("bench"), black_box(context))
                            .unwrap(),
                    );
                });
                next += period;
                while Instant::now() < next {
                    std::hint::spin_loop();
                }
            }
            blocks[index].push(cpu.as_secs_f64() * 1e6 / 1000.0);
        }
        let _ = block;
    }
    for list in &mut blocks {
        list.sort_by(f64::total_cmp);
    }
    let median = |list: &Vec<f64>| list[list.len() / 2];
    println!(
        "otlp/paced 10k calls/s: caller CPU per complete() off {:.2} µs, on {:.2} µs (+{:.2} µs), median of {} blocks of 1,000",
        median(&blocks[0]),
        median(&blocks[1]),
        median(&blocks[1]) - median(&blocks[0]),
        blocks[0].len()
    );
}

/// Spans per second from the queue to the collector's 200: records of `THROUGHPUT_CALLS`
/// calls (resolve, attempt, request each) accepted, then flushed.
fn throughput(_criterion: &mut Criterion) {
    let collector = OtlpCollector::start();
    collector.discard_bodies();
    let mut rates = Vec::new();
    for round in 0..THROUGHPUT_ROUNDS {
        let metrics = Metrics::new();
        let mut options = OtlpOptions::new(collector.endpoint());
        options.max_queue = usize::try_from(THROUGHPUT_CALLS * 3).unwrap();
        options.metrics_interval = Duration::from_secs(3600);
        let exporter = OtlpExporter::start(&options, metrics.otlp_counters(), SystemTime::now());
        let offset = u64::try_from(round).unwrap() * THROUGHPUT_CALLS;
        let records: Vec<Arc<TelemetryRecord>> = (offset..offset + THROUGHPUT_CALLS)
            .flat_map(|call| {
                [
                    resolve_record(call),
                    attempt_record(call),
                    request_record(call),
                ]
            })
            .map(Arc::new)
            .collect();
        let started = Instant::now();
        for record in &records {
            exporter.accept(record);
        }
        let flushed = exporter.flush(Duration::from_secs(600));
        let elapsed = started.elapsed();
        exporter.close(Duration::from_secs(60));
        let counted = metrics.snapshot().otlp;
        let rate = counted.spans_exported as f64 / elapsed.as_secs_f64();
        println!(
            "otlp/throughput round {round}: {} spans + {} log records in {elapsed:?} (flushed: {flushed}; dropped {}/{}/{}): {rate:.0} spans/s",
            counted.spans_exported,
            counted.log_records_exported,
            counted.dropped_queue_full,
            counted.dropped_rejected,
            counted.dropped_failed
        );
        rates.push(rate);
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "otlp/throughput: median {:.0} spans/s over {THROUGHPUT_ROUNDS} rounds of {THROUGHPUT_CALLS} calls",
        rates[rates.len() / 2]
    );
}

criterion_group!(benches, caller_cost, throughput);
criterion_main!(benches);
