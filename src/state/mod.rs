//! Fleet state (issue 11): what every process and host of an app must agree on (budget spend
//! and alerts, shared rate limits, breaker hints), behind one interface with two backends.
//!
//! - [`StateBackend::Memory`], the default: per-process state, nothing to run (today's
//!   behaviour).
//! - [`StateBackend::Redis`]: a Redis server (6 or later) or Redis Cluster shared by the fleet,
//!   through the blocking `redis` client with a small connection pool ([`RedisState`]) and
//!   connect and command timeouts in tens of milliseconds. Every primitive is one Lua script
//!   (`src/state/scripts/`) whose keys share one Redis Cluster hash tag ([`Keyspace`]), so it
//!   runs atomically on a single server and on a cluster alike.
//!
//! The primitives: budget reservations, settlement and once-per-fleet alert claims
//! ([`budget`]) and a shared GCRA rate limit ([`rate`]). The client reaches them only through
//! [`SharedState`], which degrades to local state when Redis fails and comes back by itself.
//!
//! This module sits below `client` in the core's arrow order (targeting -> config -> prompt ->
//! resolve -> state -> client -> telemetry -> engine) and uses nothing above it.

pub mod breaker;
pub mod budget;
pub mod claim;
mod keys;
pub mod rate;
mod redis;
mod settings;
mod shared;

pub use self::keys::Keyspace;
pub use self::redis::RedisState;
pub use self::settings::{RedisSettings, StateBackend};
pub use self::shared::{
    DEFAULT_RECONNECT_INTERVAL, Degraded, OnRestored, SharedState, StateChange, StateListener,
};

/// A failure of the shared state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The backend settings are unusable (a URL that does not parse, a zero pool size); names
    /// the setting at fault.
    #[error("{setting}: {message}")]
    InvalidSettings {
        /// The setting: an engine options JSON pointer (`/state/url`), `--redis` or
        /// `PROMPT_CONFIG_REDIS_URL`.
        setting: String,
        /// What is wrong with it.
        message: String,
    },
    /// Redis could not be reached or did not answer in time (connect or command timeout, a
    /// reset connection, a cluster without a master for the slot) or answered unexpectedly.
    /// Never carries the URL's password.
    #[error("shared state unavailable ({server}): {message}")]
    Unavailable {
        /// The server or cluster, with any password masked.
        server: String,
        /// What failed.
        message: String,
    },
}

impl StateError {
    /// `invalid_argument` for unusable settings, `state_unavailable` when Redis failed.
    pub fn kind(&self) -> crate::ErrorKind {
        match self {
            StateError::InvalidSettings { .. } => crate::ErrorKind::InvalidArgument,
            StateError::Unavailable { .. } => crate::ErrorKind::StateUnavailable,
        }
    }

    /// The setting or server at fault, as JSON.
    pub fn details(&self) -> serde_json::Value {
        match self {
            StateError::InvalidSettings { setting, .. } => {
                serde_json::json!({ "setting": setting })
            }
            StateError::Unavailable { server, .. } => serde_json::json!({ "server": server }),
        }
    }

    /// True when the failure was a timeout or a lost connection rather than an answer: the
    /// case where degrading to local state is the right reaction.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StateError::Unavailable { .. })
    }
}
