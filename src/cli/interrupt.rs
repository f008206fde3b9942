//! Ctrl-C (SIGINT) cancels a call in progress: the handler writes one byte to a pipe (`write` is
//! async-signal-safe; a mutex or a thread wake-up is not), a thread blocked reading the pipe
//! cancels the [`CancelToken`], which closes the connection at once. A second Ctrl-C ends the
//! process as usual, unless it comes within [`GRACE_MS`] of the first: `timeout(1)` and some
//! supervisors signal the process and then its whole group, so one interrupt arrives twice, and
//! ending at once would lose the cancelled call's error line and telemetry. Built on `libc`,
//! already in the dependency tree, instead of a crate such as `ctrlc` that would add `nix`.

use std::ffi::c_int;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use prompt_config::client::CancelToken;

/// The write end of the pipe while a guard lives, else -1.
static WRITE_END: AtomicI32 = AtomicI32::new(-1);

/// The byte the handler writes; the guard writes another one to end the thread.
static INTERRUPTED: u8 = 1;
static DONE: u8 = 0;

/// A second SIGINT this soon after the first is the same interrupt delivered twice.
const GRACE_MS: u64 = 250;

/// When the first SIGINT arrived (monotonic milliseconds, at least 1), or 0 before it.
static FIRST_AT_MS: AtomicU64 = AtomicU64::new(0);

fn monotonic_ms() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) is async-signal-safe and writes only `now`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    (now.tv_sec as u64)
        .saturating_mul(1000)
        .saturating_add(now.tv_nsec as u64 / 1_000_000)
        .max(1)
}

extern "C" fn on_interrupt(_signal: c_int) {
    let now = monotonic_ms();
    let first = FIRST_AT_MS.load(Ordering::SeqCst);
    if first == 0 {
        FIRST_AT_MS.store(now, Ordering::SeqCst);
        let fd = WRITE_END.load(Ordering::SeqCst);
        if fd >= 0 {
            // SAFETY: write(2) is async-signal-safe; the byte lives in static memory.
            unsafe {
                libc::write(fd, (&raw const INTERRUPTED).cast(), 1);
            }
        }
        return;
    }
    if now.saturating_sub(first) < GRACE_MS {
        return;
    }
    // SAFETY: signal(2) and raise(3) are async-signal-safe: the default action ends the process.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::raise(libc::SIGINT);
    }
}

/// Cancels `cancel` on Ctrl-C until the guard drops (which restores the default action). When
/// the pipe cannot be made, Ctrl-C keeps its default action (the process ends).
pub struct InterruptGuard {
    write_end: c_int,
    watcher: Option<std::thread::JoinHandle<()>>,
}

pub fn cancel_on_interrupt(cancel: &CancelToken) -> InterruptGuard {
    let mut ends: [c_int; 2] = [-1, -1];
    // SAFETY: `ends` has room for the two descriptors. (Not `pipe2`, which macOS lacks; the
    // descriptors are marked close-on-exec right after, before any command runs.)
    if unsafe { libc::pipe(ends.as_mut_ptr()) } != 0 {
        return InterruptGuard {
            write_end: -1,
            watcher: None,
        };
    }
    let [read_end, write_end] = ends;
    for end in ends {
        // SAFETY: a descriptor just opened.
        unsafe { libc::fcntl(end, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    let token = cancel.clone();
    let watcher = std::thread::Builder::new()
        .name("prompt-config-sigint".into())
        .spawn(move || {
            let mut byte = DONE;
            loop {
                // SAFETY: reads one byte into `byte`.
                let read = unsafe { libc::read(read_end, (&raw mut byte).cast(), 1) };
                if read == 1 && byte == INTERRUPTED {
                    token.cancel();
                }
                let interrupted_call = read < 0
                    && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted;
                if !interrupted_call {
                    break;
                }
            }
            // SAFETY: the read end is this thread's alone.
            unsafe { libc::close(read_end) };
        });
    let watcher = match watcher {
        Ok(watcher) => watcher,
        Err(_) => {
            // SAFETY: both ends are ours and unused.
            unsafe {
                libc::close(read_end);
                libc::close(write_end);
            }
            return InterruptGuard {
                write_end: -1,
                watcher: None,
            };
        }
    };
    FIRST_AT_MS.store(0, Ordering::SeqCst);
    WRITE_END.store(write_end, Ordering::SeqCst);
    // SAFETY: installs a handler that only calls async-signal-safe functions.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_interrupt as extern "C" fn(c_int) as libc::sighandler_t,
        );
    }
    InterruptGuard {
        write_end,
        watcher: Some(watcher),
    }
}

impl Drop for InterruptGuard {
    fn drop(&mut self) {
        if self.write_end < 0 {
            return;
        }
        // SAFETY: restores the default action, then ends the watcher and closes the pipe.
        unsafe {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            WRITE_END.store(-1, Ordering::SeqCst);
            libc::write(self.write_end, (&raw const DONE).cast(), 1);
        }
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
        // SAFETY: the write end is ours; the handler no longer sees it.
        unsafe { libc::close(self.write_end) };
    }
}
