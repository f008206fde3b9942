//! The writer's serializing thread: it drains the queue, writes records straight into batches
//! of whole JSON lines no longer than `max_batch_bytes`, reports drops once the queue has
//! drained and at least every `drop_report_interval` while drops go on, and hands each batch
//! to the output thread, which writes it while the next one fills.

use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use super::output::{self, Batch, Output, ToOutput};
use super::{DropReport, Record, Shared, WriterOptions};

/// How many queued messages the thread handles between two looks at the clock.
const MESSAGES_PER_CLOCK_CHECK: u32 = 64;
/// Messages to the output thread not yet taken, besides the batch being written: one batch
/// queued while another is written, and room for a list of records to free.
const BATCHES_IN_FLIGHT: usize = 2;
/// Records written into batches that are handed to the output thread together to be freed:
/// freeing what callers allocated is much of a record's cost, and the output thread is mostly
/// idle. At most `BATCHES_IN_FLIGHT` lists wait in the channel and `MAX_RECORDS_TO_FREE`
/// records here, so what they hold stays small.
const RECORDS_PER_FREE: usize = 64;
/// The most written records kept waiting for the output thread to have room to free them.
const MAX_RECORDS_TO_FREE: usize = 512;
/// Messages taken in one go (the first and what was queued behind it) that mean steady
/// traffic, which the thread then polls for instead of waiting to be woken.
const STEADY_MESSAGES: usize = 8;
/// How long the thread naps between two looks at a steadily fed queue; what arrives meanwhile
/// waits in the queue, bounded as ever.
const POLL_INTERVAL: Duration = Duration::from_millis(1);

/// What travels through the queue.
pub(super) enum Message<R> {
    /// A record to write, with the bytes it reserved in the queue.
    Record(R, usize),
    /// Write what is buffered, then acknowledge.
    Flush(SyncSender<()>),
    /// Write what is buffered, fsync and stop; the gate guarantees nothing follows it.
    Shutdown,
}

/// What one line of a batch is, so a split batch keeps its counts exact.
#[derive(Clone, Copy)]
enum Line {
    Record,
    DropReport(u64),
}

impl Line {
    /// The records and the reported drops this line accounts for.
    fn counts(self) -> (u64, u64) {
        match self {
            Line::Record => (1, 0),
            Line::DropReport(count) => (0, count),
        }
    }
}

/// Where full batches go.
enum Sink<R> {
    /// To the output thread, with its emptied buffers coming back for reuse.
    Thread {
        batches: SyncSender<ToOutput<R>>,
        spare: Receiver<Vec<u8>>,
        thread: JoinHandle<()>,
    },
    /// Written on this thread, when no output thread could be started.
    Here(Output),
}

impl<R: Send + 'static> Sink<R> {
    fn start(output: Output) -> Self {
        let (batches, batches_receiver) = mpsc::sync_channel(BATCHES_IN_FLIGHT);
        let (spare_sender, spare) = mpsc::sync_channel(BATCHES_IN_FLIGHT + 1);
        // The output is moved into the thread only once it has started, so a failed start can
        // keep it and write here instead.
        let (output_sender, output_receiver) = mpsc::sync_channel::<Output>(1);
        let started = thread::Builder::new()
            .name("telemetry-output".to_owned())
            .spawn(move || {
                if let Ok(output) = output_receiver.recv() {
                    output::run(output, batches_receiver, spare_sender);
                }
            });
        match started {
            Ok(thread) => match output_sender.send(output) {
                Ok(()) => Self::Thread {
                    batches,
                    spare,
                    thread,
                },
                Err(returned) => Self::Here(returned.0),
            },
            Err(_) => Self::Here(output),
        }
    }

    /// Writes or hands over the batch; returns it when the output thread is gone.
    fn send(&mut self, mut batch: Batch) -> Option<Batch> {
        match self {
            // Blocks while the output thread is busy: the queue absorbs the wait.
            Self::Thread { batches, .. } => match batches.send(ToOutput::Batch(batch)) {
                Ok(()) => None,
                Err(mpsc::SendError(ToOutput::Batch(batch))) => Some(batch),
                Err(_) => None,
            },
            Self::Here(output) => {
                output.write(&mut batch);
                None
            }
        }
    }

    /// Has the output thread free `records` when it has room; returns them otherwise.
    fn free(&mut self, records: Vec<R>) -> Option<Vec<R>> {
        match self {
            Self::Thread { batches, .. } => match batches.try_send(ToOutput::Free(records)) {
                Ok(()) => None,
                Err(TrySendError::Full(ToOutput::Free(records))) => Some(records),
                // The output thread is gone: they are freed here.
                Err(_) => None,
            },
            Self::Here(_) => None,
        }
    }

    fn spare_buffer(&mut self) -> Vec<u8> {
        match self {
            Self::Thread { spare, .. } => spare.try_recv().unwrap_or_default(),
            Self::Here(_) => Vec::new(),
        }
    }

    fn finish(self) {
        match self {
            Self::Thread {
                batches, thread, ..
            } => {
                // Hanging up lets the output thread write what is left, fsync and end.
                drop(batches);
                let _ = thread.join();
            }
            Self::Here(mut output) => output.finish(),
        }
    }
}

/// The state of the serializing thread.
pub(super) struct Worker<R: Record> {
    receiver: Receiver<Message<R>>,
    sink: Sink<R>,
    shared: Arc<Shared>,
    options: Arc<WriterOptions>,
    batch: Batch,
    /// When the current batch must be written, set by its first line.
    deadline: Instant,
    /// Drops accounted for by report lines already batched.
    reported_drops: u64,
    /// When the latest drop report was batched (or the thread started).
    last_drop_report: Instant,
    /// Messages the latest `drain` took, the one that woke it included.
    drained: usize,
    /// Records already written into the batch, to be freed by the output thread.
    spent: Vec<R>,
    /// Queue bytes of records already written into batches, returned to the queue's bound in
    /// one atomic subtraction every few dozen records: one per record would bounce the counter's
    /// cache line between this thread and the callers at every enqueue.
    unreleased: usize,
}

impl<R: Record> Worker<R> {
    pub(super) fn new(
        receiver: Receiver<Message<R>>,
        output: Output,
        shared: Arc<Shared>,
        options: Arc<WriterOptions>,
    ) -> Self {
        Self {
            receiver,
            sink: Sink::start(output),
            shared,
            options,
            batch: Batch::default(),
            deadline: Instant::now(),
            reported_drops: 0,
            last_drop_report: Instant::now(),
            drained: 0,
            spent: Vec::with_capacity(RECORDS_PER_FREE),
            unreleased: 0,
        }
    }

    /// Runs until `Shutdown` (or until every sender is gone), then writes the rest and fsyncs.
    pub(super) fn run(mut self) {
        // While records keep coming, the thread naps and takes what arrived in the meantime:
        // a thread blocked on the queue must be woken by the sender (a syscall on the
        // caller's thread, and a context switch here), which under steady traffic would
        // happen for nearly every record.
        let mut steady = false;
        loop {
            let received = if steady {
                let nap = if self.batch.bytes.is_empty() {
                    POLL_INTERVAL
                } else {
                    POLL_INTERVAL.min(self.deadline.saturating_duration_since(Instant::now()))
                };
                thread::sleep(nap);
                match self.receiver.try_recv() {
                    Ok(message) => Ok(Some(message)),
                    Err(TryRecvError::Empty) => Ok(None),
                    Err(TryRecvError::Disconnected) => Err(()),
                }
            } else if self.batch.bytes.is_empty() {
                self.receiver.recv().map(Some).map_err(|_| ())
            } else {
                let wait = self.deadline.saturating_duration_since(Instant::now());
                match self.receiver.recv_timeout(wait) {
                    Ok(message) => Ok(Some(message)),
                    Err(RecvTimeoutError::Timeout) => Ok(None),
                    Err(RecvTimeoutError::Disconnected) => Err(()),
                }
            };
            let running = match received {
                Ok(Some(message)) => {
                    let running = self.handle(message) && self.drain();
                    steady = self.drained >= STEADY_MESSAGES;
                    running
                }
                // A nap that found nothing: traffic has paused, so block again.
                Ok(None) => {
                    steady = false;
                    true
                }
                Err(()) => false,
            };
            self.release();
            if !running {
                break;
            }
            self.report_when_due();
            self.send_when_due();
        }
        self.report_drops();
        self.send_batch();
        self.sink.finish();
    }

    /// Handles what is already queued without blocking; false once told to stop.
    fn drain(&mut self) -> bool {
        let mut since_clock_check = 0;
        self.drained = 1;
        loop {
            match self.receiver.try_recv() {
                Ok(message) => {
                    self.drained += 1;
                    if !self.handle(message) {
                        return false;
                    }
                }
                Err(TryRecvError::Empty) => {
                    // The queue has drained: the moment to account for what it dropped.
                    self.release();
                    self.report_drops();
                    return true;
                }
                Err(TryRecvError::Disconnected) => return false,
            }
            // A queue that never empties must not hold lines or drop reports back past their
            // intervals.
            since_clock_check += 1;
            if since_clock_check == MESSAGES_PER_CLOCK_CHECK {
                since_clock_check = 0;
                self.release();
                self.report_when_due();
                self.send_when_due();
            }
        }
    }

    fn handle(&mut self, message: Message<R>) -> bool {
        match message {
            Message::Record(record, size) => {
                self.push(&record, Line::Record);
                self.unreleased += size;
                self.spent.push(record);
                if self.spent.len().is_multiple_of(RECORDS_PER_FREE) {
                    let spent = mem::take(&mut self.spent);
                    // While the output thread is busy the list grows, up to a limit past which
                    // this thread frees it itself.
                    if let Some(returned) = self.sink.free(spent)
                        && returned.len() < MAX_RECORDS_TO_FREE
                    {
                        self.spent = returned;
                    }
                    if self.spent.capacity() == 0 {
                        self.spent.reserve(RECORDS_PER_FREE);
                    }
                }
                true
            }
            Message::Flush(acknowledge) => {
                self.release();
                self.report_drops();
                // Sent even when empty: the acknowledgement must follow every earlier batch.
                self.batch.acknowledge = Some(acknowledge);
                self.send_batch();
                true
            }
            Message::Shutdown => false,
        }
    }

    /// Returns the queue bytes of the records written since the last call.
    fn release(&mut self) {
        if self.unreleased > 0 {
            self.shared.release(mem::take(&mut self.unreleased));
        }
    }

    /// Reports the drops since the previous report, if any.
    fn report_drops(&mut self) {
        // Drops whose report line could not be written are reported again.
        self.reported_drops -= self.shared.unreported_drops.swap(0, Ordering::AcqRel);
        let dropped = self.shared.dropped.load(Ordering::Acquire);
        if dropped > self.reported_drops {
            let count = dropped - self.reported_drops;
            self.reported_drops = dropped;
            let now = SystemTime::now();
            let (first_at, last_at) = self.shared.take_drop_times().unwrap_or((now, now));
            let report = DropReport {
                count,
                total: dropped,
                first_at,
                last_at,
            };
            self.push(&R::dropped(&report), Line::DropReport(count));
            self.last_drop_report = Instant::now();
        }
    }

    /// Reports drops when the last report is `drop_report_interval` old, so drops that go on
    /// while the queue never drains are still reported where they happen.
    fn report_when_due(&mut self) {
        if self.last_drop_report.elapsed() >= self.options.drop_report_interval {
            self.report_drops();
        }
    }

    /// Appends `record` as one line, sending batches so none outgrows `max_batch_bytes`.
    fn push(&mut self, record: &R, line: Line) {
        let start = self.batch.bytes.len();
        let bytes = &mut self.batch.bytes;
        // A panicking `Serialize` impl must cost its own record, not the thread and the queue.
        let serialized = panic::catch_unwind(AssertUnwindSafe(|| record.write_json(bytes)));
        if !matches!(serialized, Ok(Ok(()))) {
            self.batch.bytes.truncate(start);
            if let Line::Record = line {
                self.shared.note_drops(1);
            }
            // A drop report that cannot be serialized would fail again: it is given up.
            return;
        }
        self.batch.bytes.push(b'\n');
        let (line_records, line_drops) = line.counts();
        self.batch.records += line_records;
        self.batch.reported_drops += line_drops;
        if start == 0 {
            self.deadline = Instant::now() + self.options.flush_interval;
        }
        let limit = self.options.max_batch_bytes;
        if self.batch.bytes.len() > limit && start > 0 {
            // The new line does not fit: send the lines before it and start the next batch
            // with it, so no write ever holds part of a line.
            let mut next = self.sink.spare_buffer();
            next.extend_from_slice(&self.batch.bytes[start..]);
            self.batch.bytes.truncate(start);
            self.batch.records -= line_records;
            self.batch.reported_drops -= line_drops;
            let full = mem::replace(
                &mut self.batch,
                Batch {
                    bytes: next,
                    records: line_records,
                    reported_drops: line_drops,
                    acknowledge: None,
                },
            );
            self.send(full);
            self.deadline = Instant::now() + self.options.flush_interval;
        }
        // A full batch, or a single line longer than the limit, goes out now and alone.
        if self.batch.bytes.len() >= limit {
            self.send_batch();
        }
    }

    fn send_when_due(&mut self) {
        if !self.batch.bytes.is_empty() && Instant::now() >= self.deadline {
            self.send_batch();
        }
    }

    fn send_batch(&mut self) {
        if self.batch.bytes.is_empty() && self.batch.acknowledge.is_none() {
            return;
        }
        let next = Batch {
            bytes: self.sink.spare_buffer(),
            ..Batch::default()
        };
        let full = mem::replace(&mut self.batch, next);
        self.send(full);
    }

    fn send(&mut self, batch: Batch) {
        if let Some(lost) = self.sink.send(batch) {
            // Only a panic ends the output thread early; its batches are lost, and counted.
            if lost.records > 0 {
                self.shared.note_drops(lost.records);
            }
            self.shared
                .unreported_drops
                .fetch_add(lost.reported_drops, Ordering::AcqRel);
        }
    }
}
