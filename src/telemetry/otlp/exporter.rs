//! The OTLP exporter as a [`RecordSink`]: the caller's thread only pushes the shared record
//! onto a bounded queue (full: dropped and counted, never waited on); one background thread,
//! `prompt-config-otlp`, feeds the records to the [`Converter`] and sends spans and log
//! records in batches of at most `max_batch` (as soon as that many are pending, else once the
//! oldest has waited `batch_delay`), and the live metrics every `metrics_interval` and at
//! close, through the [`Transport`] (encoding, gzip, retries, counters).
//!
//! `flush` asks the thread to send everything pending and waits for it (bounded); `close`
//! flushes, sends the last metrics and stops the thread, and if that takes longer than its
//! timeout tells the thread to give up (what it still holds is counted `failed`) rather than
//! hold up the process's exit.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Condvar, Mutex, RwLock};

use super::OtlpOptions;
use super::convert::Converter;
use super::transport::{Export, Transport};
use crate::client::BudgetStatus;
use crate::telemetry::event::TelemetryRecord;
use crate::telemetry::metrics::{MetricsSnapshot, OtlpCounters};
use crate::telemetry::sink::RecordSink;

/// The exporter thread's name (seen in `top -H`, debuggers and panics).
pub const THREAD_NAME: &str = "prompt-config-otlp";

/// The shortest an idle thread sleeps before looking at the queue again (with a zero
/// `batch_delay`).
const MIN_IDLE_WAIT: Duration = Duration::from_millis(5);

/// Reads the engine's live figures for a metrics export: the metrics snapshot (breaker gauges
/// refreshed) and the budgets' statuses. The engine sets it once it exists; it holds only weak
/// references, so the exporter never keeps an engine alive.
pub type FiguresSource = Box<dyn Fn() -> (MetricsSnapshot, Vec<BudgetStatus>) + Send + Sync>;

/// What every generation of the thread (one per process, see `after_fork`) shares.
struct Config {
    options: OtlpOptions,
    counters: Arc<OtlpCounters>,
    figures: OnceLock<FiguresSource>,
    /// The start of the cumulative metrics: when the engine opened.
    start: SystemTime,
    /// `close` was called (read without the queue's lock, which a child of `fork()` may find
    /// held by the parent's thread).
    closed: AtomicBool,
}

/// The queue between the callers and the thread, and the thread's progress.
#[derive(Default)]
struct Queue {
    records: VecDeque<Arc<TelemetryRecord>>,
    /// When the oldest queued record arrived: its batch is due `batch_delay` later.
    oldest: Option<Instant>,
    /// Flushes asked for, and flushes done (the thread copies the first into the second each
    /// time it has sent everything it held).
    flush_requested: u64,
    flushed: u64,
    /// `close` was called: no more records; the thread sends what it holds and ends.
    closing: bool,
    /// The thread has ended (or never started).
    stopped: bool,
}

/// One process's queue and thread signals; replaced as a whole in a child after `fork()`.
#[derive(Default)]
struct Inner {
    queue: Mutex<Queue>,
    /// Wakes the thread: a full batch, a flush, a close.
    wake: Condvar,
    /// Wakes flushers and closers: a flush done, the thread ended.
    done: Condvar,
    /// Set when `close` timed out: the thread stops retrying and counts the rest `failed`.
    give_up: AtomicBool,
}

/// The OTLP exporter sink (see the module doc).
pub struct OtlpExporter {
    config: Arc<Config>,
    inner: RwLock<Arc<Inner>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for OtlpExporter {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("OtlpExporter")
            .field("options", &self.config.options)
            .finish_non_exhaustive()
    }
}

impl OtlpExporter {
    /// Starts the exporter thread for `options`, counting into `counters` (the engine's
    /// [`crate::telemetry::metrics::Metrics::otlp_counters`]); cumulative metrics start at
    /// `start`. If the thread cannot be spawned, records are counted `failed` as they come.
    pub fn start(
        options: &OtlpOptions,
        counters: Arc<OtlpCounters>,
        start: SystemTime,
    ) -> Arc<OtlpExporter> {
        let mut options = options.clone();
        options.max_queue = options.max_queue.max(1);
        options.max_batch = options.max_batch.clamp(1, options.max_queue);
        let exporter = Arc::new(OtlpExporter {
            config: Arc::new(Config {
                options,
                counters,
                figures: OnceLock::new(),
                start,
                closed: AtomicBool::new(false),
            }),
            inner: RwLock::new(Arc::new(Inner::default())),
            thread: Mutex::new(None),
        });
        exporter.spawn();
        exporter
    }

    /// Where metrics exports read the engine's figures; set once, later calls are ignored.
    pub fn set_figures(&self, figures: FiguresSource) {
        let _ = self.config.figures.set(figures);
    }

    fn spawn(&self) {
        let inner = Arc::clone(&self.inner.read());
        let config = Arc::clone(&self.config);
        let thread_inner = Arc::clone(&inner);
        let spawned = thread::Builder::new()
            .name(THREAD_NAME.to_string())
            .spawn(move || run(&config, &thread_inner));
        match spawned {
            Ok(handle) => *self.thread.lock() = Some(handle),
            Err(_) => {
                // No thread, no export: `accept` counts every record `failed` from now on.
                let mut queue = inner.queue.lock();
                queue.stopped = true;
            }
        }
    }
}

impl RecordSink for OtlpExporter {
    fn accept(&self, record: &Arc<TelemetryRecord>) {
        let inner = self.inner.read();
        let mut queue = inner.queue.lock();
        if queue.closing {
            return;
        }
        if queue.stopped {
            drop(queue);
            self.config.counters.failed(1);
            return;
        }
        if queue.records.len() >= self.config.options.max_queue {
            drop(queue);
            self.config.counters.queue_full();
            return;
        }
        if queue.records.is_empty() {
            // Once per batch, not per record: the thread's timer starts from here.
            queue.oldest = Some(Instant::now());
        }
        queue.records.push_back(Arc::clone(record));
        // Only a full batch wakes the thread early; otherwise it wakes on its own timer, so
        // the common accept is a lock and a push, with no system call.
        let full_batch = queue.records.len() == self.config.options.max_batch;
        drop(queue);
        if full_batch {
            inner.wake.notify_one();
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let inner = Arc::clone(&self.inner.read());
        let mut queue = inner.queue.lock();
        if queue.stopped {
            return queue.records.is_empty();
        }
        queue.flush_requested += 1;
        let target = queue.flush_requested;
        inner.wake.notify_one();
        while queue.flushed < target && !queue.stopped {
            if inner.done.wait_until(&mut queue, deadline).timed_out() {
                return queue.flushed >= target;
            }
        }
        true
    }

    fn close(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        if self.config.closed.swap(true, Ordering::Relaxed) {
            // Closed before (`Engine::close`, then the drop): that close already waited.
            return;
        }
        let inner = Arc::clone(&self.inner.read());
        let mut queue = inner.queue.lock();
        queue.closing = true;
        inner.wake.notify_one();
        while !queue.stopped {
            if inner.done.wait_until(&mut queue, deadline).timed_out() {
                break;
            }
        }
        let stopped = queue.stopped;
        drop(queue);
        if stopped {
            if let Some(handle) = self.thread.lock().take() {
                let _ = handle.join();
            }
        } else {
            // The collector is slow or down: stop retrying, count the rest `failed`, and let
            // the thread end by itself (at most one request timeout from now).
            inner.give_up.store(true, Ordering::Relaxed);
            self.thread.lock().take();
        }
        if let Some(listener) = &self.config.options.on_close {
            listener(&self.config.counters.snapshot(), !stopped);
        }
    }

    fn after_fork(&self) {
        // The parent's thread does not exist here, and its queue (records the parent will
        // export itself) and locks must not be inherited: a fresh queue and thread.
        if self.config.closed.load(Ordering::Relaxed) {
            return;
        }
        *self.inner.write() = Arc::new(Inner::default());
        // The parent's handle is not joinable in the child; forget it.
        std::mem::forget(self.thread.lock().take());
        self.spawn();
    }
}

impl Drop for OtlpExporter {
    fn drop(&mut self) {
        // `Engine::close` has normally closed it already; closing again is a no-op.
        self.close(crate::telemetry::sink::SINK_CLOSE_TIMEOUT);
    }
}

/// The exporter thread: waits for a full batch, a flush, a close or a timer, converts what
/// arrived and sends what is due.
fn run(config: &Config, inner: &Inner) {
    let options = &config.options;
    let transport = Transport::new(options, Arc::clone(&config.counters));
    let mut converter = Converter::new(options);
    let mut batch_due: Option<Instant> = None;
    let mut metrics_due = Instant::now() + options.metrics_interval;
    // Swapped with the queue's buffer each round, so callers push into a buffer that has
    // already grown (no allocation on their thread in steady traffic).
    let mut records = VecDeque::new();
    loop {
        let (flush_target, flushing, closing) = {
            let mut queue = inner.queue.lock();
            loop {
                // A record arriving while the thread sleeps does not wake it (that would be a
                // system call on the caller's thread): an idle thread looks again every
                // `batch_delay`, so a record waits at most about twice that.
                let queued_due = queue.oldest.map_or_else(
                    || Instant::now() + options.batch_delay.max(MIN_IDLE_WAIT),
                    |oldest| oldest + options.batch_delay,
                );
                let wake_at = [batch_due, Some(queued_due)]
                    .into_iter()
                    .flatten()
                    .fold(metrics_due, Instant::min);
                if queue.records.len() >= options.max_batch
                    || queue.flush_requested > queue.flushed
                    || queue.closing
                    || Instant::now() >= wake_at
                {
                    break;
                }
                inner.wake.wait_until(&mut queue, wake_at);
            }
            if let Some(oldest) = queue.oldest.take() {
                // The records keep their place in time: their batch is due when the oldest's is.
                let due = oldest + options.batch_delay;
                batch_due = Some(batch_due.map_or(due, |current| current.min(due)));
            }
            std::mem::swap(&mut queue.records, &mut records);
            (
                queue.flush_requested,
                queue.closing || queue.flush_requested > queue.flushed,
                queue.closing,
            )
        };
        // The records are released here, on this thread, not on a caller's.
        for record in records.drain(..) {
            converter.push(&record);
        }
        let now = Instant::now();
        let all = flushing || batch_due.is_some_and(|due| now >= due);
        send_batches(
            &transport,
            &mut converter,
            options.max_batch,
            all,
            &inner.give_up,
        );
        if converter.pending() == 0 || all {
            batch_due = (converter.pending() > 0).then(|| Instant::now() + options.batch_delay);
        }
        if closing || now >= metrics_due {
            send_metrics(config, &transport, &converter, &inner.give_up);
            metrics_due = Instant::now() + options.metrics_interval;
        }
        let mut queue = inner.queue.lock();
        queue.flushed = queue.flushed.max(flush_target);
        if closing {
            queue.stopped = true;
        }
        inner.done.notify_all();
        if closing {
            return;
        }
    }
}

/// Sends full batches of spans and log records, and with `all` the partial ones too.
fn send_batches(
    transport: &Transport,
    converter: &mut Converter,
    max_batch: usize,
    all: bool,
    give_up: &AtomicBool,
) {
    while converter.pending() >= max_batch || (all && converter.pending() > 0) {
        let traces = converter.take_traces(max_batch).map(Export::Traces);
        let logs = converter.take_logs(max_batch).map(Export::Logs);
        if traces.is_none() && logs.is_none() {
            // What is pending is not ready to go yet (the converter holds it back).
            return;
        }
        for export in traces.into_iter().chain(logs) {
            transport.send(&export, give_up);
        }
    }
}

fn send_metrics(
    config: &Config,
    transport: &Transport,
    converter: &Converter,
    give_up: &AtomicBool,
) {
    let Some(figures) = config.figures.get() else {
        return;
    };
    let (snapshot, budgets) = figures();
    let request = converter.metrics(&snapshot, &budgets, config.start, SystemTime::now());
    let export = Export::Metrics(request);
    if export.items() > 0 {
        transport.send(&export, give_up);
    }
}
