//! The telemetry writer: callers hand records to a bounded queue, and background threads
//! append them to a JSON Lines file, so a request never waits on the disk.
//!
//! **The caller's side** never blocks and does no I/O: [`TelemetryWriter::enqueue`] checks the
//! pid, passes a gate (one atomic counter), reserves the record's approximate size
//! ([`Record::approximate_size`], an estimate from its string lengths, not a serialization)
//! against `max_queue_bytes` with one atomic add, and `try_send`s into a `sync_channel` of
//! `queue_capacity` slots. A record that would take the queue past either bound is dropped and
//! counted (with the time of the drop); a record larger than the whole byte bound is accepted
//! only into an empty queue, so the queue never holds more than the bound plus one record. The
//! serializing thread returns the reservations of the records it has written into its batch
//! every 64 records and whenever the queue drains (one atomic subtraction for many records), so
//! the count errs on the full side for a moment, never on the empty side.
//!
//! **Drop reports.** While records are being dropped, one `R::dropped(report)` line reports the
//! drops since the previous report, with the times of the first and the last of them, at least
//! every `drop_report_interval` (1 s) even when the queue never drains, and as soon as the
//! serializing thread finds the queue empty. Every drop is counted exactly once: the reports of
//! a writer add up to [`TelemetryWriter::dropped`].
//!
//! **The background threads** are two per writer. The serializing thread writes each record
//! as one line straight into the batch buffer ([`Record::write_json`]), and hands the batch on when the next line would take it past
//! `max_batch_bytes` (a single longer line goes alone), when `flush_interval` has passed since
//! its first line, and on `flush` and `close`. The output thread writes each batch with one
//! `write_all` and recycles its buffer, so serializing the next batch overlaps writing this one
//! and a slow disk stalls neither the callers nor the draining of the queue. It also frees the
//! records already serialized, handed over 64 at a time when it has room (freeing what the
//! callers allocated is a large part of a record's cost, and this thread is mostly idle); those
//! few lists are outside the queue's byte bound. Under steady traffic the serializing thread
//! naps 1 ms between drains rather than being woken, at a syscall's cost, by each `enqueue`.
//! The file is opened
//! with `O_APPEND`, so each batch of whole lines lands at the end of the file in one piece even
//! when several processes append to it (on local filesystems), and a `SIGKILL` can tear at most
//! the last line. `close` writes everything and `fsync`s.
//!
//! **Closing** must not lose a record `enqueue` accepted, yet `enqueue` takes no lock. The gate
//! counts the callers between their closed-check and their `try_send`; `close` sets the gate's
//! closed bit, waits for that count to reach zero, and only then queues its shutdown message, so
//! every accepted record is ahead of it in the queue and callers arriving later are refused.
//!
//! **Fork safety.** After `fork()` the child has a copy of the writer's memory but none of its
//! threads, and any lock the parent's threads held at that instant stays held forever. So all a
//! writer's threads need (channel, gate, counters, thread handle) is one *generation*, a leaked
//! `Box` behind an `AtomicPtr`, stamped with the pid that started it. Every operation compares
//! that pid with `std::process::id()` before touching anything else in the generation; reading
//! the pointer and the stamp are plain memory reads. In a child the comparison fails, and
//! `enqueue` (or `after_fork`) builds a fresh generation with its own channel and threads (which
//! open the file themselves, so the caller still does no I/O) and installs it with one
//! compare-exchange; a racing thread that loses the exchange frees its unstarted candidate. The
//! parent's generation is never dropped in the child (that would send to and join threads that
//! do not exist there): it stays leaked, untouched, and the records it had queued or batched,
//! which the parent still owns and writes, are never written twice. Generations are freed only
//! by `Drop`, which has exclusive access, so a reference read from the pointer stays valid for
//! as long as `&self`. `dropped()` and `written()` are per generation: in a child they count that
//! process only. Known limit: if a stale generation's pid is recycled by a later descendant (the
//! original parent exited, and a grandchild got its pid before ever writing), the check cannot
//! tell.
//!
//! **Rotation.** Before each batch the output thread compares the inode of `path` with that of
//! its open file and reopens `path` when they differ (another process rotated). Then, when the
//! open file has reached `rotate_bytes`, it takes an exclusive lock on the sidecar `path.lock`,
//! checks again (another process may have rotated while it waited: it follows, and rotates only
//! if the file now at `path` is full too), renames `path.(N-1)` to `path.N` ... `path` to
//! `path.1`, reopens `path`, and releases the lock. A process that wrote a batch between
//! another's check and rename wrote it into `path.1`: nothing is lost or duplicated, that file
//! is just larger by the batch, so with `P` processes a file holds at most
//! `rotate_bytes + P * max_batch_bytes` bytes.
//!
//! **Errors** on the background threads cannot reach a caller that has moved on: a batch that
//! cannot be written counts its records as dropped (so a later drop report accounts for them),
//! a failed rotation keeps writing to the current file, and the latest error is kept for
//! [`TelemetryWriter::last_error`].

mod generation;
pub(crate) mod json;
mod log_file;
mod output;
mod worker;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::process;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::mpsc::Receiver;
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use log_file::LogFile;
use output::Output;
use generation::{Generation, Shared};
use worker::{Message, Worker};

/// The default number of records the queue holds.
pub const DEFAULT_QUEUE_CAPACITY: usize = 65_536;
/// The default bound on the approximate bytes of the records in the queue: 16 MiB.
pub const DEFAULT_MAX_QUEUE_BYTES: usize = 16 << 20;
/// The default longest time between two drop reports while records are being dropped.
pub const DEFAULT_DROP_REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// The default longest time a record waits in memory before it is written.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_millis(200);
/// The default largest single write: 1 MiB.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 1 << 20;
/// The default file size that triggers a rotation: 100 MiB.
pub const DEFAULT_ROTATE_BYTES: u64 = 100 << 20;
/// The default number of rotated files kept.
pub const DEFAULT_ROTATED_FILES: u32 = 5;

/// How long `flush` waits at most, so a stuck disk cannot hang a caller forever.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// What the writer needs from a record type: JSON serialization, a record that reports drops,
/// and an estimate of the memory a queued record holds.
pub trait Record: Serialize + Send + Sized + 'static {
    /// The record reporting the drops of `report`.
    fn dropped(report: &DropReport) -> Self;

    /// The approximate bytes the record holds while queued (itself and what it owns on the
    /// heap), counted against `max_queue_bytes`. Called on the caller's thread, so it must be
    /// cheap: an estimate from string lengths, never a serialization. The default counts only
    /// the record's own size.
    fn approximate_size(&self) -> usize {
        std::mem::size_of::<Self>()
    }

    /// Appends the record as one JSON object, without the newline. The default goes through
    /// `Serialize`; a type may write its common records by hand, faster, to the same bytes.
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        serde_json::to_writer(out, self)
    }
}

/// What a drop report says: the drops since the previous report and when they happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropReport {
    /// Records dropped since the previous report.
    pub count: u64,
    /// Records this process's writer dropped since it started, `count` included.
    pub total: u64,
    /// When the first of the `count` drops happened (the report's time when unknown, as for
    /// drops whose earlier report line was lost to a failed write and are reported again).
    pub first_at: SystemTime,
    /// When the last of them happened.
    pub last_at: SystemTime,
}
/// Where and how the telemetry writer writes (the engine's
/// [`EngineOptions::telemetry`](crate::EngineOptions::telemetry)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriterOptions {
    /// The log file; its directory must exist.
    pub path: PathBuf,
    /// How many records the queue holds before `enqueue` drops (default 65,536).
    pub queue_capacity: usize,
    /// The most approximate bytes (each record's `approximate_size`) the queued records may hold
    /// before `enqueue` drops (default 16 MiB); a record larger than this is accepted only into
    /// an empty queue.
    pub max_queue_bytes: usize,
    /// The longest time between two `telemetry.dropped` lines while records are being dropped
    /// (default 1 s).
    pub drop_report_interval: Duration,
    /// The longest a record waits in memory before it is written (default 200 ms).
    pub flush_interval: Duration,
    /// The largest single write in bytes (default 1 MiB); a longer line is written alone.
    pub max_batch_bytes: usize,
    /// The size at which the file is rotated, or `None` to never rotate (default 100 MiB).
    pub rotate_bytes: Option<u64>,
    /// How many rotated files `path.1` ... `path.N` are kept (default 5; 0 discards the old file).
    pub rotated_files: u32,
}

impl WriterOptions {
    /// Options for a log at `path` with the default queue, batching and rotation.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            max_queue_bytes: DEFAULT_MAX_QUEUE_BYTES,
            drop_report_interval: DEFAULT_DROP_REPORT_INTERVAL,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            rotate_bytes: Some(DEFAULT_ROTATE_BYTES),
            rotated_files: DEFAULT_ROTATED_FILES,
        }
    }

    /// Sets [`queue_capacity`](Self::queue_capacity) (records).
    pub fn with_queue_capacity(mut self, records: usize) -> Self {
        self.queue_capacity = records;
        self
    }

    /// Sets [`max_queue_bytes`](Self::max_queue_bytes).
    pub fn with_max_queue_bytes(mut self, bytes: usize) -> Self {
        self.max_queue_bytes = bytes;
        self
    }

    /// Sets [`drop_report_interval`](Self::drop_report_interval).
    pub fn with_drop_report_interval(mut self, interval: Duration) -> Self {
        self.drop_report_interval = interval;
        self
    }

    /// Sets [`flush_interval`](Self::flush_interval).
    pub fn with_flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Sets [`max_batch_bytes`](Self::max_batch_bytes).
    pub fn with_max_batch_bytes(mut self, bytes: usize) -> Self {
        self.max_batch_bytes = bytes;
        self
    }

    /// Sets [`rotate_bytes`](Self::rotate_bytes) (`None`: never rotate).
    pub fn with_rotate_bytes(mut self, bytes: Option<u64>) -> Self {
        self.rotate_bytes = bytes;
        self
    }

    /// Sets [`rotated_files`](Self::rotated_files).
    pub fn with_rotated_files(mut self, files: u32) -> Self {
        self.rotated_files = files;
        self
    }
}

/// A JSON Lines log written by background threads; callers share it by reference.
pub struct TelemetryWriter<R: Record> {
    options: Arc<WriterOptions>,
    /// The current generation: a leaked `Box`, freed only by `Drop` (see the module doc).
    current: AtomicPtr<Generation<R>>,
    closed: AtomicBool,
}

impl<R: Record> TelemetryWriter<R> {
    /// Opens (or creates) the log for appending and starts the background threads.
    pub fn open(options: WriterOptions) -> io::Result<Self> {
        let log = LogFile::open(&options.path)?;
        let options = Arc::new(options);
        let (generation, receiver) = Generation::new(&options);
        let handle = spawn_worker(
            receiver,
            log,
            Arc::clone(&generation.shared),
            Arc::clone(&options),
        )?;
        *generation.thread.lock() = Some(handle);
        Ok(Self {
            options,
            current: AtomicPtr::new(Box::into_raw(Box::new(generation))),
            closed: AtomicBool::new(false),
        })
    }

    /// Queues a record without blocking or I/O; false when it was dropped (queue full, or closed).
    pub fn enqueue(&self, record: R) -> bool {
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        self.generation_of_this_process().offer(record)
    }

    /// Records dropped by this process so far because the queue was full or could not be written.
    pub fn dropped(&self) -> u64 {
        self.own_generation().map_or(0, |generation| {
            generation.shared.dropped.load(Ordering::Acquire)
        })
    }

    /// The approximate bytes of the records now queued by this process.
    #[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
    pub fn queued_bytes(&self) -> usize {
        self.own_generation().map_or(0, |generation| {
            generation.shared.queued_bytes.load(Ordering::Acquire)
        })
    }

    /// The most approximate bytes this process's queue has held at once.
    #[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
    pub fn peak_queued_bytes(&self) -> usize {
        self.own_generation().map_or(0, |generation| {
            generation.shared.peak_queued_bytes.load(Ordering::Acquire)
        })
    }

    /// Records written by this process so far.
    pub fn written(&self) -> u64 {
        self.own_generation().map_or(0, |generation| {
            generation.shared.written.load(Ordering::Acquire)
        })
    }

    /// The latest I/O error of the background threads, if any, naming the file.
    #[cfg_attr(not(feature = "test-hooks"), allow(dead_code))]
    pub fn last_error(&self) -> Option<String> {
        self.own_generation()
            .and_then(|generation| generation.shared.last_error.lock().clone())
    }

    /// Returns once every record enqueued before the call is written (waiting at most 10 s).
    pub fn flush(&self) {
        if let Some(generation) = self.own_generation() {
            generation.flush(FLUSH_TIMEOUT);
        }
    }

    /// Writes everything queued, fsyncs and stops the threads; later `enqueue`s return false.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let mut pointer = self.current.load(Ordering::SeqCst);
        loop {
            // SAFETY: generations are leaked `Box`es freed only by `Drop`, which cannot run
            // while `&self` is alive.
            let generation = unsafe { &*pointer };
            if generation.pid == process::id() {
                generation.close();
            }
            // A child's first `enqueue` may have installed a fresh generation meanwhile.
            let now = self.current.load(Ordering::SeqCst);
            if now == pointer {
                return;
            }
            pointer = now;
        }
    }

    /// In a forked child, starts a fresh writer with the same options; elsewhere (or once
    /// closed) does nothing.
    pub fn after_fork(&self) {
        if !self.closed.load(Ordering::Acquire) {
            self.generation_of_this_process();
        }
    }

    /// The current generation when this process started it; never touches another's.
    fn own_generation(&self) -> Option<&Generation<R>> {
        // SAFETY: see `close`.
        let generation = unsafe { &*self.current.load(Ordering::Acquire) };
        (generation.pid == process::id()).then_some(generation)
    }

    /// The current generation, after replacing it when it belongs to the parent of a fork.
    fn generation_of_this_process(&self) -> &Generation<R> {
        let mut pointer = self.current.load(Ordering::Acquire);
        loop {
            // SAFETY: see `close`.
            let generation = unsafe { &*pointer };
            if generation.pid == process::id() {
                return generation;
            }
            match self.replace(pointer) {
                Ok(fresh) => return fresh,
                Err(installed) => pointer = installed,
            }
        }
    }

    /// Installs a fresh generation in place of `stale`, which is leaked; `Err` carries the
    /// generation another thread installed first.
    fn replace(&self, stale: *mut Generation<R>) -> Result<&Generation<R>, *mut Generation<R>> {
        let (generation, receiver) = Generation::new(&self.options);
        let fresh = Box::into_raw(Box::new(generation));
        // SAFETY: `fresh` is a valid `Box` this thread owns until it is published, and after
        // that it lives until `Drop`.
        let fresh_generation = unsafe { &*fresh };
        // Held until the thread handle is stored, so a concurrent `close` of the new generation
        // waits for the thread instead of finding no thread to stop.
        let mut slot = fresh_generation.thread.lock();
        if let Err(installed) =
            self.current
                .compare_exchange(stale, fresh, Ordering::AcqRel, Ordering::Acquire)
        {
            drop(slot);
            // SAFETY: the exchange failed, so `fresh` was never published; no thread started.
            drop(unsafe { Box::from_raw(fresh) });
            return Err(installed);
        }
        // The file is opened by the new thread, not here: `enqueue` does no I/O.
        let log = LogFile::deferred(&self.options.path);
        match spawn_worker(
            receiver,
            log,
            Arc::clone(&fresh_generation.shared),
            Arc::clone(&self.options),
        ) {
            Ok(handle) => *slot = Some(handle),
            Err(error) => {
                fresh_generation
                    .shared
                    .record_error(format!("cannot start the telemetry writer thread: {error}"));
                fresh_generation.gate.close();
            }
        }
        drop(slot);
        Ok(fresh_generation)
    }
}

impl<R: Record> fmt::Debug for TelemetryWriter<R> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("TelemetryWriter")
            .field("path", &self.options.path)
            .field("closed", &self.closed.load(Ordering::Acquire))
            .field("written", &self.written())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl<R: Record> Drop for TelemetryWriter<R> {
    fn drop(&mut self) {
        self.close();
        let pointer = *self.current.get_mut();
        // SAFETY: `Drop` has exclusive access; a generation of another process is left leaked.
        if unsafe { (*pointer).pid } == process::id() {
            // SAFETY: as above; this is the only place generations are freed.
            drop(unsafe { Box::from_raw(pointer) });
        }
    }
}

fn spawn_worker<R: Record>(
    receiver: Receiver<Message<R>>,
    log: LogFile,
    shared: Arc<Shared>,
    options: Arc<WriterOptions>,
) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("telemetry-writer".to_owned())
        .spawn(move || {
            let output = Output::new(log, Arc::clone(&shared), Arc::clone(&options));
            Worker::new(receiver, output, shared, options).run();
        })
}
