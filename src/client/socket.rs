//! The transport every connection of the shared HTTP agent goes through: ureq's own (TCP, then
//! TLS for `https`), wrapped so that the socket under it registers with the
//! [`CancelToken`](super::cancel::CancelToken) in scope each time the calling thread is about to
//! block on it. Pooled connections take part too: the registration happens at each read and
//! write, on whichever thread uses the connection, not once when it was opened.
//!
//! The same wrapper bounds waits by a thread-local deadline ([`with_deadline`]): a streamed
//! response sets one before each read (the first-token limit, then the stall limit), so a
//! stream's silences are bounded without a timer thread per stream.

use std::cell::Cell;
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::Mutex;
use ureq::Error;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, DefaultConnector, NextTimeout, ShutdownHandle, Transport,
};

use super::cancel;

thread_local! {
    /// When the current thread's next wait on a socket must end, if a stream set a bound.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Runs `work` with every socket wait of this thread's HTTP transport ending by `deadline`
/// (when `Some`), or by an earlier bound already in force (the call's deadline around a
/// stream's stall limit); a wait that reaches it fails as ureq's `Timeout(RecvBody)`. The
/// previous bound is back when `work` returns or unwinds, so bounds nest.
pub(super) fn with_deadline<T>(deadline: Option<Instant>, work: impl FnOnce() -> T) -> T {
    struct Restore(Option<Instant>);
    impl Drop for Restore {
        fn drop(&mut self) {
            DEADLINE.set(self.0);
        }
    }
    let outer = DEADLINE.get();
    let deadline = match (outer, deadline) {
        (Some(outer), Some(inner)) => Some(outer.min(inner)),
        (outer, inner) => inner.or(outer),
    };
    let _restore = Restore(DEADLINE.replace(deadline));
    work()
}

/// `timeout` shortened to the thread's deadline, or the timeout error when it has passed.
fn bounded(mut timeout: NextTimeout) -> Result<NextTimeout, Error> {
    let Some(deadline) = DEADLINE.get() else {
        return Ok(timeout);
    };
    let left = deadline.saturating_duration_since(Instant::now());
    // A zero wait would mean "no timeout" to the socket (ureq turns it into 1 s): fail now.
    if left.is_zero() {
        return Err(Error::Timeout(ureq::Timeout::RecvBody));
    }
    let left = ureq::unversioned::transport::time::Duration::from(left);
    if left < timeout.after {
        timeout.after = left;
        timeout.reason = ureq::Timeout::RecvBody;
    }
    Ok(timeout)
}

/// What `ConnectionDetails::register_shutdown` holds (ureq names the type only privately).
type RegisterShutdown = dyn Fn(Weak<dyn ShutdownHandle>) -> Result<(), Error> + Send + Sync;

/// ureq's default connector chain, whose transports listen to the cancel token in scope.
#[derive(Debug, Default)]
pub(super) struct CancellableConnector {
    inner: DefaultConnector,
}

impl Connector<()> for CancellableConnector {
    type Out = CancellableTransport;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<CancellableTransport>, Error> {
        // ureq hands the socket's shutdown handle to the agent's pool right after connecting
        // (for `Agent::shutdown`); a copy is kept here too so the transport can offer it to
        // a cancel token.
        let socket: Arc<Mutex<Option<Weak<dyn ShutdownHandle>>>> = Arc::default();
        let keep = Arc::clone(&socket);
        let to_pool = Arc::clone(&details.register_shutdown);
        let register: Arc<RegisterShutdown> = Arc::new(move |handle: Weak<dyn ShutdownHandle>| {
            *keep.lock() = Some(handle.clone());
            to_pool(handle)
        });
        let wrapped = ConnectionDetails {
            uri: details.uri,
            addrs: details.addrs.clone(),
            config: details.config,
            request_level: details.request_level,
            resolver: details.resolver,
            now: details.now,
            timeout: details.timeout,
            current_time: Arc::clone(&details.current_time),
            run_connector: Arc::clone(&details.run_connector),
            register_shutdown: register,
        };
        let Some(inner) = self.inner.connect(&wrapped, chained)? else {
            return Ok(None);
        };
        let socket = socket.lock().take();
        let transport = CancellableTransport { inner, socket };
        transport.check()?;
        Ok(Some(transport))
    }
}

/// A connection that tells the cancel token in scope which socket to shut down.
#[derive(Debug)]
pub(super) struct CancellableTransport {
    inner: Box<dyn Transport>,
    socket: Option<Weak<dyn ShutdownHandle>>,
}

impl CancellableTransport {
    /// Arms the token in scope with this socket; an error when the token is cancelled, so
    /// the call stops instead of blocking.
    fn check(&self) -> Result<(), Error> {
        let cancelled = match &self.socket {
            Some(socket) => cancel::arm(socket),
            None => cancel::is_cancelled(),
        };
        if cancelled {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "cancelled",
            )));
        }
        Ok(())
    }
}

impl Transport for CancellableTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        self.check()?;
        self.inner.transmit_output(amount, bounded(timeout)?)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        self.check()?;
        self.inner.await_input(bounded(timeout)?)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}
