//! Telemetry writer costs: what `enqueue` costs the caller for a realistic `llm.request` record,
//! how many records per second the background threads sustain into a file (enqueue 200,000
//! records, then close, which writes and fsyncs them), and what happens under a steady feed of
//! 40,000 completions per second (a resolve, an attempt and a request event each, 120,000 events
//! per second from two caller threads): the events per second written, the share dropped, and
//! the most heap the queued records and batches held (a counting allocator measures it, so the
//! figure does not depend on the writer's own accounting).

#[path = "../tests/support/telemetry_records.rs"]
mod telemetry_records;

use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use prompt_config::telemetry::event::TelemetryRecord;
use prompt_config::telemetry::writer::{TelemetryWriter, WriterOptions};
use telemetry_records::{attempt_record, request_record, resolve_record};

/// Records enqueued per timed run of the throughput bench.
const SUSTAINED_RECORDS: u64 = 200_000;
/// Records enqueued between two drains in the enqueue bench, well below the queue's capacity,
/// so the bench measures accepted records, not drops.
const ENQUEUE_CHUNK: u64 = 16_384;

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

/// A writer whose queue holds `queue_capacity` records whatever their size: these benches
/// measure accepted records, not drops.
fn open(path: &Path, queue_capacity: usize) -> TelemetryWriter<TelemetryRecord> {
    TelemetryWriter::open(
        WriterOptions::new(path)
            .with_queue_capacity(queue_capacity)
            .with_max_queue_bytes(usize::MAX)
            .with_rotate_bytes(None),
    )
    .expect("the bench log opens")
}

/// The benches in one group, sharing a scratch directory.
fn telemetry(criterion: &mut Criterion) {
    let scratch = Scratch::new();
    let mut group = criterion.benchmark_group("telemetry");
    enqueue(&mut group, &scratch);
    fed_at_40k_completions_per_second(&mut group, &scratch);
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

/// Completions per second the steady-feed bench simulates.
const COMPLETIONS_PER_SECOND: u64 = 40_000;
/// Events each completion emits: its resolve, its one attempt, its request.
const EVENTS_PER_COMPLETION: u64 = 3;
/// How long each run of the steady-feed bench feeds.
const FEED_TIME: Duration = Duration::from_secs(1);
/// Caller threads sharing the feed, as application threads would.
const FEEDERS: u64 = 2;
/// Completions a feeder emits per tick; ticks are `FEEDERS * BURST / COMPLETIONS_PER_SECOND`
/// apart (1 ms).
const BURST: u64 = 20;

/// The live heap, counted by a global allocator wrapping the system's, and its high-water mark.
mod heap {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static LIVE: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);

    pub struct Counting;

    // SAFETY: every call is forwarded to the system allocator unchanged; only counts are added.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded with the caller's layout.
            let pointer = unsafe { System.alloc(layout) };
            if !pointer.is_null() {
                grow(layout.size());
            }
            pointer
        }

        unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
            // SAFETY: forwarded with the caller's pointer and layout.
            unsafe { System.dealloc(pointer, layout) };
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }

        unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: forwarded with the caller's pointer, layout and size.
            let moved = unsafe { System.realloc(pointer, layout, new_size) };
            if !moved.is_null() {
                LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
                grow(new_size);
            }
            moved
        }
    }

    fn grow(size: usize) {
        let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
        PEAK.fetch_max(live, Ordering::Relaxed);
    }

    /// Starts a new high-water mark from the current live heap, and returns that heap.
    pub fn reset_peak() -> usize {
        let live = LIVE.load(Ordering::Relaxed);
        PEAK.store(live, Ordering::Relaxed);
        live
    }

    pub fn peak() -> usize {
        PEAK.load(Ordering::Relaxed)
    }
}

#[global_allocator]
static HEAP: heap::Counting = heap::Counting;

/// One run of the steady-feed bench.
struct FeedRun {
    elapsed: Duration,
    fed: u64,
    written: u64,
    dropped: u64,
    peak_heap_bytes: usize,
    /// CPU time of everything but the feeders (the writer's threads), per event fed.
    writer_cpu_per_event: Duration,
    /// The writer's own account of its queue's peak (its size estimates).
    peak_estimated_bytes: usize,
}

/// Feeds 40,000 completions' events per second for `FEED_TIME` from `FEEDERS` threads into a
/// writer with the default options, then closes it; the time runs from the first event to the
/// end of `close`, so a writer that keeps up takes `FEED_TIME` plus its last flush.
fn feed_run(path: &Path) -> FeedRun {
    let writer = TelemetryWriter::open(WriterOptions::new(path).with_rotate_bytes(None))
        .expect("the bench log opens");
    let completions = COMPLETIONS_PER_SECOND * FEED_TIME.as_millis() as u64 / 1000;
    let per_feeder = completions / FEEDERS;
    let tick = Duration::from_nanos(FEEDERS * BURST * 1_000_000_000 / COMPLETIONS_PER_SECOND);
    let heap_before = heap::reset_peak();
    let process_cpu_before = cpu_time(libc::CLOCK_PROCESS_CPUTIME_ID);
    let start = Instant::now();
    let feeders_cpu: Duration = thread::scope(|scope| {
        let feeders: Vec<_> = (0..FEEDERS)
            .map(|feeder| {
                let writer = &writer;
                scope.spawn(move || {
                    let first = feeder * per_feeder;
                    let mut next_tick = start;
                    for burst_start in (first..first + per_feeder).step_by(BURST as usize) {
                        for sequence in burst_start..(burst_start + BURST).min(first + per_feeder) {
                            // Built on the caller's thread, as the engine builds them.
                            writer.enqueue(resolve_record(sequence));
                            writer.enqueue(attempt_record(sequence));
                            writer.enqueue(request_record(sequence));
                        }
                        next_tick += tick;
                        // A feeder that fell behind catches up without sleeping.
                        if let Some(wait) = next_tick.checked_duration_since(Instant::now()) {
                            thread::sleep(wait);
                        }
                    }
                    cpu_time(libc::CLOCK_THREAD_CPUTIME_ID)
                })
            })
            .collect();
        feeders
            .into_iter()
            .map(|feeder| feeder.join().expect("a feeder panicked"))
            .sum()
    });
    writer.close();
    let elapsed = start.elapsed();
    let fed = per_feeder * FEEDERS * EVENTS_PER_COMPLETION;
    let writer_cpu = cpu_time(libc::CLOCK_PROCESS_CPUTIME_ID)
        .saturating_sub(process_cpu_before)
        .saturating_sub(feeders_cpu);
    FeedRun {
        elapsed,
        fed,
        writer_cpu_per_event: writer_cpu / fed.max(1) as u32,
        written: writer.written(),
        dropped: writer.dropped(),
        peak_heap_bytes: heap::peak().saturating_sub(heap_before),
        peak_estimated_bytes: writer.peak_queued_bytes(),
    }
}

/// The CPU time `clock` has counted.
fn cpu_time(clock: libc::clockid_t) -> Duration {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid, writable timespec.
    unsafe { libc::clock_gettime(clock, &mut time) };
    Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}

/// Events written per second under a steady feed of 40,000 completions per second, with the
/// share dropped and the queue's peak heap printed after the run (medians of the samples).
fn fed_at_40k_completions_per_second(group: &mut BenchmarkGroup<'_, WallTime>, scratch: &Scratch) {
    let runs = Mutex::new(Vec::new());
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(
            COMPLETIONS_PER_SECOND * EVENTS_PER_COMPLETION * FEED_TIME.as_millis() as u64 / 1000,
        ));
    group.bench_function("fed_40k_completions_per_second", |bencher| {
        bencher.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations {
                let run = feed_run(&scratch.fresh_log("fed.jsonl"));
                elapsed += run.elapsed;
                runs.lock().expect("no run panicked").push(run);
            }
            elapsed
        });
    });
    let runs = runs.into_inner().expect("no run panicked");
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values.get(values.len() / 2).copied().unwrap_or(0.0)
    };
    let written_per_second = median(
        runs.iter()
            .map(|run| run.written as f64 / run.elapsed.as_secs_f64())
            .collect(),
    );
    let dropped_percent = median(
        runs.iter()
            .map(|run| 100.0 * run.dropped as f64 / run.fed as f64)
            .collect(),
    );
    let peak_mib = median(
        runs.iter()
            .map(|run| run.peak_heap_bytes as f64 / f64::from(1 << 20))
            .collect(),
    );
    let estimated_mib = median(
        runs.iter()
            .map(|run| run.peak_estimated_bytes as f64 / f64::from(1 << 20))
            .collect(),
    );
    let writer_ns = median(
        runs.iter()
            .map(|run| run.writer_cpu_per_event.as_nanos() as f64)
            .collect(),
    );
    let runs_without_drops = runs.iter().filter(|run| run.dropped == 0).count();
    let worst_dropped_percent = runs
        .iter()
        .map(|run| 100.0 * run.dropped as f64 / run.fed as f64)
        .fold(0.0, f64::max);
    println!(
        "telemetry/fed_40k_completions_per_second: medians of {} runs: {written_per_second:.0} \
         events/s written, {dropped_percent:.2}% dropped, peak queue heap {peak_mib:.1} MiB \
         (writer's estimate {estimated_mib:.1} MiB), writer threads' CPU {writer_ns:.0} ns per \
         event; {runs_without_drops} runs without drops (worst {worst_dropped_percent:.2}% \
         dropped)",
        runs.len()
    );
}

criterion_group!(benches, telemetry);
criterion_main!(benches);
