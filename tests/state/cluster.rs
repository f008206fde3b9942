//! The same budget primitives against a 3-master Redis Cluster: every script's keys share a
//! slot (a cluster refuses a script whose keys do not), and budgets spread over the nodes.

use std::collections::BTreeMap;

use prompt_config::state::budget::{ALERT_THRESHOLDS, ReserveOutcome};
use prompt_config::state::rate::{RateDecision, RateLimit};

use crate::budget::{spend_concurrently, window};
use crate::support::redis_server::RedisCluster;

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn eight_threads_on_a_cluster_never_spend_past_the_limit_and_each_alert_fires_once() {
    let cluster = RedisCluster::start();
    let state = cluster.state();
    let window = window("feature:summarize");
    let claims = spend_concurrently(&state, &window, 1_000_000, 10_000, 8, 20, |_| 10_000);
    let totals = state.totals(&window).unwrap();
    assert_eq!((totals.spent, totals.reserved), (1_000_000, 0));
    let once: BTreeMap<u8, usize> = ALERT_THRESHOLDS.iter().map(|&p| (p, 1)).collect();
    assert_eq!(claims, once);
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn budgets_of_different_scopes_spread_over_the_masters() {
    let cluster = RedisCluster::start();
    let state = cluster.state();
    for scope in 0..24 {
        let outcome = state
            .reserve(
                &window(&format!("feature:{scope}")),
                Some(100),
                1,
                0,
                std::time::Duration::from_secs(60),
            )
            .unwrap();
        assert!(matches!(outcome, ReserveOutcome::Reserved { .. }));
    }
    let used = cluster
        .nodes()
        .iter()
        .filter(|node| node.cli(&["dbsize"]).trim() != "0")
        .count();
    assert!(used >= 2, "24 budgets all landed on one master");
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_shared_rate_limit_works_on_a_cluster() {
    let cluster = RedisCluster::start();
    let state = cluster.state();
    let limit = RateLimit::new("provider:openai:rpm", 5, std::time::Duration::from_secs(60));
    let allowed = (0..8)
        .filter(|_| state.acquire(&limit, 1, 1_000).unwrap() == RateDecision::Allowed)
        .count();
    assert_eq!(allowed, 5);
}
