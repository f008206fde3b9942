//! The telemetry writer, specified from the outside, within one process: exact counts under
//! concurrency, drops counted and reported exactly, whole-line batches, rotation under concurrent
//! threads, and the close, flush and drop contract. Several processes, SIGKILL and `fork()` are
//! in `tests/telemetry_writer_processes.rs`; the queue's byte bound and periodic drop reports
//! in `writer_load.rs`; the lines of engine records in `writer_lines.rs`.

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use crate::support::temp_dir::TempDir;
use crate::support::writer_harness::{
    Gate, Log, TestRecord, assert_sizes_within, log_files, numbered_ids, open, options, wait_until,
};
use prompt_config::telemetry::writer::{TelemetryWriter, WriterOptions};

// ---------------------------------------------------------------------------------------------
// Exact counts and drops

#[test]
fn every_record_from_eight_threads_is_written_exactly_once() {
    let directory = TempDir::new("eight-threads");
    let writer = open(options(&directory.log()).with_queue_capacity(200_000));
    thread::scope(|scope| {
        for source in 0..8 {
            let writer = &writer;
            scope.spawn(move || {
                for id in 0..20_000 {
                    assert!(writer.enqueue(TestRecord::new(source, id)));
                }
            });
        }
    });
    writer.close();
    assert_eq!(writer.dropped(), 0);
    assert_eq!(writer.written(), 160_000);
    let log = Log::read(&[directory.log()]);
    log.assert_exactly((0..8).flat_map(|source| numbered_ids(source, 20_000)));
    assert!(log.drop_reports.is_empty());
    assert!(log.partial_tails.is_empty());
}

#[test]
fn a_full_queue_refuses_records_and_counts_exactly_those_it_refused() {
    let directory = TempDir::new("full-queue");
    let writer = open(options(&directory.log()).with_queue_capacity(10));
    let gate = Arc::new(Gate::default());
    assert!(writer.enqueue(TestRecord::gated(1, 0, &gate)));
    gate.wait_until_held();

    let accepted: Vec<bool> = (0..100)
        .map(|id| writer.enqueue(TestRecord::new(0, id)))
        .collect();

    assert_eq!(accepted.iter().filter(|accepted| **accepted).count(), 10);
    assert_eq!(writer.dropped(), 90);
    assert!(accepted[..10].iter().all(|accepted| *accepted));
    gate.open();
    writer.close();
    let log = Log::read(&[directory.log()]);
    log.assert_exactly(numbered_ids(0, 10).chain([(1, 0)]));
    assert_eq!(log.drop_reports, [90]);
}

#[test]
fn a_drop_report_is_written_once_the_queue_drains_without_flush_or_close() {
    let directory = TempDir::new("drop-report");
    let writer = open(options(&directory.log()).with_queue_capacity(2));
    let gate = Arc::new(Gate::default());
    assert!(writer.enqueue(TestRecord::gated(1, 0, &gate)));
    gate.wait_until_held();
    let refused = (0..7)
        .filter(|id| !writer.enqueue(TestRecord::new(0, *id)))
        .count();
    assert_eq!(refused, 5);
    gate.open();
    wait_until("the drop report is written", || {
        Log::read(&[directory.log()]).reported_drops() == 5
    });
    let log = Log::read(&[directory.log()]);
    assert_eq!(log.drop_reports, [5]);
    log.assert_exactly(numbered_ids(0, 2).chain([(1, 0)]));
}

#[test]
fn drops_under_contention_are_counted_exactly_and_reported_in_the_file() {
    let directory = TempDir::new("contention");
    let writer = open(options(&directory.log()).with_queue_capacity(10));
    let (accepted, refused): (Vec<Vec<(u32, u64)>>, Vec<u64>) = thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|source| {
                let writer = &writer;
                scope.spawn(move || {
                    let mut accepted = Vec::new();
                    let mut refused = 0;
                    for id in 0..20_000 {
                        if writer.enqueue(TestRecord::new(source, id)) {
                            accepted.push((source, id));
                        } else {
                            refused += 1;
                        }
                    }
                    (accepted, refused)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().unwrap())
            .unzip()
    });
    let refused: u64 = refused.iter().sum();
    assert_eq!(writer.dropped(), refused);
    writer.close();
    assert_eq!(writer.dropped(), refused);
    let log = Log::read(&[directory.log()]);
    log.assert_exactly(accepted.into_iter().flatten());
    assert_eq!(log.reported_drops(), refused);
    assert_eq!(writer.written(), 80_000 - refused);
}

#[test]
fn a_record_that_fails_to_serialize_is_dropped_alone_and_reported() {
    let directory = TempDir::new("unserializable");
    let writer = open(options(&directory.log()));
    assert!(writer.enqueue(TestRecord::new(0, 0)));
    assert!(writer.enqueue(TestRecord::Unserializable));
    assert!(writer.enqueue(TestRecord::new(0, 1)));
    writer.close();
    assert_eq!(writer.dropped(), 1);
    assert_eq!(writer.written(), 2);
    let log = Log::read(&[directory.log()]);
    log.assert_exactly(numbered_ids(0, 2));
    assert_eq!(log.drop_reports, [1]);
}

#[cfg(target_os = "linux")]
#[test]
fn a_batch_that_cannot_be_written_counts_as_dropped_and_keeps_its_error() {
    // Every write to /dev/full fails with ENOSPC, after an open that succeeds.
    let writer = open(WriterOptions::new("/dev/full"));
    for id in 0..10 {
        assert!(writer.enqueue(TestRecord::new(0, id)));
    }
    writer.flush();
    assert_eq!(writer.written(), 0);
    assert_eq!(writer.dropped(), 10);
    let error = writer.last_error().unwrap_or_default();
    assert!(error.contains("/dev/full"), "{error}");
    writer.close();
}

// ---------------------------------------------------------------------------------------------
// Batches

#[test]
fn every_write_is_whole_lines_within_max_batch_bytes_unless_it_is_one_longer_line() {
    // Rotating before every batch puts each write in a file of its own, to be measured.
    let directory = TempDir::new("batches");
    let path = directory.log();
    let writer = open(
        WriterOptions::new(&path)
            .with_flush_interval(Duration::from_secs(60))
            .with_max_batch_bytes(1024)
            .with_rotate_bytes(Some(1))
            .with_rotated_files(10_000),
    );
    for id in 0..300 {
        let padding = if id == 150 { 5000 } else { 100 };
        assert!(writer.enqueue(TestRecord::padded(0, id, padding)));
    }
    writer.close();

    let files = log_files(&path);
    assert!(
        files.len() > 30,
        "expected one file per batch, found {}",
        files.len()
    );
    let mut oversized_files = 0;
    for file in &files {
        let bytes = fs::read(file).unwrap();
        let lines = bytes.iter().filter(|&&byte| byte == b'\n').count();
        assert_eq!(
            bytes.last(),
            Some(&b'\n'),
            "{} ends in a torn line",
            file.display()
        );
        if bytes.len() > 1024 {
            assert_eq!(
                lines,
                1,
                "{} is an oversized batch of {lines} lines",
                file.display()
            );
            oversized_files += 1;
        }
    }
    assert_eq!(oversized_files, 1);
    Log::read(&files).assert_exactly(numbered_ids(0, 300));
}

// ---------------------------------------------------------------------------------------------
// Close, flush and drop

#[test]
fn flush_makes_enqueued_records_visible() {
    let directory = TempDir::new("flush");
    let writer =
        open(WriterOptions::new(directory.log()).with_flush_interval(Duration::from_secs(60)));
    for id in 0..100 {
        assert!(writer.enqueue(TestRecord::new(0, id)));
    }
    writer.flush();
    assert_eq!(writer.written(), 100);
    Log::read(&[directory.log()]).assert_exactly(numbered_ids(0, 100));
}

#[test]
fn records_are_written_within_the_flush_interval_without_flush() {
    let directory = TempDir::new("interval");
    let writer =
        open(WriterOptions::new(directory.log()).with_flush_interval(Duration::from_millis(20)));
    for id in 0..5 {
        assert!(writer.enqueue(TestRecord::new(0, id)));
    }
    wait_until("the records are written", || {
        Log::read(&[directory.log()]).records.len() == 5 && writer.written() == 5
    });
}

#[test]
fn close_is_idempotent() {
    let directory = TempDir::new("close-twice");
    let writer = open(options(&directory.log()));
    for id in 0..10 {
        assert!(writer.enqueue(TestRecord::new(0, id)));
    }
    writer.close();
    writer.close();
    thread::scope(|scope| {
        scope.spawn(|| writer.close());
        scope.spawn(|| writer.close());
    });
    assert_eq!(writer.written(), 10);
    Log::read(&[directory.log()]).assert_exactly(numbered_ids(0, 10));
}

#[test]
fn enqueue_after_close_returns_false_and_writes_nothing() {
    let directory = TempDir::new("after-close");
    let writer = open(options(&directory.log()));
    assert!(writer.enqueue(TestRecord::new(0, 0)));
    writer.close();
    assert!(!writer.enqueue(TestRecord::new(0, 1)));
    writer.flush();
    assert_eq!(
        writer.dropped(),
        0,
        "a refusal after close is not a queue drop"
    );
    Log::read(&[directory.log()]).assert_exactly(numbered_ids(0, 1));
}

#[test]
fn dropping_the_writer_closes_it_and_loses_nothing() {
    let directory = TempDir::new("drop");
    let writer =
        open(WriterOptions::new(directory.log()).with_flush_interval(Duration::from_secs(60)));
    for id in 0..1000 {
        assert!(writer.enqueue(TestRecord::new(0, id)));
    }
    drop(writer);
    Log::read(&[directory.log()]).assert_exactly(numbered_ids(0, 1000));
}

#[test]
fn records_accepted_while_another_thread_closes_are_all_written() {
    let directory = TempDir::new("close-race");
    let writer = open(options(&directory.log()));
    let closing = AtomicBool::new(false);
    let accepted: Vec<(u32, u64)> = thread::scope(|scope| {
        let workers: Vec<_> = (0..3)
            .map(|source| {
                let (writer, closing) = (&writer, &closing);
                scope.spawn(move || {
                    let mut accepted = Vec::new();
                    for id in 0.. {
                        if writer.enqueue(TestRecord::new(source, id)) {
                            accepted.push((source, id));
                        } else if closing.load(Ordering::SeqCst) {
                            break;
                        }
                    }
                    accepted
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(50));
        closing.store(true, Ordering::SeqCst);
        writer.close();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().unwrap())
            .collect()
    });
    let log = Log::read(&[directory.log()]);
    log.assert_exactly(accepted);
    assert_eq!(log.reported_drops(), writer.dropped());
}

#[test]
fn an_existing_log_is_appended_to_not_truncated() {
    let directory = TempDir::new("append");
    fs::write(
        directory.log(),
        "{\"event\":\"record\",\"source\":9,\"id\":0}\n",
    )
    .unwrap();
    let writer = open(options(&directory.log()));
    assert!(writer.enqueue(TestRecord::new(0, 0)));
    writer.close();
    let log = Log::read(&[directory.log()]);
    assert_eq!(log.records, [(9, 0), (0, 0)]);
}

#[test]
fn opening_fails_naming_the_path_when_its_directory_is_missing() {
    let directory = TempDir::new("missing");
    let path = directory.0.join("absent").join("events.jsonl");
    let error = TelemetryWriter::<TestRecord>::open(WriterOptions::new(&path))
        .err()
        .unwrap();
    assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
    assert!(!directory.0.join("absent").exists());
}

#[test]
fn the_writer_can_be_shared_between_threads() {
    fn assert_send_and_sync<T: Send + Sync>() {}
    assert_send_and_sync::<TelemetryWriter<TestRecord>>();
}

#[test]
fn after_fork_outside_a_forked_child_changes_nothing() {
    let directory = TempDir::new("after-fork-no-fork");
    let writer = open(options(&directory.log()));
    assert!(writer.enqueue(TestRecord::new(0, 0)));
    writer.after_fork();
    assert!(writer.enqueue(TestRecord::new(0, 1)));
    writer.close();
    assert_eq!(writer.written(), 2);
    Log::read(&[directory.log()]).assert_exactly(numbered_ids(0, 2));
}

// ---------------------------------------------------------------------------------------------
// Rotation

#[test]
fn rotation_under_concurrent_threads_keeps_every_record_exactly_once() {
    let directory = TempDir::new("rotation-threads");
    let path = directory.log();
    let (rotate_bytes, max_batch_bytes) = (64 * 1024, 8 * 1024);
    let writer = open(
        options(&path)
            .with_queue_capacity(100_000)
            .with_max_batch_bytes(max_batch_bytes)
            .with_rotate_bytes(Some(rotate_bytes))
            .with_rotated_files(1000),
    );
    thread::scope(|scope| {
        for source in 0..4 {
            let writer = &writer;
            scope.spawn(move || {
                for id in 0..10_000 {
                    assert!(writer.enqueue(TestRecord::padded(source, id, 50)));
                }
            });
        }
    });
    writer.close();
    let files = log_files(&path);
    assert!(files.len() > 10, "only {} files: no rotation", files.len());
    assert_sizes_within(&files, rotate_bytes + max_batch_bytes as u64);
    let log = Log::read(&files);
    log.assert_exactly((0..4).flat_map(|source| numbered_ids(source, 10_000)));
    assert!(log.partial_tails.is_empty());
}
