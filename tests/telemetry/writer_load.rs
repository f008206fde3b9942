//! The telemetry writer under load, specified from the outside: the queue is bounded by the
//! approximate bytes of its records (never past the bound by more than one record), drops that
//! go on are reported at least once a second with exact counts and the span of the drops, and
//! every record accepted is written exactly once whatever is dropped around it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::support::temp_dir::TempDir;
use crate::support::writer_harness::{
    DropLine, Gate, Log, RECORD_BASE_BYTES, TestRecord, epoch_ms, numbered_ids, open, options,
};
use prompt_config::telemetry::writer::{
    DEFAULT_DROP_REPORT_INTERVAL, DEFAULT_MAX_QUEUE_BYTES, WriterOptions,
};

/// Slack for a report that is due: the writer looks at the clock every 64 records (64 ms at
/// the slow records' 1 ms each) and may wait for a core on a loaded two-core machine.
const REPORT_SLACK_MS: u64 = 500;

#[test]
fn options_default_to_a_16_mib_queue_and_a_report_every_second() {
    let options = WriterOptions::new("telemetry.jsonl");
    assert_eq!(options.max_queue_bytes, 16 << 20);
    assert_eq!(DEFAULT_MAX_QUEUE_BYTES, 16 << 20);
    assert_eq!(options.drop_report_interval, Duration::from_secs(1));
    assert_eq!(DEFAULT_DROP_REPORT_INTERVAL, Duration::from_secs(1));
}

#[test]
fn a_queue_at_its_byte_bound_refuses_records_and_counts_them() {
    let directory = TempDir::new("byte-bound");
    let writer = open(options(&directory.log()).with_max_queue_bytes(10_000));
    let gate = Arc::new(Gate::default());
    assert!(writer.enqueue(TestRecord::gated(1, 0, &gate)));
    gate.wait_until_held();

    // Each record is estimated at 164 bytes: 60 fit beside the held one's 64.
    let accepted = (0..200)
        .filter(|id| writer.enqueue(TestRecord::padded(0, *id, 100)))
        .count();

    assert_eq!(accepted, 60);
    assert_eq!(writer.dropped(), 140);
    assert_eq!(writer.queued_bytes(), RECORD_BASE_BYTES + 60 * 164);
    assert!(writer.peak_queued_bytes() <= 10_000);
    gate.open();
    writer.close();
    assert_eq!(writer.queued_bytes(), 0);
    let log = Log::read(&[directory.log()]);
    log.assert_exactly(numbered_ids(0, 60).chain([(1, 0)]));
    assert_eq!(log.drop_reports, [140]);
}

#[test]
fn a_record_larger_than_the_bound_is_accepted_only_into_an_empty_queue() {
    let directory = TempDir::new("oversized");
    let writer = open(options(&directory.log()).with_max_queue_bytes(1000));
    let gate = Arc::new(Gate::default());
    assert!(writer.enqueue(TestRecord::gated(1, 0, &gate)));
    gate.wait_until_held();
    assert!(!writer.enqueue(TestRecord::padded(0, 0, 5000)));
    gate.open();
    writer.flush();
    assert_eq!(writer.queued_bytes(), 0);
    assert!(writer.enqueue(TestRecord::padded(0, 1, 5000)));
    writer.close();
    assert!(writer.peak_queued_bytes() <= RECORD_BASE_BYTES + 5000);
    let log = Log::read(&[directory.log()]);
    log.assert_exactly([(1, 0), (0, 1)]);
    assert_eq!(log.drop_reports, [1]);
}

#[test]
fn concurrent_callers_never_take_the_queue_past_its_bound_by_more_than_one_record() {
    let directory = TempDir::new("byte-bound-threads");
    let bound = 20_000;
    let writer = open(options(&directory.log()).with_max_queue_bytes(bound));
    let (accepted, refused) = feed(&writer, 4, 3000, |source, id| {
        // Sizes from 64 to 463 bytes, and a writer slower than four callers.
        let mut record = TestRecord::padded(source, id, (id % 400) as usize);
        if id % 50 == 0 {
            record = TestRecord::slow(source, id, Duration::from_millis(1));
        }
        record
    });
    let largest = RECORD_BASE_BYTES + 399;
    assert!(refused > 0, "the queue never filled");
    assert!(
        writer.peak_queued_bytes() <= bound + largest,
        "peak {} over {bound} + {largest}",
        writer.peak_queued_bytes()
    );
    writer.close();
    assert_eq!(writer.queued_bytes(), 0);
    assert_eq!(writer.dropped(), refused);
    let log = Log::read(&[directory.log()]);
    log.assert_exactly(accepted);
    assert_eq!(log.reported_drops(), refused);
}

#[test]
fn drops_that_go_on_are_reported_at_least_once_a_second_with_exact_counts() {
    let directory = TempDir::new("periodic-reports");
    let writer = open(options(&directory.log()).with_queue_capacity(4));
    let started = SystemTime::now();
    let (accepted, refused) = feed_for(&writer, Duration::from_millis(3500));
    let fed_until = epoch_ms(SystemTime::now());
    writer.close();

    let log = Log::read(&[directory.log()]);
    log.assert_exactly(accepted);
    assert_eq!(writer.dropped(), refused);
    assert_eq!(log.reported_drops(), refused);
    let during: Vec<DropLine> = log
        .drop_lines
        .iter()
        .copied()
        .filter(|line| line.at_ms <= fed_until)
        .collect();
    assert!(during.len() >= 3, "drop reports while feeding: {during:?}");
    assert!(during[0].at_ms <= epoch_ms(started) + 1000 + REPORT_SLACK_MS);
    assert_reports_within(&during, 1000);
    assert_spans_and_totals(&log.drop_lines, refused);
}

#[test]
fn a_shorter_drop_report_interval_reports_more_often() {
    let directory = TempDir::new("short-interval");
    let writer = open(
        options(&directory.log())
            .with_queue_capacity(4)
            .with_drop_report_interval(Duration::from_millis(200)),
    );
    let (accepted, refused) = feed_for(&writer, Duration::from_millis(1500));
    let fed_until = epoch_ms(SystemTime::now());
    writer.close();
    let log = Log::read(&[directory.log()]);
    log.assert_exactly(accepted);
    let during: Vec<DropLine> = log
        .drop_lines
        .iter()
        .copied()
        .filter(|line| line.at_ms <= fed_until)
        .collect();
    assert!(during.len() >= 4, "drop reports while feeding: {during:?}");
    assert_reports_within(&during, 200);
    assert_spans_and_totals(&log.drop_lines, refused);
}

#[test]
fn a_drop_report_spans_the_first_to_the_last_drop_it_counts() {
    let directory = TempDir::new("drop-span");
    let writer = open(options(&directory.log()).with_queue_capacity(1));
    let gate = Arc::new(Gate::default());
    assert!(writer.enqueue(TestRecord::gated(1, 0, &gate)));
    gate.wait_until_held();
    assert!(writer.enqueue(TestRecord::new(0, 0)));
    let before_first = epoch_ms(SystemTime::now());
    assert!(!writer.enqueue(TestRecord::new(0, 1)));
    thread::sleep(Duration::from_millis(300));
    assert!(!writer.enqueue(TestRecord::new(0, 2)));
    let after_last = epoch_ms(SystemTime::now());
    gate.open();
    writer.close();
    let log = Log::read(&[directory.log()]);
    let [line] = log.drop_lines[..] else {
        panic!("expected one drop report, found {:?}", log.drop_lines);
    };
    assert_eq!((line.count, line.total), (2, 2));
    assert!(before_first <= line.first_at_ms && line.first_at_ms < before_first + 300);
    assert!(line.last_at_ms >= line.first_at_ms + 300 && line.last_at_ms <= after_last);
}

/// Enqueues from `threads` callers, `count` records each, made by `make`; returns the
/// accepted records and how many were refused.
fn feed(
    writer: &prompt_config::telemetry::writer::TelemetryWriter<TestRecord>,
    threads: u32,
    count: u64,
    make: impl Fn(u32, u64) -> TestRecord + Sync,
) -> (Vec<(u32, u64)>, u64) {
    thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|source| {
                let make = &make;
                scope.spawn(move || {
                    let mut accepted = Vec::new();
                    let mut refused = 0;
                    for id in 0..count {
                        if writer.enqueue(make(source, id)) {
                            accepted.push((source, id));
                        } else {
                            refused += 1;
                        }
                    }
                    (accepted, refused)
                })
            })
            .collect();
        let mut accepted = Vec::new();
        let mut refused = 0;
        for worker in workers {
            let (mine, my_refused) = worker.join().unwrap();
            accepted.extend(mine);
            refused += my_refused;
        }
        (accepted, refused)
    })
}

/// Enqueues 1 ms records (a writer that takes 1,000 records per second) for `duration` from
/// two callers offering about 4,000 per second each: drops all along.
fn feed_for(
    writer: &prompt_config::telemetry::writer::TelemetryWriter<TestRecord>,
    duration: Duration,
) -> (Vec<(u32, u64)>, u64) {
    let stop = AtomicBool::new(false);
    let deadline = Instant::now() + duration;
    let stop = &stop;
    thread::scope(|scope| {
        scope.spawn(move || {
            thread::sleep(deadline.saturating_duration_since(Instant::now()));
            stop.store(true, Ordering::SeqCst);
        });
        let workers: Vec<_> = (0..2)
            .map(|source| {
                scope.spawn(move || {
                    let mut accepted = Vec::new();
                    let mut refused = 0;
                    let mut id = 0;
                    while !stop.load(Ordering::SeqCst) {
                        let record = TestRecord::slow(source, id, Duration::from_millis(1));
                        if writer.enqueue(record) {
                            accepted.push((source, id));
                        } else {
                            refused += 1;
                        }
                        id += 1;
                        thread::sleep(Duration::from_micros(250));
                    }
                    (accepted, refused)
                })
            })
            .collect();
        let mut accepted = Vec::new();
        let mut refused = 0;
        for worker in workers {
            let (mine, my_refused) = worker.join().unwrap();
            accepted.extend(mine);
            refused += my_refused;
        }
        (accepted, refused)
    })
}

/// Consecutive reports come at most `interval_ms` (plus the slack) apart.
fn assert_reports_within(lines: &[DropLine], interval_ms: u64) {
    for pair in lines.windows(2) {
        let gap = pair[1].at_ms - pair[0].at_ms;
        assert!(
            gap <= interval_ms + REPORT_SLACK_MS,
            "{gap} ms between drop reports: {pair:?}"
        );
    }
}

/// Each report's drops happened before it, in order; its running total is exact.
fn assert_spans_and_totals(lines: &[DropLine], refused: u64) {
    let mut total = 0;
    for line in lines {
        total += line.count;
        assert_eq!(line.total, total, "{line:?}");
        assert!(line.first_at_ms <= line.last_at_ms, "{line:?}");
        assert!(line.last_at_ms <= line.at_ms, "{line:?}");
    }
    assert_eq!(total, refused);
}
