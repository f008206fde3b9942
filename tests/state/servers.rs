//! The test servers behave as the degradation tests assume: a fresh server per test, kill and
//! restart on the same port, a stalled server that accepts but never answers, and a cluster
//! with every slot served.

use std::time::Duration;

use crate::support::redis_server::{RedisCluster, RedisServer};

const REPLY: Duration = Duration::from_millis(500);

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_started_server_answers_ping_on_its_own_loopback_port() {
    let server = RedisServer::start();
    assert_eq!(server.raw("PING", REPLY).as_deref(), Some("+PONG\r\n"));
    assert_eq!(
        server.url(),
        format!("redis://127.0.0.1:{}/", server.port())
    );
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn two_servers_never_share_a_port_or_data() {
    let first = RedisServer::start();
    let second = RedisServer::start();
    assert_ne!(first.port(), second.port());
    first.raw("SET shared 1", REPLY);
    assert_eq!(
        second.raw("EXISTS shared", REPLY).as_deref(),
        Some(":0\r\n")
    );
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_killed_server_refuses_and_a_restart_serves_the_same_port_empty() {
    let mut server = RedisServer::start();
    let port = server.port();
    server.raw("SET key 1", REPLY);
    server.kill();
    assert_eq!(server.raw("PING", REPLY), None);
    server.restart();
    assert_eq!(server.port(), port);
    assert_eq!(server.raw("EXISTS key", REPLY).as_deref(), Some(":0\r\n"));
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_stalled_server_accepts_but_answers_only_after_the_stall_ends() {
    let mut server = RedisServer::start();
    {
        let stall = server.stall();
        let started = std::time::Instant::now();
        assert_eq!(stall.server().raw("PING", REPLY), None);
        assert!(started.elapsed() >= REPLY);
    }
    assert_eq!(server.raw("PING", REPLY).as_deref(), Some("+PONG\r\n"));
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_cluster_of_three_masters_serves_every_slot() {
    let cluster = RedisCluster::start();
    assert_eq!(cluster.urls().len(), 3);
    for node in cluster.nodes() {
        let info = node.cli(&["cluster", "info"]);
        assert!(info.contains("cluster_state:ok"), "{info}");
        assert!(info.contains("cluster_slots_assigned:16384"), "{info}");
        assert!(info.contains("cluster_known_nodes:3"), "{info}");
    }
}
