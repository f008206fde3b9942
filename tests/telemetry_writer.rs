//! The telemetry writer, specified from the outside: exact counts under concurrency, drops
//! counted and reported exactly, whole lines after a SIGKILL, fork safety, several processes
//! appending to one file, rotation under concurrent writers, and the close, flush and drop
//! contract.
//!
//! Tests that need a process of their own re-execute this test binary to run one ignored child
//! test (`--exact NAME --include-ignored`) with `CHILD_LOG` set; without it the child tests
//! return at once. `fork()` happens only inside such a child process, which runs no other test:
//! the writer's design makes its own use after a fork safe, but other tests running on the
//! harness's threads could hold locks (output capture, their own state) at the instant of the
//! fork, so the forked child here does nothing but use the writer and `_exit`.

#[path = "support/writer_harness.rs"]
mod writer_harness;

use std::fs::{self, File};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use prompt_config::telemetry::writer::{TelemetryWriter, WriterOptions};
use writer_harness::{
    Gate, Log, PATIENCE, TempDir, TestRecord, first, log_files, numbered_ids, open, options,
    wait_until,
};

/// Set, to the log's path, in a re-executed child; the child tests do nothing without it.
const CHILD_LOG: &str = "TELEMETRY_WRITER_CHILD_LOG";
/// The child's source number, which tags its records.
const CHILD_SOURCE: &str = "TELEMETRY_WRITER_CHILD_SOURCE";
/// How many children must be ready before any starts writing.
const CHILD_PEERS: &str = "TELEMETRY_WRITER_CHILD_PEERS";
/// The child's `rotate_bytes`, when it rotates.
const CHILD_ROTATE_BYTES: &str = "TELEMETRY_WRITER_CHILD_ROTATE_BYTES";
/// `pid_check` or `after_fork`: how the forked child gets its fresh writer.
const CHILD_FORK_MODE: &str = "TELEMETRY_WRITER_CHILD_FORK_MODE";

/// Records each appending child writes.
const CHILD_RECORDS: u64 = 20_000;
/// The batch limit of appending children: small, so their writes are many and interleave.
const CHILD_BATCH_BYTES: usize = 4096;

/// A re-executed copy of this test binary running one child test; killed if still running
/// when dropped, so a failing test leaves no process behind.
struct ChildProcess {
    child: Child,
    name: String,
    output: PathBuf,
}

impl ChildProcess {
    fn spawn(test: &str, log: &Path, settings: &[(&str, String)]) -> Self {
        let output = log.with_file_name(format!("{test}-{}.out", settings_tag(settings)));
        let stdout = File::create(&output).unwrap();
        let stderr = stdout.try_clone().unwrap();
        let child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                test,
                "--nocapture",
                "--include-ignored",
                "--test-threads=1",
            ])
            .env(CHILD_LOG, log)
            .envs(settings.iter().map(|(key, value)| (key, value)))
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap();
        Self {
            child,
            name: test.to_owned(),
            output,
        }
    }

    fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not finish in time",
                self.name
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn assert_succeeds(&mut self) {
        let status = self.wait();
        assert!(
            status.success(),
            "{} failed ({status}):\n{}",
            self.name,
            fs::read_to_string(&self.output).unwrap_or_default()
        );
    }

    fn has_exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if !self.has_exited() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn settings_tag(settings: &[(&str, String)]) -> String {
    settings
        .iter()
        .map(|(_, value)| value.as_str())
        .collect::<Vec<_>>()
        .join("-")
}

/// The child's settings, or `None` when this is not a re-executed child.
fn child_setting(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

// ---------------------------------------------------------------------------------------------
// Exact counts and drops

#[test]
fn every_record_from_eight_threads_is_written_exactly_once() {
    let directory = TempDir::new("eight-threads");
    let writer = open(WriterOptions {
        queue_capacity: 200_000,
        ..options(&directory.log())
    });
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
    let writer = open(WriterOptions {
        queue_capacity: 10,
        ..options(&directory.log())
    });
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
    let writer = open(WriterOptions {
        queue_capacity: 2,
        ..options(&directory.log())
    });
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
    let writer = open(WriterOptions {
        queue_capacity: 10,
        ..options(&directory.log())
    });
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
    let writer = open(WriterOptions {
        flush_interval: Duration::from_secs(60),
        max_batch_bytes: 1024,
        rotate_bytes: Some(1),
        rotated_files: 10_000,
        ..WriterOptions::new(&path)
    });
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
    let writer = open(WriterOptions {
        flush_interval: Duration::from_secs(60),
        ..WriterOptions::new(directory.log())
    });
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
    let writer = open(WriterOptions {
        flush_interval: Duration::from_millis(20),
        ..WriterOptions::new(directory.log())
    });
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
    let writer = open(WriterOptions {
        flush_interval: Duration::from_secs(60),
        ..WriterOptions::new(directory.log())
    });
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
    let writer = open(WriterOptions {
        queue_capacity: 100_000,
        max_batch_bytes,
        rotate_bytes: Some(rotate_bytes),
        rotated_files: 1000,
        ..options(&path)
    });
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

#[test]
fn rotation_by_two_processes_keeps_every_record_exactly_once() {
    let directory = TempDir::new("rotation-processes");
    let path = directory.log();
    let rotate_bytes = 64 * 1024;
    let mut children: Vec<ChildProcess> = (1..=2)
        .map(|source| {
            ChildProcess::spawn(
                "child_appends_numbered_records",
                &path,
                &[
                    (CHILD_SOURCE, source.to_string()),
                    (CHILD_PEERS, "2".to_owned()),
                    (CHILD_ROTATE_BYTES, rotate_bytes.to_string()),
                ],
            )
        })
        .collect();
    for child in &mut children {
        child.assert_succeeds();
    }
    let files = log_files(&path);
    assert!(files.len() > 10, "only {} files: no rotation", files.len());
    // Each process may append one batch after the other's size check.
    assert_sizes_within(&files, rotate_bytes + 2 * CHILD_BATCH_BYTES as u64);
    let log = Log::read(&files);
    log.assert_exactly((1..=2).flat_map(|source| numbered_ids(source, CHILD_RECORDS)));
    assert!(log.partial_tails.is_empty());
}

fn assert_sizes_within(files: &[PathBuf], limit: u64) {
    for file in files {
        let size = fs::metadata(file).unwrap().len();
        assert!(
            size <= limit,
            "{} has {size} bytes, over {limit}",
            file.display()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Several processes

#[test]
fn two_processes_appending_to_one_file_never_tear_or_interleave_lines() {
    let directory = TempDir::new("two-processes");
    let path = directory.log();
    let mut children: Vec<ChildProcess> = (1..=2)
        .map(|source| {
            ChildProcess::spawn(
                "child_appends_numbered_records",
                &path,
                &[
                    (CHILD_SOURCE, source.to_string()),
                    (CHILD_PEERS, "2".to_owned()),
                ],
            )
        })
        .collect();
    for child in &mut children {
        child.assert_succeeds();
    }
    let log = Log::read(&[path]);
    log.assert_exactly((1..=2).flat_map(|source| numbered_ids(source, CHILD_RECORDS)));
    assert!(log.partial_tails.is_empty());
}

/// Child of the two-process tests: waits for its peers, then appends `CHILD_RECORDS` records
/// in batches of at most `CHILD_BATCH_BYTES`.
#[test]
#[ignore = "runs as a child process of the two-process tests"]
fn child_appends_numbered_records() {
    let Some(path) = child_setting(CHILD_LOG) else {
        return;
    };
    let path = PathBuf::from(path);
    let source: u32 = child_setting(CHILD_SOURCE).unwrap().parse().unwrap();
    let peers: usize = child_setting(CHILD_PEERS).unwrap().parse().unwrap();
    let rotate_bytes = child_setting(CHILD_ROTATE_BYTES).map(|bytes| bytes.parse().unwrap());
    let writer = open(WriterOptions {
        queue_capacity: CHILD_RECORDS as usize,
        max_batch_bytes: CHILD_BATCH_BYTES,
        rotate_bytes,
        rotated_files: 1000,
        ..options(&path)
    });

    // Start together, so the two processes' writes overlap.
    let directory = path.parent().unwrap();
    fs::write(directory.join(format!("ready-{source}")), "").unwrap();
    wait_until("every peer is ready", || {
        fs::read_dir(directory)
            .unwrap()
            .filter(|entry| {
                entry
                    .as_ref()
                    .is_ok_and(|entry| entry.file_name().to_string_lossy().starts_with("ready-"))
            })
            .count()
            == peers
    });

    for id in 0..CHILD_RECORDS {
        assert!(writer.enqueue(TestRecord::padded(source, id, 100)));
    }
    writer.close();
    assert_eq!(writer.dropped(), 0);
    assert_eq!(writer.written(), CHILD_RECORDS);
}

// ---------------------------------------------------------------------------------------------
// SIGKILL

#[test]
fn a_killed_writer_leaves_only_whole_lines_but_possibly_the_last() {
    let directory = TempDir::new("sigkill");
    let path = directory.log();
    let mut child = ChildProcess::spawn("child_writes_until_killed", &path, &[]);
    wait_until("the child has written", || {
        assert!(!child.has_exited(), "the child exited before it was killed");
        fs::metadata(&path).is_ok_and(|metadata| metadata.len() > 0)
    });
    thread::sleep(Duration::from_millis(200));
    child.child.kill().unwrap();
    let status = child.wait();
    assert!(!status.success());

    let log = Log::read(&[path]);
    assert!(
        log.invalid.is_empty(),
        "torn lines: {:?}",
        first(&log.invalid)
    );
    assert!(log.partial_tails.len() <= 1);
    assert!(!log.records.is_empty());
    let mut records = log.records.clone();
    records.sort_unstable();
    records.dedup();
    assert_eq!(
        records.len(),
        log.records.len(),
        "a record was written twice"
    );
}

/// Child of the SIGKILL test: writes large records as fast as it can, never closing.
#[test]
#[ignore = "runs as a child process of the SIGKILL test"]
fn child_writes_until_killed() {
    let Some(path) = child_setting(CHILD_LOG) else {
        return;
    };
    let writer = open(WriterOptions {
        flush_interval: Duration::from_millis(2),
        max_batch_bytes: 256 * 1024,
        ..WriterOptions::new(path)
    });
    // A bound in case the parent dies: the child must not outlive the test run for long.
    let deadline = Instant::now() + PATIENCE;
    let mut id = 0;
    while Instant::now() < deadline {
        if writer.enqueue(TestRecord::padded(0, id, 2000)) {
            id += 1;
        } else {
            thread::yield_now();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// fork()

#[test]
fn a_forked_child_writes_through_a_fresh_writer_found_by_the_pid_check() {
    assert_both_sides_of_a_fork_write("pid_check");
}

#[test]
fn after_fork_starts_a_fresh_writer_in_a_forked_child() {
    assert_both_sides_of_a_fork_write("after_fork");
}

fn assert_both_sides_of_a_fork_write(mode: &str) {
    let directory = TempDir::new(&format!("fork-{mode}"));
    let path = directory.log();
    ChildProcess::spawn(
        "child_forks_and_both_sides_write",
        &path,
        &[(CHILD_FORK_MODE, mode.to_owned())],
    )
    .assert_succeeds();
    let log = Log::read(&[path]);
    // Records still queued in the parent at the fork are written once, by the parent.
    log.assert_exactly(numbered_ids(0, 4000).chain(numbered_ids(1, 1000)));
    assert!(log.partial_tails.is_empty());
    assert!(log.drop_reports.is_empty());
}

/// Child of the fork tests: writes, forks while records are queued; the forked child writes
/// 1000 records through a fresh writer, closes and `_exit`s while the parent keeps writing.
#[test]
#[ignore = "runs as a child process of the fork tests"]
fn child_forks_and_both_sides_write() {
    let Some(path) = child_setting(CHILD_LOG) else {
        return;
    };
    let explicit = child_setting(CHILD_FORK_MODE).as_deref() == Some("after_fork");
    let writer = open(WriterOptions {
        queue_capacity: 10_000,
        ..options(Path::new(&path))
    });
    for id in 0..2000 {
        assert!(writer.enqueue(TestRecord::new(0, id)));
    }

    // SAFETY: the forked child only uses the writer (whose design touches nothing of the
    // parent's generation) and leaves with `_exit`, running no destructor or atexit handler.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let succeeded = panic::catch_unwind(AssertUnwindSafe(|| {
            if explicit {
                writer.after_fork();
            }
            let accepted = (0..1000)
                .filter(|id| writer.enqueue(TestRecord::new(1, *id)))
                .count();
            writer.close();
            accepted == 1000 && writer.written() == 1000 && writer.dropped() == 0
        }));
        // SAFETY: ends the forked child without touching the parent's state.
        unsafe { libc::_exit(if matches!(succeeded, Ok(true)) { 0 } else { 1 }) };
    }

    for id in 2000..4000 {
        assert!(writer.enqueue(TestRecord::new(0, id)));
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the forked child failed: status {status}"
    );
    writer.close();
    assert_eq!(writer.written(), 4000);
    assert_eq!(writer.dropped(), 0);
}
