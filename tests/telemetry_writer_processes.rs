//! The telemetry writer across processes, specified from the outside: several processes
//! appending to (and rotating) one file, whole lines after a SIGKILL, and fork safety.
//!
//! Tests that need a process of their own re-execute this test binary to run one ignored child
//! test (`--exact NAME --include-ignored`) with `CHILD_LOG` set; without it the child tests
//! return at once. `fork()` happens only inside such a child process, which runs no other test:
//! the writer's design makes its own use after a fork safe, but other tests running on the
//! harness's threads could hold locks (output capture, their own state) at the instant of the
//! fork, so the forked child here does nothing but use the writer and `_exit`.

mod support;

use std::fs::{self, File};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

use prompt_config::telemetry::writer::WriterOptions;
use support::temp_dir::TempDir;
use support::writer_harness::{
    Log, PATIENCE, TestRecord, assert_sizes_within, first, log_files, numbered_ids, open, options,
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
// Rotation by several processes

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
    let writer = open(
        options(&path)
            .with_queue_capacity(CHILD_RECORDS as usize)
            .with_max_batch_bytes(CHILD_BATCH_BYTES)
            .with_rotate_bytes(rotate_bytes)
            .with_rotated_files(1000),
    );

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
    let writer = open(
        WriterOptions::new(path)
            .with_flush_interval(Duration::from_millis(2))
            .with_max_batch_bytes(256 * 1024),
    );
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
    let writer = open(options(Path::new(&path)).with_queue_capacity(10_000));
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
