//! The output side of the writer: batches of whole lines go to the log file, one write each,
//! on a thread of their own so that serializing the next batch overlaps writing this one. It
//! keeps the `written` count, accounts for batches it cannot write, and acknowledges flushes.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender};

use super::log_file::LogFile;
use super::{Shared, WriterOptions};

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
}

impl Output {
    pub(super) fn new(log: LogFile, shared: Arc<Shared>, options: Arc<WriterOptions>) -> Self {
        Self {
            log,
            shared,
            options,
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
            }
            Err(error) => {
                self.shared.record_error(error.to_string());
                // The records are lost: count them so a later drop report accounts for them,
                // and hand back the drops this batch's report lines carried, to report again.
                self.shared
                    .dropped
                    .fetch_add(batch.records, Ordering::AcqRel);
                self.shared
                    .unreported_drops
                    .fetch_add(batch.reported_drops, Ordering::AcqRel);
            }
        }
    }
}

/// The output thread: writes batches in order until the serializer hangs up, then fsyncs.
/// Emptied buffers go back through `spare`, so steady writing allocates no new ones.
pub(super) fn run(mut output: Output, batches: Receiver<Batch>, spare: SyncSender<Vec<u8>>) {
    for mut batch in batches {
        output.write(&mut batch);
        batch.bytes.clear();
        // A full return channel means enough spares exist: this buffer is simply freed.
        let _ = spare.try_send(batch.bytes);
    }
    output.finish();
}
