//! The breaker scripts on real Redis servers: a published `open_until` is never shortened and
//! expires by itself, the probe lease has one holder, a successful probe closes the fleet's
//! breaker, and the same on a 3-master cluster.

use std::time::Duration;

use prompt_config::state::breaker::FleetOpen;

use crate::support::redis_server::{RedisCluster, RedisServer};

/// 2026-11-30 12:00 UTC, in ms.
const NOW_MS: i64 = 1_796_040_000_000;

fn open(until_ms: i64, open_for_ms: u64) -> FleetOpen {
    FleetOpen {
        until_ms,
        open_for_ms,
    }
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_published_open_until_is_never_shortened_and_expires_by_itself() {
    let server = RedisServer::start();
    let state = server.state();
    let ttl = Duration::from_secs(60);
    assert_eq!(state.breaker_lookup("openai").unwrap(), None);
    let later = open(NOW_MS + 30_000, 30_000);
    assert_eq!(
        state.breaker_publish("openai", later, ttl, None).unwrap(),
        later
    );
    let earlier = open(NOW_MS + 10_000, 10_000);
    assert_eq!(
        state.breaker_publish("openai", earlier, ttl, None).unwrap(),
        later,
        "the later open_until stays"
    );
    assert_eq!(state.breaker_lookup("openai").unwrap(), Some(later));
    let key = state.keys().key("breaker", &["openai"], "open");
    let pttl: i64 = server.cli(&["pttl", &key]).trim().parse().unwrap();
    assert!(pttl > 55_000 && pttl <= 60_000, "{pttl}");
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_model_breaker_is_published_apart_from_its_provider() {
    let server = RedisServer::start();
    let state = server.state();
    let entry = open(NOW_MS + 5_000, 5_000);
    state
        .breaker_publish("openai/gpt-4o", entry, Duration::from_secs(10), None)
        .unwrap();
    assert_eq!(state.breaker_lookup("openai").unwrap(), None);
    assert_eq!(state.breaker_lookup("openai/gpt-4o").unwrap(), Some(entry));
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn one_holder_takes_the_probe_lease_until_it_ends_it() {
    let server = RedisServer::start();
    let state = server.state();
    let lease = Duration::from_secs(10);
    assert!(state.breaker_take_lease("openai", "a", lease).unwrap());
    assert!(!state.breaker_take_lease("openai", "b", lease).unwrap());
    state
        .breaker_end_lease("openai", "b", NOW_MS, false)
        .unwrap();
    assert!(
        !state.breaker_take_lease("openai", "b", lease).unwrap(),
        "only the holder frees it"
    );
    state
        .breaker_end_lease("openai", "a", NOW_MS, false)
        .unwrap();
    assert!(state.breaker_take_lease("openai", "b", lease).unwrap());
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_probe_lease_expires_when_its_holder_died() {
    let server = RedisServer::start();
    let state = server.state();
    assert!(
        state
            .breaker_take_lease("openai", "dead", Duration::from_millis(50))
            .unwrap()
    );
    std::thread::sleep(Duration::from_millis(120));
    assert!(
        state
            .breaker_take_lease("openai", "alive", Duration::from_secs(10))
            .unwrap()
    );
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_successful_probe_closes_the_fleets_breaker_unless_a_later_trip_was_published() {
    let server = RedisServer::start();
    let state = server.state();
    let ttl = Duration::from_secs(60);
    state
        .breaker_publish("openai", open(NOW_MS, 10_000), ttl, None)
        .unwrap();
    assert!(state.breaker_take_lease("openai", "a", ttl).unwrap());
    assert!(
        state
            .breaker_end_lease("openai", "a", NOW_MS, true)
            .unwrap()
    );
    assert_eq!(state.breaker_lookup("openai").unwrap(), None);

    state
        .breaker_publish("anthropic", open(NOW_MS + 20_000, 20_000), ttl, None)
        .unwrap();
    assert!(
        !state
            .breaker_end_lease("anthropic", "a", NOW_MS, true)
            .unwrap(),
        "a trip elsewhere, later than the probe, keeps the fleet open"
    );
    assert!(state.breaker_lookup("anthropic").unwrap().is_some());
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_failed_probe_frees_its_lease_as_it_publishes_again() {
    let server = RedisServer::start();
    let state = server.state();
    let ttl = Duration::from_secs(60);
    assert!(state.breaker_take_lease("openai", "a", ttl).unwrap());
    state
        .breaker_publish("openai", open(NOW_MS + 20_000, 20_000), ttl, Some("a"))
        .unwrap();
    assert!(state.breaker_take_lease("openai", "b", ttl).unwrap());
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn the_breaker_scripts_run_on_a_cluster() {
    let cluster = RedisCluster::start();
    let state = cluster.state();
    let ttl = Duration::from_secs(60);
    for breaker in ["openai", "anthropic/claude", "mistral"] {
        let entry = open(NOW_MS + 1_000, 1_000);
        assert_eq!(
            state.breaker_publish(breaker, entry, ttl, None).unwrap(),
            entry
        );
        assert!(state.breaker_take_lease(breaker, "a", ttl).unwrap());
        assert!(
            state
                .breaker_end_lease(breaker, "a", NOW_MS + 1_000, true)
                .unwrap()
        );
        assert_eq!(state.breaker_lookup(breaker).unwrap(), None);
    }
}
