//! Shared state with a fallback: the one way the client reaches Redis. A call goes to Redis
//! while it is healthy; the first failure (a timeout, a refused or reset connection) marks the
//! state degraded, reports a [`StateChange::Degraded`], and from then on every call is refused
//! at once (the caller uses its local state) while one background thread pings Redis until it
//! answers, reports [`StateChange::Restored`] and lets calls through again. So an outage costs
//! at most one call one timeout per process, never a failed call, and the fleet comes back to
//! shared state by itself.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::{RedisState, StateError};

/// How often the background thread pings a Redis that failed.
pub const DEFAULT_RECONNECT_INTERVAL: Duration = Duration::from_millis(500);

/// A change of health of the shared state, for telemetry (`state.degraded`, `state.restored`).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StateChange {
    /// Redis failed; the process serves from local state until it answers again.
    Degraded {
        /// The server or cluster, password masked.
        server: String,
        /// What failed (never the password).
        reason: String,
    },
    /// Redis answers again; shared state is back.
    Restored {
        /// The server or cluster, password masked.
        server: String,
        /// How long the process ran on local state, in ms.
        degraded_ms: u64,
    },
}

/// Receives health changes; called from the failing call's thread (degraded) or from the
/// reconnect thread (restored), never while a lock is held.
pub type StateListener = Arc<dyn Fn(&StateChange) + Send + Sync>;

/// Something that keeps work for Redis while it is unavailable (a budget book's spend of an
/// outage) and does it when Redis answers again.
pub trait OnRestored: Send + Sync {
    /// Called from the reconnect thread once calls reach Redis again, after the listener.
    fn restored(&self);
}

/// The call was not made on Redis because the shared state is degraded (now or by this very
/// call's failure): use local state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Degraded;

/// A cheaply cloned handle on Redis with degradation and background reconnection.
#[derive(Clone)]
pub struct SharedState {
    inner: Arc<Inner>,
}

struct Inner {
    redis: RedisState,
    degraded: AtomicBool,
    /// When the current degradation began (None while healthy).
    since: Mutex<Option<Instant>>,
    listener: StateListener,
    reconnect_interval: Duration,
    /// Told when Redis answers again; weak, so a replaced book (on reload) goes away.
    on_restored: Mutex<Vec<Weak<dyn OnRestored>>>,
    /// The process this state runs in: a forked child has no reconnect thread of its own.
    owner: AtomicU32,
}

impl SharedState {
    /// Wraps `redis`; `listener` hears every change of health.
    pub fn new(redis: RedisState, listener: StateListener) -> SharedState {
        SharedState::with_reconnect_interval(redis, listener, DEFAULT_RECONNECT_INTERVAL)
    }

    /// As [`SharedState::new`], pinging a failed Redis every `interval`.
    pub fn with_reconnect_interval(
        redis: RedisState,
        listener: StateListener,
        interval: Duration,
    ) -> SharedState {
        SharedState {
            inner: Arc::new(Inner {
                redis,
                degraded: AtomicBool::new(false),
                since: Mutex::new(None),
                listener,
                reconnect_interval: interval,
                on_restored: Mutex::new(Vec::new()),
                owner: AtomicU32::new(std::process::id()),
            }),
        }
    }

    /// The Redis handle (its key names and settings).
    pub fn redis(&self) -> &RedisState {
        &self.inner.redis
    }

    /// True while calls are served from local state.
    pub fn is_degraded(&self) -> bool {
        self.inner.degraded.load(Ordering::Acquire)
    }

    /// Tells `hook` each time Redis answers again after a degradation, for as long as it
    /// lives.
    pub fn when_restored(&self, hook: Weak<dyn OnRestored>) {
        let mut hooks = self.inner.on_restored.lock();
        hooks.retain(|hook| hook.strong_count() > 0);
        hooks.push(hook);
    }

    /// Runs `work` on Redis unless degraded. A failure degrades the state (reporting it and
    /// starting the reconnect thread) and returns [`Degraded`], as does any call while
    /// degraded, without touching Redis.
    pub fn run<T>(
        &self,
        work: impl FnOnce(&RedisState) -> Result<T, StateError>,
    ) -> Result<T, Degraded> {
        if self.inner.owner.load(Ordering::Acquire) != std::process::id() {
            self.after_fork();
        }
        if self.is_degraded() {
            return Err(Degraded);
        }
        match work(&self.inner.redis) {
            Ok(value) => Ok(value),
            Err(error) => {
                self.degrade(&error);
                Err(Degraded)
            }
        }
    }

    /// Makes a forked child's state its own: it drops the parent's pooled connections and, if
    /// the parent was degraded at the fork, starts the child's own reconnect thread (threads
    /// do not survive `fork()`). Runs by itself on the first call in the child (a pid check);
    /// `Engine::after_fork` calls it at once.
    pub fn after_fork(&self) {
        let pid = std::process::id();
        if self.inner.owner.swap(pid, Ordering::AcqRel) == pid {
            return;
        }
        self.inner.redis.after_fork();
        if self.is_degraded() {
            self.spawn_reconnect();
        }
    }

    fn spawn_reconnect(&self) {
        let weak = Arc::downgrade(&self.inner);
        let spawned = std::thread::Builder::new()
            .name("prompt-config-state-reconnect".into())
            .spawn(move || reconnect(weak));
        if spawned.is_err() {
            // No thread to bring it back: let the next call try Redis itself instead of
            // staying degraded for the life of the process.
            self.inner.degraded.store(false, Ordering::Release);
        }
    }

    fn degrade(&self, error: &StateError) {
        // Only the thread that flips the flag reports and starts the reconnect thread.
        if self
            .inner
            .degraded
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        *self.inner.since.lock() = Some(Instant::now());
        let reason = match error {
            StateError::Unavailable { message, .. } => message.clone(),
            other => other.to_string(),
        };
        (self.inner.listener)(&StateChange::Degraded {
            server: self.inner.redis.settings().masked_url(),
            reason,
        });
        self.spawn_reconnect();
    }
}

/// Pings until Redis answers or the state is dropped.
fn reconnect(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let interval = inner.reconnect_interval;
        drop(inner);
        std::thread::sleep(interval);
        let Some(inner) = weak.upgrade() else { return };
        if inner.redis.ping().is_ok() {
            let since = inner.since.lock().take();
            inner.degraded.store(false, Ordering::Release);
            let degraded_ms = since.map_or(0, |since| since.elapsed().as_millis() as u64);
            (inner.listener)(&StateChange::Restored {
                server: inner.redis.settings().masked_url(),
                degraded_ms,
            });
            let hooks: Vec<_> = inner
                .on_restored
                .lock()
                .iter()
                .filter_map(Weak::upgrade)
                .collect();
            for hook in hooks {
                hook.restored();
            }
            return;
        }
    }
}

impl std::fmt::Debug for SharedState {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SharedState")
            .field("redis", &self.inner.redis)
            .field("degraded", &self.is_degraded())
            .finish_non_exhaustive()
    }
}
