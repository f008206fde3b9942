//! One *generation* of a writer: the queue, gate, counters and thread handle that one process
//! started (see the parent module's *Fork safety*). It owns the caller's side of `enqueue`
//! (the gate, the byte reservation against `max_queue_bytes`, the `try_send`, counting drops
//! with their times), `flush` with its deadline, and the closing protocol that loses no
//! accepted record; the counters here are what the writer thread and the caller share.

use std::process;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

use super::worker::Message;
use super::{Record, WriterOptions};

/// What the callers and the writer thread share within one generation.
pub(super) struct Shared {
    /// Records refused by a full queue or lost to a failed write.
    pub(super) dropped: AtomicU64,
    pub(super) written: AtomicU64,
    /// Drops whose report line was lost to a failed write, to be reported again.
    pub(super) unreported_drops: AtomicU64,
    /// The first and the last drop since the last report, in nanoseconds since the Unix epoch
    /// (`u64::MAX` and 0 when none).
    pub(super) first_drop: AtomicU64,
    pub(super) last_drop: AtomicU64,
    /// The approximate bytes reserved by queued records, and the most ever reserved at once.
    pub(super) queued_bytes: AtomicUsize,
    pub(super) peak_queued_bytes: AtomicUsize,
    pub(super) last_error: Mutex<Option<String>>,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            dropped: AtomicU64::new(0),
            written: AtomicU64::new(0),
            unreported_drops: AtomicU64::new(0),
            first_drop: AtomicU64::new(u64::MAX),
            last_drop: AtomicU64::new(0),
            queued_bytes: AtomicUsize::new(0),
            peak_queued_bytes: AtomicUsize::new(0),
            last_error: Mutex::new(None),
        }
    }
}

impl Shared {
    pub(super) fn record_error(&self, message: String) {
        *self.last_error.lock() = Some(message);
    }

    /// Counts `count` records as dropped now. The time goes in before the count, so a report
    /// that sees the count finds its time (a drop racing with a report may have its time in
    /// the report before the one that counts it; the counts stay exact).
    pub(super) fn note_drops(&self, count: u64) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
            });
        self.first_drop.fetch_min(now, Ordering::AcqRel);
        self.last_drop.fetch_max(now, Ordering::AcqRel);
        self.dropped.fetch_add(count, Ordering::AcqRel);
    }

    /// Takes the first and last drop times noted since the previous call, if any.
    pub(super) fn take_drop_times(&self) -> Option<(SystemTime, SystemTime)> {
        let first = self.first_drop.swap(u64::MAX, Ordering::AcqRel);
        let last = self.last_drop.swap(0, Ordering::AcqRel);
        let at = |nanos: u64| UNIX_EPOCH + Duration::from_nanos(nanos);
        (first <= last).then(|| (at(first), at(last)))
    }

    /// Returns the reservation of a record that left the queue.
    pub(super) fn release(&self, bytes: usize) {
        self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// One writer thread with its queue, started by (and only usable in) process `pid`.
pub(super) struct Generation<R: Record> {
    pub(super) pid: u32,
    max_queue_bytes: usize,
    sender: SyncSender<Message<R>>,
    pub(super) gate: Gate,
    pub(super) shared: Arc<Shared>,
    pub(super) thread: Mutex<Option<JoinHandle<()>>>,
}

impl<R: Record> Generation<R> {
    pub(super) fn new(options: &WriterOptions) -> (Self, Receiver<Message<R>>) {
        // A zero-capacity channel would only accept while the thread waits: keep one slot.
        let (sender, receiver) = mpsc::sync_channel(options.queue_capacity.max(1));
        let generation = Self {
            pid: process::id(),
            max_queue_bytes: options.max_queue_bytes,
            sender,
            gate: Gate::default(),
            shared: Arc::default(),
            thread: Mutex::new(None),
        };
        (generation, receiver)
    }

    pub(super) fn offer(&self, record: R) -> bool {
        // Estimated before the gate: the time spent inside it is what `close` waits for.
        let size = record.approximate_size();
        if !self.gate.enter() {
            return false;
        }
        let shared = &self.shared;
        let before = shared.queued_bytes.fetch_add(size, Ordering::AcqRel);
        let queued = before.saturating_add(size);
        // Only an empty queue takes a record larger than the whole bound.
        let outcome = if before > 0 && queued > self.max_queue_bytes {
            Err((Message::Record(record, size), true))
        } else {
            match self.sender.try_send(Message::Record(record, size)) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(message)) => Err((message, true)),
                Err(TrySendError::Disconnected(message)) => Err((message, false)),
            }
        };
        let (accepted, refused) = match outcome {
            Ok(()) => {
                if queued > shared.peak_queued_bytes.load(Ordering::Relaxed) {
                    shared.peak_queued_bytes.fetch_max(queued, Ordering::AcqRel);
                }
                (true, None)
            }
            Err((message, dropped)) => {
                shared.release(size);
                if dropped {
                    // Counted before leaving the gate, so `close` sees it and the last report
                    // has it.
                    shared.note_drops(1);
                }
                (false, Some(message))
            }
        };
        self.gate.leave();
        // Freed outside the gate, which `close` waits on.
        drop(refused);
        accepted
    }

    pub(super) fn flush(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let (acknowledge, acknowledged) = mpsc::sync_channel(1);
        let mut message = Message::Flush(acknowledge);
        loop {
            if !self.gate.enter() {
                // A close is under way: it writes everything, holding the slot until it has.
                drop(self.thread.lock());
                return;
            }
            let sent = self.sender.try_send(message);
            self.gate.leave();
            match sent {
                Ok(()) => break,
                Err(TrySendError::Full(returned)) if Instant::now() < deadline => {
                    message = returned;
                    thread::sleep(Duration::from_millis(1));
                }
                Err(_) => return,
            }
        }
        // An error means the thread stopped or the deadline passed: nothing more to wait for.
        let _ = acknowledged.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    }

    pub(super) fn close(&self) {
        // Serializes concurrent closes: the second returns after the first has finished.
        let mut slot = self.thread.lock();
        self.gate.close();
        self.gate.wait_until_empty();
        if let Some(handle) = slot.take() {
            // Blocking is fine here: the thread is draining, and an error means it already
            // stopped.
            let _ = self.sender.send(Message::Shutdown);
            let _ = handle.join();
        }
    }
}

/// Counts callers between their closed-check and their `try_send`, plus a closed bit.
#[derive(Default)]
pub(super) struct Gate {
    state: AtomicU64,
}

impl Gate {
    const CLOSED: u64 = 1 << 63;

    pub(super) fn enter(&self) -> bool {
        let previous = self.state.fetch_add(1, Ordering::Acquire);
        if previous & Self::CLOSED != 0 {
            self.leave();
            return false;
        }
        true
    }

    pub(super) fn leave(&self) {
        self.state.fetch_sub(1, Ordering::Release);
    }

    pub(super) fn close(&self) {
        self.state.fetch_or(Self::CLOSED, Ordering::AcqRel);
    }

    pub(super) fn wait_until_empty(&self) {
        // Callers spend a `try_send` inside, so this spins for nanoseconds, not longer.
        while self.state.load(Ordering::Acquire) & !Self::CLOSED != 0 {
            thread::yield_now();
        }
    }
}
