//! `SharedState`: the first failure degrades to local state (reported once), calls while
//! degraded never touch Redis, and a background ping restores shared state by itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prompt_config::state::{
    Degraded, RedisSettings, RedisState, SharedState, StateChange, StateListener,
};

use crate::support::fleet::wait_until;
use crate::support::redis_server::RedisServer;

const TIMEOUT: Duration = Duration::from_millis(50);

fn shared(server: &RedisServer) -> (SharedState, Arc<Mutex<Vec<StateChange>>>) {
    let settings = RedisSettings::new(&server.url())
        .unwrap()
        .with_timeouts(TIMEOUT, TIMEOUT);
    let changes = Arc::new(Mutex::new(Vec::new()));
    let heard = Arc::clone(&changes);
    let listener: StateListener = Arc::new(move |change| heard.lock().push(change.clone()));
    let state = SharedState::with_reconnect_interval(
        RedisState::new(settings).unwrap(),
        listener,
        Duration::from_millis(50),
    );
    (state, changes)
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_failed_call_degrades_once_and_later_calls_skip_redis() {
    let mut server = RedisServer::start();
    let (state, changes) = shared(&server);
    assert_eq!(state.run(|redis| redis.ping()), Ok(()));
    server.kill();
    assert_eq!(state.run(|redis| redis.ping()), Err(Degraded));
    assert!(state.is_degraded());
    let mut touched = false;
    assert_eq!(
        state.run(|redis| {
            touched = true;
            redis.ping()
        }),
        Err(Degraded)
    );
    assert!(!touched, "a degraded state must not call Redis");
    let changes = changes.lock();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(matches!(changes[0], StateChange::Degraded { .. }));
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_restarted_server_restores_shared_state_by_itself() {
    let mut server = RedisServer::start();
    let (state, changes) = shared(&server);
    server.kill();
    assert_eq!(state.run(|redis| redis.ping()), Err(Degraded));
    server.restart();
    wait_until("restored", || !state.is_degraded());
    assert_eq!(state.run(|redis| redis.ping()), Ok(()));
    let changes = changes.lock();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(matches!(changes[1], StateChange::Restored { .. }));
}

// --- fork(): a child never uses its parent's connections or waits for its parent's thread ----

const CHILD_URL: &str = "PROMPT_CONFIG_TEST_FORK_REDIS_URL";
const CHILD_MODE: &str = "PROMPT_CONFIG_TEST_FORK_MODE";

/// Runs `child_forks` (below) as a child process of this test binary: `fork()` must not happen
/// in the test harness's own many-threaded process.
fn run_forking_child(mode: &str, url: &str) {
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "shared::child_forks",
            "--include-ignored",
            "--test-threads=1",
        ])
        .env(CHILD_URL, url)
        .env(CHILD_MODE, mode)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "the forking child failed: {status}");
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_forked_child_and_its_parent_never_share_a_pooled_connection() {
    let server = RedisServer::start();
    run_forking_child("spend", &server.url());
    let totals = server
        .state()
        .totals(&crate::budget::window("forked"))
        .unwrap();
    // 300 reservations settled at 1 nano-dollar on each side of the fork, none left over: no
    // reply was read by the wrong process.
    assert_eq!((totals.spent, totals.reserved), (600, 0));
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_child_forked_while_degraded_restores_shared_state_by_itself() {
    run_forking_child("degraded", "");
}

#[test]
#[ignore = "runs as a child process of the fork tests"]
fn child_forks() {
    let Ok(mode) = std::env::var(CHILD_MODE) else {
        return;
    };
    let mut own_server = None;
    let state = if mode == "degraded" {
        let server = RedisServer::start();
        let (state, _changes) = shared(&server);
        own_server = Some(server);
        state
    } else {
        let url = std::env::var(CHILD_URL).unwrap();
        let settings = RedisSettings::new(&url).unwrap().with_timeouts(
            crate::support::redis_server::PATIENT,
            crate::support::redis_server::PATIENT,
        );
        SharedState::new(
            RedisState::new(settings).unwrap(),
            Arc::new(|_: &StateChange| {}),
        )
    };
    // The pool now holds a connection, which the child inherits.
    assert_eq!(state.run(|redis| redis.ping()), Ok(()));
    if let Some(server) = own_server.as_mut() {
        server.kill();
        assert_eq!(state.run(|redis| redis.ping()), Err(Degraded));
    }
    let window = crate::budget::window("forked");
    let work = || match mode.as_str() {
        "spend" => {
            crate::budget::spend_concurrently(
                state.redis(),
                &window,
                u64::MAX / 4,
                1,
                1,
                300,
                |_| 1,
            );
            true
        }
        _ => {
            // The parent restarts the server after the fork; only a reconnect thread of the
            // child's own can notice.
            assert_eq!(state.run(|redis| redis.ping()), Err(Degraded));
            let deadline = Instant::now() + Duration::from_secs(10);
            while state.is_degraded() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            !state.is_degraded() && state.run(|redis| redis.ping()).is_ok()
        }
    };
    // SAFETY: the forked child uses only `state` (its own locks, taken by no other thread at
    // the fork) and leaves with `_exit`, running no destructor of the parent's objects.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let succeeded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        // SAFETY: ends the forked child without touching the parent's state.
        unsafe { libc::_exit(if matches!(succeeded, Ok(true)) { 0 } else { 1 }) };
    }
    if let Some(server) = own_server.as_mut() {
        server.restart();
    } else {
        assert!(work());
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the forked child failed: status {status}"
    );
}
