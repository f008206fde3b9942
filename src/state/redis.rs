//! The Redis connection: one client (a server or a cluster), a small pool of idle
//! connections, and timeouts on connecting and on every command.

use std::sync::atomic::{AtomicU32, Ordering};

use parking_lot::Mutex;
use redis::ConnectionLike;

use super::{Keyspace, RedisSettings, StateError};

/// A handle on Redis shared by the engine's threads: cheap to call from many threads at once
/// (each call takes an idle connection or opens one; none waits for another).
///
/// Every call is bounded by the connect timeout (when it has to open a connection) plus the
/// command timeout; a connection that failed or timed out is closed, never reused (a late
/// answer would otherwise be read as the next command's).
pub struct RedisState {
    settings: RedisSettings,
    keys: Keyspace,
    client: Client,
    idle: Mutex<Vec<Connection>>,
    /// The process the idle connections belong to: after `fork()` a child must not use the
    /// parent's sockets (both would read each other's replies).
    owner: AtomicU32,
}

enum Client {
    Single(redis::Client),
    Cluster(redis::cluster::ClusterClient),
}

enum Connection {
    Single(redis::Connection),
    // Boxed: a cluster connection is four times a plain one, and the pool moves them around.
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl Connection {
    fn as_dyn(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Connection::Single(connection) => connection,
            Connection::Cluster(connection) => connection.as_mut(),
        }
    }
}

impl RedisState {
    /// A handle for `settings`. Opens no connection yet (the first call does), so an engine
    /// starts while Redis is down; errors only on settings the client refuses.
    pub fn new(settings: RedisSettings) -> Result<RedisState, StateError> {
        let refused = |error: redis::RedisError| StateError::InvalidSettings {
            setting: "url".into(),
            message: format!("{}: {error}", settings.masked_url()),
        };
        let client = if settings.cluster {
            let seeds: Vec<&str> = settings.urls();
            redis::cluster::ClusterClientBuilder::new(seeds)
                .connection_timeout(settings.connect_timeout)
                .response_timeout(settings.command_timeout)
                // A redirect (MOVED/ASK) is one retry; waiting between retries would push a
                // call past the timeouts that keep it bounded.
                .retries(2)
                .min_retry_wait(1)
                .max_retry_wait(5)
                .build()
                .map(Client::Cluster)
                .map_err(refused)?
        } else {
            redis::Client::open(settings.url.as_str())
                .map(Client::Single)
                .map_err(refused)?
        };
        Ok(RedisState {
            keys: Keyspace::new(settings.key_prefix.clone()),
            settings,
            client,
            idle: Mutex::new(Vec::new()),
            owner: AtomicU32::new(std::process::id()),
        })
    }

    /// The settings this handle was made with.
    pub fn settings(&self) -> &RedisSettings {
        &self.settings
    }

    /// The key names under the configured prefix.
    pub fn keys(&self) -> &Keyspace {
        &self.keys
    }

    /// Sends PING: Ok when Redis answers within the timeouts.
    pub fn ping(&self) -> Result<(), StateError> {
        self.with_connection(|connection| redis::cmd("PING").query::<String>(connection))
            .map(|_| ())
    }

    /// Forgets the idle connections inherited from the parent process after `fork()`, so the
    /// child opens its own. Called by every call (a pid check), and by `Engine::after_fork`.
    pub fn after_fork(&self) {
        let pid = std::process::id();
        if self.owner.swap(pid, Ordering::AcqRel) != pid {
            let inherited = std::mem::take(&mut *self.idle.lock());
            // Leaked, not dropped: they are the parent's sockets, and nothing the child does
            // may touch them (a few file descriptors, once per fork).
            std::mem::forget(inherited);
        }
    }

    /// Runs `work` on a pooled connection; the connection goes back to the pool only if
    /// `work` succeeded. No retry: a script that timed out may still have run.
    pub(crate) fn with_connection<T>(
        &self,
        work: impl FnOnce(&mut dyn ConnectionLike) -> redis::RedisResult<T>,
    ) -> Result<T, StateError> {
        if self.owner.load(Ordering::Acquire) != std::process::id() {
            self.after_fork();
        }
        let mut connection = match self.idle.lock().pop() {
            Some(connection) => connection,
            None => self.open()?,
        };
        let result = work(connection.as_dyn());
        match result {
            Ok(value) => {
                let mut idle = self.idle.lock();
                if idle.len() < self.settings.pool_size {
                    idle.push(connection);
                }
                Ok(value)
            }
            Err(error) => {
                // The server likely died or restarted: the idle connections to it are as dead
                // as this one, and each would fail one more call. Drop them all.
                self.idle.lock().clear();
                Err(self.unavailable(&error))
            }
        }
    }

    fn open(&self) -> Result<Connection, StateError> {
        let timeout = Some(self.settings.command_timeout);
        match &self.client {
            Client::Single(client) => {
                let connection = client
                    .get_connection_with_timeout(self.settings.connect_timeout)
                    .map_err(|error| self.unavailable(&error))?;
                connection
                    .set_read_timeout(timeout)
                    .and_then(|()| connection.set_write_timeout(timeout))
                    .map_err(|error| self.unavailable(&error))?;
                Ok(Connection::Single(connection))
            }
            Client::Cluster(client) => {
                let connection = client
                    .get_connection()
                    .map_err(|error| self.unavailable(&error))?;
                connection
                    .set_write_timeout(timeout)
                    .map_err(|error| self.unavailable(&error))?;
                Ok(Connection::Cluster(Box::new(connection)))
            }
        }
    }

    /// The error for a failed call, naming the server without its password.
    fn unavailable(&self, error: &redis::RedisError) -> StateError {
        let message = if error.is_timeout() {
            format!("no answer within the timeout ({error})")
        } else {
            error.to_string()
        };
        StateError::Unavailable {
            server: self.settings.masked_url(),
            message,
        }
    }
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RedisState")
            .field("settings", &self.settings)
            .field("idle", &self.idle.lock().len())
            .finish()
    }
}
