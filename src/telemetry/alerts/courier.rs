//! One delivery thread per channel (`prompt-config-alert-{channel}`), started on its first
//! alert: the rules thread hands each fired alert to the couriers of its channels and goes on,
//! so a channel that is slow, hanging or throttled (a 429 asking `Retry-After: 30`) delays only
//! its own alerts, never another channel's nor the rules. Each courier reports every outcome as
//! an `alert.sent` or `alert.failed` line; an alert it could not even try (the engine closed
//! first, or its queue was full) is an `alert.failed` line too, so no alert vanishes unreported.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::Alert;
use super::channel::{Channel, DeliveryError, EnvLookup};
use super::delivery::{Deliverer, Failed, RetryPolicy};
use crate::client::Clock;
use crate::telemetry::emit::Telemetry;

/// Alerts one channel's queue holds before further ones are reported as not sent (alerts are
/// rare: this many waiting means the receiver has been failing for a long time).
const QUEUE_CAPACITY: usize = 256;

enum Parcel {
    /// An alert and its ticket in [`Post::pending`].
    Alert(u64, Alert),
    /// Answered once every alert queued before it was handled.
    Settle(SyncSender<()>),
}

/// When retries must stop, shared by the sink and every courier: ms since `epoch`, 0 when
/// there is no deadline (the engine is neither flushing nor closing).
#[derive(Debug)]
pub(super) struct Deadline {
    epoch: Instant,
    millis: AtomicU64,
}

impl Deadline {
    pub fn new() -> Deadline {
        Deadline {
            epoch: Instant::now(),
            millis: AtomicU64::new(0),
        }
    }

    pub fn set(&self, deadline: Option<Instant>) {
        let millis = deadline.map_or(0, |deadline| {
            (deadline.saturating_duration_since(self.epoch).as_millis() as u64).max(1)
        });
        self.millis.store(millis, Ordering::Relaxed);
    }

    pub fn get(&self) -> Option<Instant> {
        match self.millis.load(Ordering::Relaxed) {
            0 => None,
            millis => Some(self.epoch + Duration::from_millis(millis)),
        }
    }

    fn passed(&self) -> bool {
        self.get()
            .is_some_and(|deadline| Instant::now() >= deadline)
    }
}

/// An alert handed to a courier and not yet reported.
struct Pending {
    channel: String,
    kind: &'static str,
    alert: Alert,
    /// The courier has begun sending it.
    started: bool,
}

/// What every courier shares.
pub(super) struct Post {
    pub policy: RetryPolicy,
    pub env: EnvLookup,
    pub clock: Arc<dyn Clock>,
    pub telemetry: Weak<Telemetry>,
    pub deadline: Arc<Deadline>,
    /// Alerts handed to couriers and not yet reported, by ticket: what a close that cannot
    /// wait for a courier (a receiver that hangs) reports itself, so none goes unreported.
    pending: Mutex<(u64, BTreeMap<u64, Pending>)>,
}

impl Post {
    pub fn new(
        policy: RetryPolicy,
        env: EnvLookup,
        clock: Arc<dyn Clock>,
        telemetry: Weak<Telemetry>,
        deadline: Arc<Deadline>,
    ) -> Post {
        Post {
            policy,
            env,
            clock,
            telemetry,
            deadline,
            pending: Mutex::new((0, BTreeMap::new())),
        }
    }

    /// Records `alert` as handed to `channel`'s courier; its ticket.
    fn enlist(&self, channel: &str, kind: &'static str, alert: &Alert) -> u64 {
        let mut pending = self.pending.lock();
        pending.0 += 1;
        let ticket = pending.0;
        let entry = Pending {
            channel: channel.to_string(),
            kind,
            alert: alert.clone(),
            started: false,
        };
        pending.1.insert(ticket, entry);
        ticket
    }

    /// Marks `ticket` as being sent; false when a close already reported it.
    fn start(&self, ticket: u64) -> bool {
        match self.pending.lock().1.get_mut(&ticket) {
            Some(entry) => {
                entry.started = true;
                true
            }
            None => false,
        }
    }

    /// Takes `ticket` off the pending list; false when a close already reported it (then its
    /// courier must not report it a second time).
    fn finish(&self, ticket: u64) -> bool {
        self.pending.lock().1.remove(&ticket).is_some()
    }

    /// Reports every alert still pending as `alert.failed`, not sent: the closing engine
    /// cannot wait for its courier any longer.
    fn abandon(&self) {
        let abandoned = std::mem::take(&mut self.pending.lock().1);
        for entry in abandoned.into_values() {
            let reason = if entry.started {
                "the engine closed before the receiver answered"
            } else {
                "the engine's close or flush deadline passed first"
            };
            let failed = Failed {
                // A started delivery has made its first request at least (the one unanswered).
                attempts: u32::from(entry.started),
                error: DeliveryError::NotSent { reason },
            };
            self.report(&entry.channel, entry.kind, &entry.alert, &Err(failed));
        }
    }

    /// Writes the `alert.sent` / `alert.failed` line and count of one delivery.
    fn report(
        &self,
        channel: &str,
        kind: &'static str,
        alert: &Alert,
        outcome: &Result<super::delivery::Delivered, Failed>,
    ) {
        if let Some(telemetry) = self.telemetry.upgrade() {
            telemetry.alert_delivered(self.clock.utc_now(), channel, kind, alert, outcome);
        }
    }

    fn not_sent(&self, channel: &str, kind: &'static str, alert: &Alert, error: DeliveryError) {
        self.report(channel, kind, alert, &Err(Failed { attempts: 0, error }));
    }
}

/// The couriers of one alerts thread, by channel name.
pub(super) struct Couriers {
    channels: Arc<BTreeMap<String, Channel>>,
    post: Arc<Post>,
    running: BTreeMap<String, SyncSender<Parcel>>,
}

impl Couriers {
    pub fn new(channels: Arc<BTreeMap<String, Channel>>, post: Post) -> Couriers {
        Couriers {
            channels,
            post: Arc::new(post),
            running: BTreeMap::new(),
        }
    }

    /// Hands `alert` to the courier of each of its channels and returns at once. A channel
    /// `alerts.json` does not define, a full queue or a thread that cannot start is an
    /// `alert.failed` line written here.
    pub fn dispatch(&mut self, alert: Alert) {
        let channels = Arc::clone(&self.channels);
        for name in &alert.channels {
            let Some(channel) = channels.get(name) else {
                let error = DeliveryError::UnknownChannel {
                    channel: name.clone(),
                };
                self.post.not_sent(name, "unknown", &alert, error);
                continue;
            };
            let Some(sender) = self.courier(channel).cloned() else {
                let error = DeliveryError::NotSent {
                    reason: "no delivery thread could be started",
                };
                self.post.not_sent(name, channel.kind(), &alert, error);
                continue;
            };
            let ticket = self.post.enlist(name, channel.kind(), &alert);
            let refused = sender.try_send(Parcel::Alert(ticket, alert.clone()));
            if refused.is_err() {
                self.post.finish(ticket);
            }
            match refused {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    let error = DeliveryError::NotSent {
                        reason: "the channel's queue is full",
                    };
                    self.post.not_sent(name, channel.kind(), &alert, error);
                }
                Err(TrySendError::Disconnected(_)) => {
                    self.running.remove(name);
                    let error = DeliveryError::NotSent {
                        reason: "the channel's delivery thread ended",
                    };
                    self.post.not_sent(name, channel.kind(), &alert, error);
                }
            }
        }
    }

    /// The running courier of `channel`, started now if it is not.
    fn courier(&mut self, channel: &Channel) -> Option<&SyncSender<Parcel>> {
        if !self.running.contains_key(&channel.name) {
            let (sender, receiver) = mpsc::sync_channel(QUEUE_CAPACITY);
            let courier = Courier {
                channel: channel.clone(),
                deliverer: Deliverer::new(self.post.policy, Arc::clone(&self.post.env)),
                post: Arc::clone(&self.post),
            };
            thread::Builder::new()
                .name(format!("prompt-config-alert-{}", channel.name))
                .spawn(move || courier.run(&receiver))
                .ok()?;
            self.running.insert(channel.name.clone(), sender);
        }
        self.running.get(&channel.name)
    }

    /// Reports every alert a courier still holds as not sent (see [`Post::abandon`]); for a
    /// close whose deadline passed.
    pub fn abandon(&self) {
        self.post.abandon();
    }

    /// Waits until every courier has handled what it was handed, at most until `deadline`;
    /// false when one had not by then.
    pub fn settle(&self, deadline: Instant) -> bool {
        let mut answers = Vec::new();
        for sender in self.running.values() {
            let (ack, answer) = mpsc::sync_channel(1);
            let mut parcel = Parcel::Settle(ack);
            loop {
                match sender.try_send(parcel) {
                    Ok(()) => {
                        answers.push(answer);
                        break;
                    }
                    Err(TrySendError::Disconnected(_)) => break,
                    Err(TrySendError::Full(back)) => {
                        if Instant::now() >= deadline {
                            return false;
                        }
                        parcel = back;
                        thread::sleep(Duration::from_millis(2));
                    }
                }
            }
        }
        answers.iter().all(|answer| {
            let wait = deadline.saturating_duration_since(Instant::now());
            !matches!(
                answer.recv_timeout(wait),
                Err(mpsc::RecvTimeoutError::Timeout)
            )
        })
    }
}

/// One channel's delivery thread.
struct Courier {
    channel: Channel,
    deliverer: Deliverer,
    post: Arc<Post>,
}

impl Courier {
    /// Delivers until its queue closes (the alerts thread ended).
    fn run(self, receiver: &Receiver<Parcel>) {
        let deadline = || self.post.deadline.get();
        while let Ok(parcel) = receiver.recv() {
            match parcel {
                Parcel::Alert(ticket, alert) => {
                    if !self.post.start(ticket) {
                        continue;
                    }
                    let outcome = if self.post.deadline.passed() {
                        Err(Failed {
                            attempts: 0,
                            error: DeliveryError::NotSent {
                                reason: "the engine's close or flush deadline passed first",
                            },
                        })
                    } else {
                        self.deliverer.deliver(&self.channel, &alert, &deadline)
                    };
                    if self.post.finish(ticket) {
                        self.post
                            .report(&self.channel.name, self.channel.kind(), &alert, &outcome);
                    }
                }
                Parcel::Settle(ack) => {
                    let _ = ack.send(());
                }
            }
        }
    }
}
