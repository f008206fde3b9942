//! The output side of the writer: batches of whole lines go to the log file, one write each,
//! on a thread of their own so that serializing the next batch overlaps writing this one. It
//! keeps the `written` count, accounts for batches it cannot write, acknowledges flushes, and
//! has every `BACKGROUND_SYNC_BYTES` written synced by a helper thread, so the disk works while
//! later batches are written and `close`'s final fsync finds little left to do.

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::{self, JoinHandle};

use super::log_file::LogFile;
use super::{Shared, WriterOptions};

/// Bytes written between two background syncs; also the most a crash of the machine (not of
/// the process) loses before `close`.
const BACKGROUND_SYNC_BYTES: u64 = 16 << 20;

/// What the serializing thread hands the output thread.
pub(super) enum ToOutput<R> {
    /// Lines to write.
    Batch(Batch),
    /// Records already written into a batch, to free here rather than on the busier thread.
    Free(Vec<R>),
}

/// Whole lines to write in one write, with what they account for.
#[derive(Default)]
pub(super) struct Batch {
    /// JSON lines, each ending in `\n`.
    pub(super) bytes: Vec<u8>,
    /// Records among the lines (drop reports are not records).
    pub(super) records: u64,
    /// Drops the batch's drop-report lines account for.
    pub(super) reported_drops: u64,
    /// Signalled once the batch (and everything before it) is written, for `flush`.
    pub(super) acknowledge: Option<SyncSender<()>>,
}

/// The log file and the accounting of what reaches it.
pub(super) struct Output {
    log: LogFile,
    shared: Arc<Shared>,
    options: Arc<WriterOptions>,
    /// Bytes written since the last background sync was requested.
    unsynced_bytes: u64,
    /// Started at the first `BACKGROUND_SYNC_BYTES`, so a quiet log never has the thread.
    background_sync: Option<BackgroundSync>,
}

impl Output {
    pub(super) fn new(log: LogFile, shared: Arc<Shared>, options: Arc<WriterOptions>) -> Self {
        Self {
            log,
            shared,
            options,
            unsynced_bytes: 0,
            background_sync: None,
        }
    }

    /// Writes the batch (rotating first when due), counts it, and acknowledges it.
    pub(super) fn write(&mut self, batch: &mut Batch) {
        if !batch.bytes.is_empty() {
            self.append(batch);
        }
        if let Some(acknowledge) = batch.acknowledge.take() {
            // The flushing caller may have given up waiting; that is not an error here.
            let _ = acknowledge.try_send(());
        }
    }

    /// Makes everything written durable; the last step of a close.
    pub(super) fn finish(&mut self) {
        if let Some(background_sync) = self.background_sync.take() {
            background_sync.stop();
        }
        if let Err(error) = self.log.sync() {
            self.shared.record_error(error.to_string());
        }
    }

    fn append(&mut self, batch: &Batch) {
        let options = &self.options;
        if let Err(error) = self
            .log
            .prepare(options.rotate_bytes, options.rotated_files)
        {
            // Writing on into the current file beats losing the batch.
            self.shared.record_error(error.to_string());
        }
        match self.log.append(&batch.bytes) {
            Ok(()) => {
                self.shared
                    .written
                    .fetch_add(batch.records, Ordering::Release);
                self.unsynced_bytes += batch.bytes.len() as u64;
                if self.unsynced_bytes >= BACKGROUND_SYNC_BYTES {
                    self.request_background_sync();
                }
            }
            Err(error) => {
                self.shared.record_error(error.to_string());
                // The records are lost: count them so a later drop report accounts for them,
                // and hand back the drops this batch's report lines carried, to report again.
                if batch.records > 0 {
                    self.shared.note_drops(batch.records);
                }
                self.shared
                    .unreported_drops
                    .fetch_add(batch.reported_drops, Ordering::AcqRel);
            }
        }
    }

    fn request_background_sync(&mut self) {
        let Some(Ok(file)) = self.log.duplicate() else {
            return;
        };
        let background_sync = match self.background_sync.take() {
            Some(running) => running,
            None => match BackgroundSync::start() {
                Ok(started) => started,
                // Without the helper, `close`'s fsync does all the syncing; nothing is lost.
                Err(_) => return,
            },
        };
        // Refused only while one sync runs and another waits: they cover these bytes too.
        if background_sync.requests.try_send(file).is_ok() {
            self.unsynced_bytes = 0;
        }
        self.background_sync = Some(background_sync);
    }
}

/// A helper thread that fdatasyncs the files it is handed, while the output thread writes on.
struct BackgroundSync {
    requests: SyncSender<File>,
    thread: JoinHandle<()>,
}

impl BackgroundSync {
    fn start() -> std::io::Result<Self> {
        let (requests, received) = mpsc::sync_channel::<File>(1);
        let thread = thread::Builder::new()
            .name("telemetry-sync".to_owned())
            .spawn(move || {
                for file in received {
                    // A failure here shows again in `close`'s own fsync, which reports it.
                    let _ = file.sync_data();
                }
            })?;
        Ok(Self { requests, thread })
    }

    fn stop(self) {
        drop(self.requests);
        let _ = self.thread.join();
    }
}

/// The output thread: writes batches in order until the serializer hangs up, then fsyncs.
/// Emptied buffers go back through `spare`, so steady writing allocates no new ones.
pub(super) fn run<R>(
    mut output: Output,
    messages: Receiver<ToOutput<R>>,
    spare: SyncSender<Vec<u8>>,
) {
    // A buffer that grew around one oversized line is freed rather than kept for reuse.
    let largest_kept = output.options.max_batch_bytes.saturating_mul(2);
    for message in messages {
        let mut batch = match message {
            ToOutput::Batch(batch) => batch,
            ToOutput::Free(records) => {
                drop(records);
                continue;
            }
        };
        output.write(&mut batch);
        batch.bytes.clear();
        if batch.bytes.capacity() <= largest_kept {
            // A full return channel means enough spares exist: this buffer is simply freed.
            let _ = spare.try_send(batch.bytes);
        }
    }
    output.finish();
}
