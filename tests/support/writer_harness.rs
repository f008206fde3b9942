//! The telemetry writer's test harness: a numbered test record (that can hold the writer
//! thread at a gate, slow it down, or fail to serialize), a reader that parses logs back into
//! records and drop reports, and writer fixtures (their directories are `temp_dir::TempDir`s). Shared by
//! the writer tests of `tests/telemetry/` and `tests/telemetry_writer_processes.rs`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prompt_config::telemetry::writer::{DropReport, Record, TelemetryWriter, WriterOptions};
use serde::{Serialize, Serializer};
use serde_json::Value;

/// A generous bound for anything a loaded two-core machine should finish much sooner.
pub const PATIENCE: Duration = Duration::from_secs(120);
/// What a data record's [`Record::approximate_size`] counts besides its padding.
pub const RECORD_BASE_BYTES: usize = 64;

// ---------------------------------------------------------------------------------------------
// The test record

/// A numbered record from one source (a thread or a process), or a drop report.
pub enum TestRecord {
    Data {
        source: u32,
        id: u64,
        padding: String,
        /// When set, serializing waits for the gate: it holds the writer thread still.
        gate: Option<Arc<Gate>>,
        /// Serializing sleeps this long: a writer slower than its callers.
        delay: Duration,
    },
    Dropped(DropReport),
    /// A record whose serialization fails.
    Unserializable,
}

impl TestRecord {
    pub fn new(source: u32, id: u64) -> Self {
        Self::padded(source, id, 0)
    }

    pub fn padded(source: u32, id: u64, padding: usize) -> Self {
        Self::Data {
            source,
            id,
            padding: "x".repeat(padding),
            gate: None,
            delay: Duration::ZERO,
        }
    }

    pub fn gated(source: u32, id: u64, gate: &Arc<Gate>) -> Self {
        Self::Data {
            source,
            id,
            padding: String::new(),
            gate: Some(Arc::clone(gate)),
            delay: Duration::ZERO,
        }
    }

    /// A record whose serialization takes `delay`.
    pub fn slow(source: u32, id: u64, delay: Duration) -> Self {
        Self::Data {
            source,
            id,
            padding: String::new(),
            gate: None,
            delay,
        }
    }
}

/// The line a `TestRecord` becomes.
#[derive(Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Line<'a> {
    Record {
        source: u32,
        id: u64,
        #[serde(skip_serializing_if = "str::is_empty")]
        padding: &'a str,
    },
    Dropped {
        dropped_events: u64,
        dropped_total: u64,
        /// When the report was made, and when its first and last drops happened, in
        /// milliseconds since the Unix epoch.
        at_ms: u64,
        first_at_ms: u64,
        last_at_ms: u64,
    },
}

pub fn epoch_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

impl Serialize for TestRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Data {
                source,
                id,
                padding,
                gate,
                delay,
            } => {
                if let Some(gate) = gate {
                    gate.hold();
                }
                if !delay.is_zero() {
                    thread::sleep(*delay);
                }
                Line::Record {
                    source: *source,
                    id: *id,
                    padding,
                }
                .serialize(serializer)
            }
            Self::Dropped(report) => Line::Dropped {
                dropped_events: report.count,
                dropped_total: report.total,
                at_ms: epoch_ms(SystemTime::now()),
                first_at_ms: epoch_ms(report.first_at),
                last_at_ms: epoch_ms(report.last_at),
            }
            .serialize(serializer),
            Self::Unserializable => Err(serde::ser::Error::custom(
                "this record cannot be serialized",
            )),
        }
    }
}

impl Record for TestRecord {
    fn dropped(report: &DropReport) -> Self {
        Self::Dropped(*report)
    }

    /// `RECORD_BASE_BYTES` plus the padding's length: known exactly, for tests of the bound.
    fn approximate_size(&self) -> usize {
        match self {
            Self::Data { padding, .. } => RECORD_BASE_BYTES + padding.len(),
            _ => RECORD_BASE_BYTES,
        }
    }
}

/// Holds the writer thread inside a record's serialization until the test opens it.
#[derive(Default)]
pub struct Gate {
    /// (a thread is waiting at the gate, the gate is open)
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

impl Gate {
    pub fn hold(&self) {
        let mut state = self.state.lock().unwrap();
        state.0 = true;
        self.changed.notify_all();
        while !state.1 {
            state = self.changed.wait(state).unwrap();
        }
    }

    pub fn wait_until_held(&self) {
        let state = self.state.lock().unwrap();
        let (state, timeout) = self
            .changed
            .wait_timeout_while(state, PATIENCE, |state| !state.0)
            .unwrap();
        assert!(
            !timeout.timed_out() && state.0,
            "the writer thread never reached the gate"
        );
    }

    pub fn open(&self) {
        self.state.lock().unwrap().1 = true;
        self.changed.notify_all();
    }
}

// ---------------------------------------------------------------------------------------------
// Reading logs back

/// One drop report line: counts, and times in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropLine {
    pub count: u64,
    pub total: u64,
    pub at_ms: u64,
    pub first_at_ms: u64,
    pub last_at_ms: u64,
}

/// What a set of log files holds.
#[derive(Debug, Default)]
pub struct Log {
    /// (source, id) of every record line, in file order.
    pub records: Vec<(u32, u64)>,
    /// The count of every drop report line.
    pub drop_reports: Vec<u64>,
    /// Every drop report line, in file order.
    pub drop_lines: Vec<DropLine>,
    /// Complete lines that are not a record or a drop report.
    pub invalid: Vec<String>,
    /// Bytes after the last newline of a file: a line torn by a crash.
    pub partial_tails: Vec<String>,
}

impl Log {
    pub fn read(paths: &[PathBuf]) -> Self {
        let mut log = Self::default();
        for path in paths {
            log.read_file(path);
        }
        log
    }

    fn read_file(&mut self, path: &Path) {
        let bytes = fs::read(path).unwrap_or_default();
        let (complete, tail) = match bytes.iter().rposition(|&byte| byte == b'\n') {
            Some(end) => bytes.split_at(end + 1),
            None => (&[][..], &bytes[..]),
        };
        if !tail.is_empty() {
            self.partial_tails
                .push(String::from_utf8_lossy(tail).into_owned());
        }
        for line in complete.split(|&byte| byte == b'\n') {
            if !line.is_empty() {
                self.read_line(line);
            }
        }
    }

    fn read_line(&mut self, line: &[u8]) {
        let value: Value = match serde_json::from_slice(line) {
            Ok(value) => value,
            Err(_) => {
                self.invalid
                    .push(String::from_utf8_lossy(line).into_owned());
                return;
            }
        };
        let number = |key: &str| value.get(key).and_then(Value::as_u64);
        match (
            value.get("event").and_then(Value::as_str),
            number("source"),
            number("id"),
        ) {
            (Some("record"), Some(source), Some(id)) => {
                self.records.push((source as u32, id));
            }
            (Some("dropped"), _, _) if number("dropped_events").is_some() => {
                let count = number("dropped_events").unwrap_or(0);
                self.drop_reports.push(count);
                self.drop_lines.push(DropLine {
                    count,
                    total: number("dropped_total").unwrap_or(0),
                    at_ms: number("at_ms").unwrap_or(0),
                    first_at_ms: number("first_at_ms").unwrap_or(0),
                    last_at_ms: number("last_at_ms").unwrap_or(0),
                });
            }
            _ => self
                .invalid
                .push(String::from_utf8_lossy(line).into_owned()),
        }
    }

    pub fn reported_drops(&self) -> u64 {
        self.drop_reports.iter().sum()
    }

    /// Asserts the log holds exactly `expected` records, each once, and only valid lines.
    pub fn assert_exactly(&self, expected: impl IntoIterator<Item = (u32, u64)>) {
        assert!(
            self.invalid.is_empty(),
            "invalid lines: {:?}",
            first(&self.invalid)
        );
        let mut seen: HashMap<(u32, u64), u32> = HashMap::new();
        for record in &self.records {
            *seen.entry(*record).or_default() += 1;
        }
        let duplicated: Vec<_> = seen.iter().filter(|(_, count)| **count > 1).collect();
        assert!(
            duplicated.is_empty(),
            "duplicated records: {:?}",
            first(&duplicated)
        );
        let mut missing = Vec::new();
        let mut expected_count = 0;
        for record in expected {
            expected_count += 1;
            if seen.remove(&record).is_none() {
                missing.push(record);
            }
        }
        assert!(
            missing.is_empty(),
            "{} missing records: {:?}",
            missing.len(),
            first(&missing)
        );
        let unexpected: Vec<_> = seen.keys().collect();
        assert!(
            unexpected.is_empty(),
            "unexpected records: {:?}",
            first(&unexpected)
        );
        assert_eq!(self.records.len(), expected_count);
    }
}

pub fn first<T>(items: &[T]) -> &[T] {
    &items[..items.len().min(10)]
}

pub fn numbered_ids(source: u32, count: u64) -> impl Iterator<Item = (u32, u64)> {
    (0..count).map(move |id| (source, id))
}

/// `path` and its rotated files `path.N`, in no particular order.
pub fn log_files(path: &Path) -> Vec<PathBuf> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let rotated_prefix = format!("{name}.");
    fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|candidate| {
            let candidate_name = candidate.file_name().unwrap().to_string_lossy();
            candidate_name == name
                || candidate_name
                    .strip_prefix(&rotated_prefix)
                    .is_some_and(|suffix| suffix.parse::<u32>().is_ok())
        })
        .collect()
}

pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------------------------
// Fixtures

pub fn options(path: &Path) -> WriterOptions {
    WriterOptions::new(path).with_flush_interval(Duration::from_millis(10))
}

pub fn open(options: WriterOptions) -> TelemetryWriter<TestRecord> {
    TelemetryWriter::open(options).unwrap()
}

/// Asserts no file is larger than `limit` bytes.
pub fn assert_sizes_within(files: &[PathBuf], limit: u64) {
    for file in files {
        let size = fs::metadata(file).unwrap().len();
        assert!(
            size <= limit,
            "{} has {size} bytes, over {limit}",
            file.display()
        );
    }
}
