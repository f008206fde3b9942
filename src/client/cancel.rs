//! Cancellation of a call in progress from another thread: a [`CancelToken`] the caller keeps,
//! and the thread-local scope through which the client's sockets and sleeps listen to it.
//!
//! Why a thread-local scope rather than a token passed down every function: a call is blocking
//! code on one thread from resolve to the last byte, and the places that wait (a socket read
//! deep inside ureq, a backoff sleep, the mock provider's delays) are far below the engine. The
//! engine enters the scope once ([`CancelToken::enter`]); the HTTP transport's sockets register
//! themselves with the token in scope each time they are about to block, so
//! [`CancelToken::cancel`] shuts the socket being read (`shutdown(2)`), which wakes a blocked
//! read at once, and wakes sleeps waiting on the token. This is what Ruby's unblock function
//! and a C caller's other thread call.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::sync::Weak;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use ureq::unversioned::transport::ShutdownHandle;

/// A handle that stops a call in progress: cloned freely, sent to any thread. Cancelling is
/// sticky (a cancelled token stays cancelled) and idempotent.
///
/// A call made with a token ([`Engine::complete_with`](crate::Engine::complete_with),
/// [`Engine::stream_with`](crate::Engine::stream_with)) checks it before every attempt and
/// every wait; cancelling closes the connection being read at once (the server sees the socket
/// close) and the call ends with [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled).
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    woken: Condvar,
}

#[derive(Default)]
struct State {
    cancelled: bool,
    /// The socket of the connection the call is using, while it uses one.
    socket: Option<Weak<dyn ShutdownHandle>>,
}

thread_local! {
    static CURRENT: RefCell<Option<CancelToken>> = const { RefCell::new(None) };
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Stops the call: shuts down the socket it is reading or writing (so a blocked read
    /// returns at once) and wakes it from any sleep. Safe from any thread, any number of times,
    /// before, during or after the call.
    pub fn cancel(&self) {
        let socket = {
            let mut state = self.inner.state.lock();
            state.cancelled = true;
            state.socket.take()
        };
        if let Some(socket) = socket.and_then(|socket| socket.upgrade()) {
            socket.shutdown();
        }
        self.inner.woken.notify_all();
    }

    /// Whether [`cancel`](CancelToken::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.state.lock().cancelled
    }

    /// Runs `work` with this token in scope on the current thread: sockets and sleeps of the
    /// client reached from `work` listen to it. Scopes nest; the previous token is back in scope
    /// when `work` returns or unwinds.
    pub fn enter<T>(&self, work: impl FnOnce() -> T) -> T {
        struct Restore(Option<CancelToken>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                CURRENT.with(|current| *current.borrow_mut() = previous);
            }
        }
        let previous = CURRENT.with(|current| current.borrow_mut().replace(self.clone()));
        let _restore = Restore(previous);
        work()
    }

    /// Sleeps for `duration` unless the token is cancelled first; true when cancelled.
    pub(crate) fn sleep(&self, duration: Duration) -> bool {
        let until = Instant::now() + duration;
        let mut state = self.inner.state.lock();
        while !state.cancelled {
            if self.inner.woken.wait_until(&mut state, until).timed_out() {
                return state.cancelled;
            }
        }
        true
    }

    /// Makes `socket` the one [`cancel`](CancelToken::cancel) shuts down; shuts it down at once
    /// when the token is already cancelled. Returns whether it was cancelled.
    fn arm(&self, socket: &Weak<dyn ShutdownHandle>) -> bool {
        let mut state = self.inner.state.lock();
        if state.cancelled {
            drop(state);
            if let Some(socket) = socket.upgrade() {
                socket.shutdown();
            }
            return true;
        }
        let same = state
            .socket
            .as_ref()
            .is_some_and(|armed| Weak::ptr_eq(armed, socket));
        if !same {
            state.socket = Some(socket.clone());
        }
        false
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// The token in scope on this thread, if any.
pub(crate) fn current() -> Option<CancelToken> {
    CURRENT.with(|current| current.borrow().clone())
}

/// Whether the token in scope (if any) is cancelled.
pub(crate) fn is_cancelled() -> bool {
    CURRENT.with(|current| {
        current
            .borrow()
            .as_ref()
            .is_some_and(CancelToken::is_cancelled)
    })
}

/// Sleeps for `duration`, waking early when the token in scope is cancelled; true when it was.
pub(crate) fn sleep(duration: Duration) -> bool {
    match current() {
        Some(token) => token.sleep(duration),
        None => {
            std::thread::sleep(duration);
            false
        }
    }
}

/// Tells the token in scope (if any) that the current thread is about to block on `socket`;
/// true when the token is cancelled (the socket is then already shut down).
pub(crate) fn arm(socket: &Weak<dyn ShutdownHandle>) -> bool {
    CURRENT.with(|current| {
        current
            .borrow()
            .as_ref()
            .is_some_and(|token| token.arm(socket))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[derive(Default)]
    struct Socket(AtomicBool);

    impl ShutdownHandle for Socket {
        fn shutdown(&self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    fn socket() -> (Arc<Socket>, Weak<dyn ShutdownHandle>) {
        let socket = Arc::new(Socket::default());
        let weak = Arc::downgrade(&socket) as Weak<dyn ShutdownHandle>;
        (socket, weak)
    }

    #[test]
    fn cancel_shuts_down_the_armed_socket() {
        let token = CancelToken::new();
        let (socket, weak) = socket();
        token.enter(|| assert!(!arm(&weak)));
        token.cancel();
        assert!(socket.0.load(Ordering::SeqCst));
        assert!(token.is_cancelled());
    }

    #[test]
    fn arming_after_cancel_shuts_down_at_once() {
        let token = CancelToken::new();
        token.cancel();
        let (socket, weak) = socket();
        assert!(token.enter(|| arm(&weak)));
        assert!(socket.0.load(Ordering::SeqCst));
    }

    #[test]
    fn without_a_scope_nothing_listens() {
        let (socket, weak) = socket();
        assert!(!arm(&weak));
        assert!(!is_cancelled());
        assert!(!socket.0.load(Ordering::SeqCst));
    }

    #[test]
    fn the_previous_scope_returns_after_a_nested_one() {
        let outer = CancelToken::new();
        let inner = CancelToken::new();
        inner.cancel();
        outer.enter(|| {
            inner.enter(|| assert!(is_cancelled()));
            assert!(!is_cancelled());
        });
        assert!(current().is_none());
    }

    #[test]
    fn a_cancel_from_another_thread_wakes_a_sleep() {
        let token = CancelToken::new();
        let other = token.clone();
        let started = Instant::now();
        let waker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            other.cancel();
        });
        assert!(token.enter(|| sleep(Duration::from_secs(10))));
        assert!(started.elapsed() < Duration::from_secs(5));
        waker.join().unwrap();
    }

    #[test]
    fn an_uncancelled_sleep_lasts_its_duration() {
        let token = CancelToken::new();
        let started = Instant::now();
        assert!(!token.enter(|| sleep(Duration::from_millis(15))));
        assert!(started.elapsed() >= Duration::from_millis(15));
    }
}
