//! Telemetry writer costs: what `enqueue` costs the caller for a realistic `llm.request` record,
//! and how many records per second the background threads sustain into a file (enqueue
//! 200,000 records, then close, which writes and fsyncs them).

use std::collections::BTreeMap;
use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use prompt_config::telemetry::event::{
    EventBody, FeatureFields, RequestFields, SCHEMA_VERSION, TelemetryRecord,
};
use prompt_config::telemetry::writer::{TelemetryWriter, WriterOptions};
use serde_json::json;

/// Records enqueued per timed run of the throughput bench.
const SUSTAINED_RECORDS: u64 = 200_000;
/// Records enqueued between two drains in the enqueue bench, well below the queue's capacity,
/// so the bench measures accepted records, not drops.
const ENQUEUE_CHUNK: u64 = 16_384;

/// An `llm.request` record as the engine sends one for an experiment-resolved call.
fn request_record(sequence: u64) -> TelemetryRecord {
    let attributes = BTreeMap::from([
        ("plan".to_owned(), json!("pro")),
        ("sector".to_owned(), json!("technology")),
    ]);
    TelemetryRecord {
        schema_version: SCHEMA_VERSION,
        timestamp: Utc::now(),
        event: "llm.request",
        request_id: format!("req_{sequence:016x}"),
        body: EventBody::Request(Box::new(RequestFields {
            operation: "chat",
            feature: FeatureFields {
                feature: "career_path_navigator".to_owned(),
                version: "v3".to_owned(),
                source: "experiment",
                experiment: Some("tone_test".to_owned()),
                variant: Some("concise".to_owned()),
                rule: None,
                bucket: Some(0.4273),
                subject_id:
                    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
                        .to_owned(),
                attributes,
                prompt_hash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
                    .to_owned(),
                config_revision: "2026-11-27T10:15:00Z-4f2a".to_owned(),
            },
            provider: "anthropic".to_owned(),
            model: "claude-sonnet-4-5".to_owned(),
            response_model: Some("claude-sonnet-4-5-20250929".to_owned()),
            response_id: Some(format!("msg_01{sequence:022}")),
            finish_reasons: vec!["end_turn".to_owned()],
            input_tokens: 1834,
            output_tokens: 412,
            cache_read_input_tokens: 1024,
            cache_creation_input_tokens: 0,
            outcome: "success",
            error_type: None,
            attempts: 1,
            latency_ms: 2317.4,
            cost_usd: 0.011_682,
            cost_estimated: false,
            refusal: false,
            downgraded: false,
            input_messages: None,
            output_messages: None,
        })),
    }
}

/// A scratch directory for the bench's logs, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!(
            "prompt-config-telemetry-bench-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("the scratch directory can be created");
        Self(path)
    }

    fn fresh_log(&self, name: &str) -> PathBuf {
        let path = self.0.join(name);
        let _ = fs::remove_file(&path);
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn open(path: &Path, queue_capacity: usize) -> TelemetryWriter<TelemetryRecord> {
    TelemetryWriter::open(WriterOptions {
        queue_capacity,
        rotate_bytes: None,
        ..WriterOptions::new(path)
    })
    .expect("the bench log opens")
}

/// Both benches in one group, sharing a scratch directory.
fn telemetry(criterion: &mut Criterion) {
    let scratch = Scratch::new();
    let mut group = criterion.benchmark_group("telemetry");
    enqueue(&mut group, &scratch);
    sustained(&mut group, &scratch);
    group.finish();
}

/// The caller's cost of `enqueue` for one realistic record, into a queue with room.
fn enqueue(group: &mut BenchmarkGroup<'_, WallTime>, scratch: &Scratch) {
    let writer = open(&scratch.fresh_log("enqueue.jsonl"), 65_536);
    let template = request_record(1);
    group.bench_function("enqueue_request_record", |bencher| {
        bencher.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            let mut remaining = iterations;
            while remaining > 0 {
                let chunk = remaining.min(ENQUEUE_CHUNK);
                remaining -= chunk;
                // Built untimed: the caller's cost of building a record is not the writer's.
                let records: Vec<TelemetryRecord> = (0..chunk).map(|_| template.clone()).collect();
                let start = Instant::now();
                for record in records {
                    black_box(writer.enqueue(record));
                }
                elapsed += start.elapsed();
                // Drained untimed, so the next chunk finds room.
                writer.flush();
            }
            elapsed
        });
    });
    writer.close();
    assert_eq!(writer.dropped(), 0, "the enqueue bench measured drops");
}

/// Records per second from the first enqueue to the end of `close` (written and fsynced).
/// The records are built beforehand: building one (about 2 µs) costs the caller more than the
/// writer spends serializing it, and would compete with the writer's threads for the two cores.
fn sustained(group: &mut BenchmarkGroup<'_, WallTime>, scratch: &Scratch) {
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(15))
        .throughput(Throughput::Elements(SUSTAINED_RECORDS));
    group.bench_function("write_200k_request_records", |bencher| {
        bencher.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations {
                let records: Vec<TelemetryRecord> =
                    (0..SUSTAINED_RECORDS).map(request_record).collect();
                let writer = open(
                    &scratch.fresh_log("sustained.jsonl"),
                    SUSTAINED_RECORDS as usize,
                );
                let start = Instant::now();
                for record in records {
                    black_box(writer.enqueue(record));
                }
                writer.close();
                elapsed += start.elapsed();
                assert_eq!(writer.written(), SUSTAINED_RECORDS, "records were dropped");
            }
            elapsed
        });
    });
}

criterion_group!(benches, telemetry);
criterion_main!(benches);
