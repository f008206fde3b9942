//! `SharedState`: the first failure degrades to local state (reported once), calls while
//! degraded never touch Redis, and a background ping restores shared state by itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prompt_config::state::{
    Degraded, RedisSettings, RedisState, SharedState, StateChange, StateListener,
};

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

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
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
