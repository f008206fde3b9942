//! Unit tests of the writer's parts: options, the closing gate, and the log file's rotation.
//! The writer as a whole, across threads and processes, is specified in
//! the `tests/telemetry_writer*.rs` binaries.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use super::log_file::{LogFile, numbered};
use super::WriterOptions;
use super::generation::Gate;

/// A directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "prompt-config-writer-unit-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    fn log(&self) -> PathBuf {
        self.0.join("events.jsonl")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn contents(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// Writes `line` the way the writer does: prepare (follow, maybe rotate), then one append.
fn write_line(log: &mut LogFile, line: &str, rotate_bytes: Option<u64>, rotated_files: u32) {
    log.prepare(rotate_bytes, rotated_files).unwrap();
    log.append(format!("{line}\n").as_bytes()).unwrap();
}

#[test]
fn options_default_to_the_documented_values() {
    let options = WriterOptions::new("/var/log/app/telemetry.jsonl");
    assert_eq!(options.path, PathBuf::from("/var/log/app/telemetry.jsonl"));
    assert_eq!(options.queue_capacity, 65_536);
    assert_eq!(options.flush_interval, Duration::from_millis(200));
    assert_eq!(options.max_batch_bytes, 1 << 20);
    assert_eq!(options.rotate_bytes, Some(100 << 20));
    assert_eq!(options.rotated_files, 5);
}

#[test]
fn a_closed_gate_refuses_entry() {
    let gate = Gate::default();
    assert!(gate.enter());
    gate.leave();
    gate.close();
    assert!(!gate.enter());
}

#[test]
fn waiting_for_an_empty_gate_waits_for_the_callers_inside() {
    let gate = Arc::new(Gate::default());
    assert!(gate.enter());
    gate.close();
    let emptied = Arc::new(AtomicBool::new(false));
    let waiter = {
        let (gate, emptied) = (Arc::clone(&gate), Arc::clone(&emptied));
        thread::spawn(move || {
            gate.wait_until_empty();
            emptied.store(true, Ordering::SeqCst);
        })
    };
    thread::sleep(Duration::from_millis(50));
    assert!(!emptied.load(Ordering::SeqCst));
    gate.leave();
    waiter.join().unwrap();
    assert!(emptied.load(Ordering::SeqCst));
}

#[test]
fn opening_a_log_in_a_missing_directory_fails_naming_the_path() {
    let directory = TempDir::new("missing-directory");
    let path = directory.0.join("absent").join("events.jsonl");
    let error = LogFile::open(&path).err().unwrap();
    assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
}

#[test]
fn rotation_shifts_numbered_files_and_drops_the_oldest() {
    let directory = TempDir::new("shift");
    let path = directory.log();
    let mut log = LogFile::open(&path).unwrap();
    for line in ["first", "second", "third", "fourth"] {
        write_line(&mut log, line, Some(1), 2);
    }
    assert_eq!(contents(&path), "fourth\n");
    assert_eq!(contents(&numbered(&path, 1)), "third\n");
    assert_eq!(contents(&numbered(&path, 2)), "second\n");
    assert!(!numbered(&path, 3).exists());
}

#[test]
fn rotation_moves_only_the_files_before_the_first_gap() {
    let directory = TempDir::new("gap");
    let path = directory.log();
    fs::write(numbered(&path, 1), "one\n").unwrap();
    fs::write(numbered(&path, 3), "three\n").unwrap();
    let mut log = LogFile::open(&path).unwrap();
    write_line(&mut log, "current", None, 5);
    log.rotate(1, 5).unwrap();
    assert_eq!(contents(&numbered(&path, 1)), "current\n");
    assert_eq!(contents(&numbered(&path, 2)), "one\n");
    assert_eq!(contents(&numbered(&path, 3)), "three\n");
    assert_eq!(contents(&path), "");
}

#[test]
fn rotation_without_rotated_files_starts_the_file_over() {
    let directory = TempDir::new("no-rotated-files");
    let path = directory.log();
    let mut log = LogFile::open(&path).unwrap();
    write_line(&mut log, "old", Some(1), 0);
    write_line(&mut log, "new", Some(1), 0);
    assert_eq!(contents(&path), "new\n");
    assert!(!numbered(&path, 1).exists());
}

#[test]
fn a_log_follows_the_path_after_another_writer_rotated_it() {
    let directory = TempDir::new("follow");
    let path = directory.log();
    let mut this = LogFile::open(&path).unwrap();
    let mut other = LogFile::open(&path).unwrap();
    write_line(&mut other, "before", None, 5);
    write_line(&mut other, "after", Some(1), 5);
    write_line(&mut this, "followed", None, 5);
    assert_eq!(contents(&numbered(&path, 1)), "before\n");
    assert_eq!(contents(&path), "after\nfollowed\n");
}

#[test]
fn a_rotation_found_done_by_another_writer_is_not_repeated() {
    let directory = TempDir::new("rotated-meanwhile");
    let path = directory.log();
    let mut this = LogFile::open(&path).unwrap();
    let mut other = LogFile::open(&path).unwrap();
    write_line(&mut this, "full", None, 5);
    // Both saw a full file; the other rotated first, while this one waited for the lock.
    other.rotate(1, 5).unwrap();
    this.rotate(1, 5).unwrap();
    assert_eq!(contents(&numbered(&path, 1)), "full\n");
    assert!(!numbered(&path, 2).exists());
    write_line(&mut this, "next", None, 5);
    assert_eq!(contents(&path), "next\n");
}

#[test]
fn a_deleted_log_is_created_again_at_the_next_write() {
    let directory = TempDir::new("deleted");
    let path = directory.log();
    let mut log = LogFile::open(&path).unwrap();
    write_line(&mut log, "gone", None, 5);
    fs::remove_file(&path).unwrap();
    write_line(&mut log, "back", None, 5);
    assert_eq!(contents(&path), "back\n");
}
