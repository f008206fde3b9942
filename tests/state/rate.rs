//! The shared GCRA rate limit on one server: a full period's worth at once after an idle
//! stretch, then one unit per interval, shared by every thread and process that names it.

use std::time::Duration;

use prompt_config::state::rate::{RateDecision, RateLimit};

use crate::support::redis_server::RedisServer;

fn rpm(limit: u64) -> RateLimit {
    RateLimit::new("provider:openai:rpm", limit, Duration::from_secs(60))
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_full_period_is_allowed_at_once_and_the_next_call_learns_its_wait() {
    let server = RedisServer::start();
    let state = server.state();
    let limit = rpm(500);
    for _ in 0..500 {
        assert_eq!(state.acquire(&limit, 1, 0).unwrap(), RateDecision::Allowed);
    }
    // One interval is 60 s / 500 = 120 ms.
    assert_eq!(
        state.acquire(&limit, 1, 0).unwrap(),
        RateDecision::Wait(Duration::from_millis(120))
    );
    assert_eq!(
        state.acquire(&limit, 1, 120).unwrap(),
        RateDecision::Allowed
    );
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn tokens_per_minute_count_each_call_by_its_tokens() {
    let server = RedisServer::start();
    let state = server.state();
    let tpm = RateLimit::new("model:gpt-4o-mini:tpm", 10_000, Duration::from_secs(60));
    assert_eq!(
        state.acquire(&tpm, 6_000, 0).unwrap(),
        RateDecision::Allowed
    );
    assert!(matches!(
        state.acquire(&tpm, 6_000, 0).unwrap(),
        RateDecision::Wait(_)
    ));
    assert_eq!(
        state.acquire(&tpm, 4_000, 0).unwrap(),
        RateDecision::Allowed
    );
    assert_eq!(
        state.acquire(&tpm, 10_001, 0).unwrap(),
        RateDecision::TooLarge
    );
    let small_burst = tpm.with_burst(2_000);
    assert_eq!(
        state.acquire(&small_burst, 2_001, 0).unwrap(),
        RateDecision::TooLarge
    );
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn eight_threads_share_one_limit_exactly() {
    let server = RedisServer::start();
    let state = server.state();
    let limit = rpm(100);
    let allowed = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..30 {
                    if state.acquire(&limit, 1, 5_000).unwrap() == RateDecision::Allowed {
                        allowed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(allowed.into_inner(), 100);
}

/// Attempts every 100 ms of engine time for three minutes (10x a limit of 60 per minute);
/// returns how many were allowed in each minute.
fn allowed_per_minute_under_overload(limit: &RateLimit) -> [u32; 3] {
    let server = RedisServer::start();
    let state = server.state();
    let mut allowed = [0u32; 3];
    for tick in 0..1_800i64 {
        let now = tick * 100;
        if state.acquire(limit, 1, now).unwrap() == RateDecision::Allowed {
            allowed[(now / 60_000) as usize] += 1;
        }
    }
    allowed
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn under_overload_a_burst_of_a_tenth_keeps_every_minute_within_ten_percent_of_the_limit() {
    let allowed = allowed_per_minute_under_overload(&rpm(60).with_burst(6));
    // The first minute: the burst of 6 at once, then one a second.
    assert_eq!(allowed, [6 + 59, 60, 60]);
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn under_overload_a_full_burst_admits_a_second_limit_in_the_first_minute_only() {
    let allowed = allowed_per_minute_under_overload(&rpm(60));
    assert_eq!(allowed, [60 + 59, 60, 60]);
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn limits_of_different_names_are_independent() {
    let server = RedisServer::start();
    let state = server.state();
    let openai = rpm(1);
    let anthropic = RateLimit::new("provider:anthropic:rpm", 1, Duration::from_secs(60));
    assert_eq!(state.acquire(&openai, 1, 0).unwrap(), RateDecision::Allowed);
    assert_eq!(
        state.acquire(&anthropic, 1, 0).unwrap(),
        RateDecision::Allowed
    );
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_refund_gives_units_back_for_the_next_call() {
    let server = RedisServer::start();
    let state = server.state();
    let tpm = RateLimit::new("model:mock/m:tpm", 1_000, Duration::from_secs(60));
    assert_eq!(
        state.acquire(&tpm, 1_000, 0).unwrap(),
        RateDecision::Allowed
    );
    assert!(matches!(
        state.acquire(&tpm, 400, 0).unwrap(),
        RateDecision::Wait(_)
    ));
    // The call used 600 of the 1000 it took.
    state.refund(&tpm, 400, 0).unwrap();
    assert_eq!(state.acquire(&tpm, 400, 0).unwrap(), RateDecision::Allowed);
    assert!(matches!(
        state.acquire(&tpm, 1, 0).unwrap(),
        RateDecision::Wait(_)
    ));
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_refund_never_builds_credit_beyond_the_burst() {
    let server = RedisServer::start();
    let state = server.state();
    let limit = rpm(60).with_burst(6);
    state.refund(&limit, 100, 0).unwrap();
    let allowed = (0..20)
        .filter(|_| state.acquire(&limit, 1, 0).unwrap() == RateDecision::Allowed)
        .count();
    assert_eq!(allowed, 6);
}
