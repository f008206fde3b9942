//! Redis down or slow: every call ends within the connect or command timeout with a
//! `state_unavailable` error (never a hang, never a password), and the same handle serves
//! again once Redis is back.

use std::time::{Duration, Instant};

use prompt_config::state::budget::ReserveOutcome;
use prompt_config::state::{RedisSettings, RedisState, StateError};

use crate::budget::window;
use crate::support::redis_server::RedisServer;

const TIMEOUT: Duration = Duration::from_millis(50);
/// What a loaded shared test machine may add to a timeout: generous on purpose.
const SLACK: Duration = Duration::from_millis(950);

fn fast_state(server: &RedisServer) -> RedisState {
    let url = format!("redis://:s3cret@127.0.0.1:{}/", server.port());
    RedisState::new(
        RedisSettings::new(&url)
            .unwrap()
            .with_timeouts(TIMEOUT, TIMEOUT),
    )
    .unwrap()
}

fn reserve(state: &RedisState) -> Result<ReserveOutcome, StateError> {
    state.reserve(&window("global"), Some(100), 1, 0, Duration::from_secs(60))
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_stopped_server_fails_fast_with_state_unavailable_and_no_password() {
    let mut server = RedisServer::start();
    server.cli(&["config", "set", "requirepass", "s3cret"]);
    let state = fast_state(&server);
    assert!(reserve(&state).is_ok());
    server.kill();
    let started = Instant::now();
    let error = reserve(&state).unwrap_err();
    assert!(
        started.elapsed() < TIMEOUT + SLACK,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(error.kind(), "state_unavailable");
    assert!(!error.to_string().contains("s3cret"), "{error}");
    assert!(error.to_string().contains("***"), "{error}");
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_stalled_server_delays_a_call_by_at_most_the_command_timeout() {
    let mut server = RedisServer::start();
    server.cli(&["config", "set", "requirepass", "s3cret"]);
    let state = fast_state(&server);
    assert!(reserve(&state).is_ok(), "a pooled connection exists");
    let _stall = server.stall();
    for _ in 0..2 {
        // The pooled connection, then a fresh one (accepted by the kernel, never answered).
        let started = Instant::now();
        let error = reserve(&state).unwrap_err();
        let elapsed = started.elapsed();
        assert!(
            elapsed >= TIMEOUT && elapsed < 2 * TIMEOUT + SLACK,
            "{elapsed:?}"
        );
        assert!(error.is_unavailable(), "{error}");
    }
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn after_a_restart_the_same_handle_serves_again() {
    let mut server = RedisServer::start();
    let state = server.state();
    assert!(reserve(&state).is_ok());
    server.restart();
    // At most one call fails: it drops every pooled connection to the dead server.
    let failures = (0..3).filter(|_| reserve(&state).is_err()).count();
    assert!(failures <= 1, "{failures} calls failed after the restart");
    assert!(reserve(&state).is_ok());
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_handle_made_while_redis_is_down_connects_once_it_is_up() {
    let mut server = RedisServer::start();
    server.kill();
    let state = server.state();
    assert!(reserve(&state).unwrap_err().is_unavailable());
    server.restart();
    assert!(reserve(&state).is_ok());
}
