//! The alerts sink: takes every telemetry record the engine makes (a bounded queue; a full
//! queue drops the record and counts it), and on its own thread, `prompt-config-alerts`, runs
//! the rules on each record and on a one-second tick, and hands what fires to one delivery
//! thread per channel ([`Couriers`]), which sends it with retries, so one slow channel delays
//! no other. Each delivery's outcome becomes an `alert.sent` or
//! `alert.failed` line and a `prompt_config_alert_deliveries_total` count, written through a
//! weak handle on the engine's telemetry (no cycle: the telemetry owns the sink), and never
//! reaches a request. The sink ignores its own `alert.*` lines, so they cannot feed the rules.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Alert;
use super::channel::{Channel, EnvLookup, process_env};
use super::config::AlertsConfig;
use super::courier::{Couriers, Deadline, Post};
use super::dedup::Dedup;
use super::delivery::RetryPolicy;
use super::rules::AlertRules;
use crate::client::Clock;
use crate::state::SharedState;
use crate::telemetry::emit::Telemetry;
use crate::telemetry::event::TelemetryRecord;
use crate::telemetry::sink::RecordSink;

/// Records the queue holds before it drops (alert rules need every record, but a stalled
/// channel must not grow memory without bound).
const QUEUE_CAPACITY: usize = 4096;

/// How often time-based rules are looked at (a window emptying, a breaker still open).
const TICK: Duration = Duration::from_secs(1);

/// How long before a close's deadline the thread stops waiting for its couriers, to report
/// what they still hold.
const ABANDON_MARGIN: Duration = Duration::from_millis(250);

enum Message {
    Record(Arc<TelemetryRecord>),
    /// Answered once everything queued before it was handled.
    Flush(SyncSender<()>),
    /// Stops the thread after answering.
    Close(SyncSender<()>),
}

/// What the thread needs besides the queue; kept so a forked child can start its own.
struct Started {
    telemetry: Weak<Telemetry>,
    shared: Option<SharedState>,
}

/// Records dropped because the queue was full; shared by the sink and its thread.
#[derive(Default)]
struct Progress {
    dropped: AtomicU64,
}

/// The alerts of one engine.
pub(crate) struct AlertsSink {
    config: AlertsConfig,
    channels: Arc<BTreeMap<String, Channel>>,
    clock: Arc<dyn Clock>,
    env: EnvLookup,
    policy: RetryPolicy,
    /// While closing or flushing: when retries must stop.
    deadline: Arc<Deadline>,
    progress: Arc<Progress>,
    sender: Mutex<Option<SyncSender<Message>>>,
    /// The queue's receiving end until the thread starts.
    receiver: Mutex<Option<Receiver<Message>>>,
    started: Mutex<Option<Started>>,
}

impl std::fmt::Debug for AlertsSink {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("AlertsSink")
            .field("channels", &self.channels)
            .field("rules", &self.config.rules.len())
            .finish_non_exhaustive()
    }
}

/// The channels of `config`, by name.
pub(crate) fn channels(config: &AlertsConfig) -> BTreeMap<String, Channel> {
    config
        .channels
        .iter()
        .map(|(name, channel)| {
            let channel = Channel {
                name: name.clone(),
                config: channel.clone(),
            };
            (name.clone(), channel)
        })
        .collect()
}

impl AlertsSink {
    /// The sink for the snapshot's checked `alerts.json`, or `None` when there is none
    /// (alerts off). Records are queued from now on; nothing is evaluated until
    /// [`AlertsSink::start`].
    pub fn open(config: Option<&AlertsConfig>, clock: Arc<dyn Clock>) -> Option<Arc<AlertsSink>> {
        config.map(|config| {
            Arc::new(AlertsSink::new(
                config.clone(),
                clock,
                process_env(),
                RetryPolicy::default(),
            ))
        })
    }

    /// A sink for `config`, reading secrets through `env` at each delivery.
    pub fn new(
        config: AlertsConfig,
        clock: Arc<dyn Clock>,
        env: EnvLookup,
        policy: RetryPolicy,
    ) -> AlertsSink {
        let (sender, receiver) = mpsc::sync_channel(QUEUE_CAPACITY);
        AlertsSink {
            channels: Arc::new(channels(&config)),
            config,
            clock,
            env,
            policy,
            deadline: Arc::new(Deadline::new()),
            progress: Arc::new(Progress::default()),
            sender: Mutex::new(Some(sender)),
            receiver: Mutex::new(Some(receiver)),
            started: Mutex::new(None),
        }
    }

    /// Starts the thread: rules claim alerts in `shared` (the fleet's Redis) when given, and
    /// delivery outcomes are written through `telemetry`.
    pub fn start(&self, telemetry: Weak<Telemetry>, shared: Option<SharedState>) {
        *self.started.lock() = Some(Started { telemetry, shared });
        if let Some(receiver) = self.receiver.lock().take() {
            self.spawn(receiver);
        }
    }

    fn spawn(&self, receiver: Receiver<Message>) {
        let Some(started) = &*self.started.lock() else {
            return;
        };
        let post = Post::new(
            self.policy,
            Arc::clone(&self.env),
            Arc::clone(&self.clock),
            started.telemetry.clone(),
            Arc::clone(&self.deadline),
        );
        let worker = Worker {
            rules: AlertRules::new(&self.config, Dedup::new(started.shared.clone())),
            couriers: Couriers::new(Arc::clone(&self.channels), post),
            clock: Arc::clone(&self.clock),
            telemetry: started.telemetry.clone(),
            progress: Arc::clone(&self.progress),
            deadline: Arc::clone(&self.deadline),
        };
        let spawned = thread::Builder::new()
            .name("prompt-config-alerts".into())
            .spawn(move || worker.run(&receiver));
        if spawned.is_err() {
            // No thread, no alerts: later records are dropped (and counted) instead of
            // filling a queue nobody reads.
            *self.sender.lock() = None;
        }
    }

    /// Sends a control message, waiting for queue space until `deadline`; then waits for
    /// the answer until `deadline`. False when the thread did not answer in time.
    fn control(&self, make: fn(SyncSender<()>) -> Message, deadline: Instant) -> bool {
        let Some(sender) = self.sender.lock().clone() else {
            return true;
        };
        let (ack, answered) = mpsc::sync_channel(1);
        let mut message = make(ack);
        loop {
            match sender.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return true,
                Err(TrySendError::Full(back)) => {
                    if Instant::now() >= deadline {
                        return false;
                    }
                    message = back;
                    thread::sleep(Duration::from_millis(2));
                }
            }
        }
        let wait = deadline.saturating_duration_since(Instant::now());
        !matches!(answered.recv_timeout(wait), Err(RecvTimeoutError::Timeout))
    }

    fn set_deadline(&self, deadline: Option<Instant>) {
        self.deadline.set(deadline);
    }
}

impl RecordSink for AlertsSink {
    fn accept(&self, record: &Arc<TelemetryRecord>) {
        if record.event.starts_with("alert.") {
            return;
        }
        let sender = self.sender.lock();
        let Some(sender) = sender.as_ref() else {
            return;
        };
        if let Err(TrySendError::Full(_)) = sender.try_send(Message::Record(Arc::clone(record))) {
            self.progress.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        self.set_deadline(Some(deadline));
        let flushed = self.control(Message::Flush, deadline);
        self.set_deadline(None);
        flushed
    }

    fn close(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        self.set_deadline(Some(deadline));
        self.control(Message::Close, deadline);
        // Later records are ignored; a thread still delivering ends when it sees the queue
        // closed.
        *self.sender.lock() = None;
    }

    fn after_fork(&self) {
        // The parent's thread does not exist here: a new queue and a new thread, with fresh
        // rule windows (the parent's are not ours to continue).
        let (sender, receiver) = mpsc::sync_channel(QUEUE_CAPACITY);
        *self.sender.lock() = Some(sender);
        if self.started.lock().is_some() {
            self.spawn(receiver);
        } else {
            *self.receiver.lock() = Some(receiver);
        }
    }
}

/// The alerts thread's state.
struct Worker {
    rules: AlertRules,
    couriers: Couriers,
    clock: Arc<dyn Clock>,
    telemetry: Weak<Telemetry>,
    progress: Arc<Progress>,
    deadline: Arc<Deadline>,
}

impl Worker {
    fn run(mut self, receiver: &Receiver<Message>) {
        let mut next_tick = Instant::now() + TICK;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(wait) {
                Ok(Message::Record(record)) => {
                    let alerts = self.rules.observe(&record);
                    self.deliver_all(alerts);
                }
                Ok(Message::Flush(ack)) => {
                    self.settle();
                    let _ = ack.send(());
                }
                Ok(Message::Close(ack)) => {
                    // Stops waiting a little before the close's deadline, so the lines of what
                    // is abandoned are written before `close` stops waiting for this thread.
                    let settled = self.couriers.settle(
                        self.settle_deadline()
                            .checked_sub(ABANDON_MARGIN)
                            .unwrap_or_else(Instant::now),
                    );
                    if !settled {
                        // A courier is stuck on a receiver that does not answer: what it still
                        // holds is reported now, while the log is still open.
                        self.couriers.abandon();
                    }
                    let _ = ack.send(());
                    // Dropping the couriers' queues ends their threads once they are done.
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if Instant::now() >= next_tick {
                next_tick = Instant::now() + TICK;
                let alerts = self.rules.tick(self.clock.utc_now());
                self.deliver_all(alerts);
                if let Some(telemetry) = self.telemetry.upgrade() {
                    telemetry
                        .metrics
                        .set_alert_records_dropped(self.progress.dropped.load(Ordering::Relaxed));
                }
            }
        }
    }

    /// Hands each alert to its channels' couriers; returns without waiting for delivery.
    fn deliver_all(&mut self, alerts: Vec<Alert>) {
        for alert in alerts {
            self.couriers.dispatch(alert);
        }
    }

    /// Waits for the couriers until the flush's or close's deadline (one `SINK_CLOSE_TIMEOUT`
    /// when none is set, which only a test's direct call leaves).
    fn settle(&self) -> bool {
        self.couriers.settle(self.settle_deadline())
    }

    fn settle_deadline(&self) -> Instant {
        self.deadline
            .get()
            .unwrap_or_else(|| Instant::now() + crate::telemetry::sink::SINK_CLOSE_TIMEOUT)
    }
}

#[cfg(test)]
#[path = "sink_tests.rs"]
mod tests;
