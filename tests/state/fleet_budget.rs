//! Budgets through `Engine::complete` on the fleet's shared state (issue 11): OS processes of
//! many threads spend against one `block` budget on one Redis server and on a 3-master
//! cluster, and the spend bound and the once-per-fleet alerts hold; with Redis, opening an
//! engine no longer rebuilds spend from the telemetry log (with memory it still does).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use prompt_config::Error;
use prompt_config::state::StateBackend;
use serde_json::json;

use crate::support::fleet::{self, WORST_CASE_USD};
use crate::support::one_feature::asking;
use crate::support::redis_server::{PATIENT, RedisCluster, RedisServer};
use crate::support::temp_dir::TempDir;

/// The feature's daily `block` budget in the multi-process tests: about 150 mock answers.
const LIMIT_USD: f64 = 0.02;
const PROCESSES: usize = 4;
const THREADS: usize = 8;

/// Set in a re-executed child: the Redis URL(s), the configuration root, the telemetry file.
const CHILD_URL: &str = "STATE_FLEET_BUDGET_URL";
const CHILD_ROOT: &str = "STATE_FLEET_BUDGET_ROOT";
const CHILD_LOG: &str = "STATE_FLEET_BUDGET_LOG";

/// Runs [`PROCESSES`] children of [`THREADS`] threads spending through `complete()` against
/// one budget on `url`, then checks the bound and the alerts from their telemetry files.
fn processes_share_one_block_budget(url: &str) {
    let dir = TempDir::new("state_fleet_budget");
    let config = fleet::config(
        Some(json!({"daily_usd": LIMIT_USD, "policy": "block", "while_degraded": "block"})),
        None,
    );
    let children: Vec<_> = (0..PROCESSES)
        .map(|child| {
            let log = dir.path().join(format!("telemetry-{child}.jsonl"));
            let process = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "fleet_budget::child_spends_through_complete",
                    "--include-ignored",
                    "--test-threads=1",
                ])
                .env(CHILD_URL, url)
                .env(CHILD_ROOT, &config.root)
                .env(CHILD_LOG, &log)
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            (process, log)
        })
        .collect();
    let mut alerts: BTreeMap<u64, usize> = BTreeMap::new();
    let mut spent = 0.0;
    let mut successes = 0;
    for (mut process, log) in children {
        assert!(process.wait().unwrap().success(), "a child process failed");
        let events = fleet::events(&log);
        for alert in fleet::named(&events, "budget.alert") {
            assert_eq!(alert["prompt_config.budget.scope"], "feature:ask");
            let percent = alert["prompt_config.budget.threshold_percent"]
                .as_u64()
                .unwrap();
            *alerts.entry(percent).or_insert(0) += 1;
        }
        for request in fleet::named(&events, "llm.request") {
            if request["prompt_config.outcome"] == "success" {
                spent += request["prompt_config.cost_usd"].as_f64().unwrap();
                successes += 1;
            }
        }
    }
    let in_flight = (PROCESSES * THREADS) as f64 * WORST_CASE_USD;
    assert!(
        spent <= LIMIT_USD + in_flight,
        "{successes} calls spent ${spent} > ${LIMIT_USD} + ${in_flight} in flight"
    );
    // Reservations are upper bounds here, so the limit itself holds.
    assert!(spent <= LIMIT_USD + 1e-9, "spent ${spent}");
    assert!(
        spent > LIMIT_USD - 2.0 * WORST_CASE_USD,
        "the budget was used up: ${spent}"
    );
    let once: BTreeMap<u64, usize> = [80, 90, 95, 100].into_iter().map(|p| (p, 1)).collect();
    assert_eq!(alerts, once, "alerts per threshold across the processes");
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn four_processes_of_eight_threads_spend_through_complete_within_one_block_budget_and_alert_once() {
    let server = RedisServer::start();
    processes_share_one_block_budget(&server.url());
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn the_fleet_budget_holds_on_a_three_master_cluster() {
    let cluster = RedisCluster::start();
    processes_share_one_block_budget(&cluster.urls().join(","));
}

#[test]
#[ignore = "runs as a child process of the multi-process budget tests"]
fn child_spends_through_complete() {
    let (Ok(url), Ok(root), Ok(log)) = (
        std::env::var(CHILD_URL),
        std::env::var(CHILD_ROOT),
        std::env::var(CHILD_LOG),
    ) else {
        return;
    };
    let engine = fleet::engine(Path::new(&root), fleet::redis(&url, PATIENT), log.as_ref());
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let engine = &engine;
            scope.spawn(move || {
                let question = format!("t{thread}");
                loop {
                    match engine.complete("ask", &asking(&question)) {
                        Ok(_) => {}
                        Err(Error::Complete(error)) if error.kind() == "budget_exceeded" => {
                            // A refusal may only mean others hold the rest in flight: stop
                            // once what is settled leaves no room for one more call.
                            let status = engine.budget_status();
                            let day = status.iter().find(|row| row.period == "day").unwrap();
                            if day.settled_usd + WORST_CASE_USD > day.limit_usd {
                                return;
                            }
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(other) => panic!("unexpected failure: {other}"),
                    }
                }
            });
        }
    });
    engine.close();
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn with_redis_open_does_not_rebuild_spend_from_the_telemetry_log() {
    let dir = TempDir::new("state_no_rebuild");
    let log = dir.path().join("telemetry.jsonl");
    let config = fleet::config(Some(json!({"daily_usd": 1.0})), None);
    let first = RedisServer::start();
    let engine = fleet::engine(&config.root, fleet::redis(&first.url(), PATIENT), &log);
    for _ in 0..3 {
        engine.complete("ask", &asking("x")).unwrap();
    }
    engine.close();
    drop(engine);
    assert_eq!(fleet::named(&fleet::events(&log), "llm.request").len(), 3);
    // A fresh Redis knows nothing; then it goes away, so the status shows the local ledger.
    let mut second = RedisServer::start();
    let engine = fleet::engine(&config.root, fleet::redis(&second.url(), PATIENT), &log);
    second.kill();
    let status = engine.budget_status();
    assert_eq!(status[0].settled_usd, 0.0, "{status:?}");
}

#[test]
fn with_memory_open_rebuilds_spend_from_the_telemetry_log() {
    let dir = TempDir::new("state_rebuild");
    let log = dir.path().join("telemetry.jsonl");
    let config = fleet::config(Some(json!({"daily_usd": 1.0})), None);
    let engine = fleet::engine(&config.root, StateBackend::Memory, &log);
    let spent: f64 = (0..3)
        .map(|_| engine.complete("ask", &asking("x")).unwrap().cost_usd)
        .sum();
    engine.close();
    drop(engine);
    let engine = fleet::engine(&config.root, StateBackend::Memory, &log);
    let status = engine.budget_status();
    assert!(
        (status[0].settled_usd - spent).abs() < 1e-9,
        "{status:?} vs {spent}"
    );
}
