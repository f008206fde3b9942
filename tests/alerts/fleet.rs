//! Once across the fleet (issue 15): processes sharing one Redis that see the same conditions
//! claim each alert once between them (`SET NX PX` under the keyspace), on one server and on a
//! 3-master cluster; with Redis down the claims fall back to the process (the alert still goes
//! out) and the shared state reports the degradation.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prompt_config::state::{RedisSettings, RedisState, SharedState, StateChange};
use prompt_config::telemetry::alerts::config::Condition;
use prompt_config::telemetry::alerts::dedup::{ClaimKey, Dedup};
use prompt_config::telemetry::alerts::rules::AlertRules;
use prompt_config::telemetry::alerts::{Alert, AlertAction};
use prompt_config::telemetry::event::TelemetryRecord;

use crate::support::alert_records::*;
use crate::support::redis_server::{PATIENT, RedisCluster, RedisServer};
use crate::support::temp_dir::TempDir;

const PROCESSES: usize = 4;
/// Set in a re-executed child: the Redis URL(s) and the file it writes its alerts to.
const CHILD_URL: &str = "ALERTS_FLEET_URL";
const CHILD_OUT: &str = "ALERTS_FLEET_OUT";

/// The rules every process runs.
fn fleet_rules() -> Vec<prompt_config::telemetry::alerts::config::RuleConfig> {
    vec![
        rule(
            "spend",
            Condition::Budget {
                thresholds: None,
                scope: None,
            },
        ),
        rule("down", Condition::BreakerOpen { breaker: None }),
        rule(
            "errors",
            Condition::ErrorRate {
                feature: None,
                window_seconds: 300,
                above: 0.5,
                min_requests: 5,
            },
        ),
        rule("eval", Condition::EvaluationFailed { feature: None }),
    ]
}

/// What every process sees: a budget threshold, a breaker opening and closing, failing
/// traffic, a failed evaluation run. 5 triggers and 1 resolve.
fn fleet_records() -> Vec<TelemetryRecord> {
    let mut records = vec![
        budget_alert("overall", "2026-12-01", 90, 9.0, 10.0),
        transition("openai", "closed", "open", at(1.0)),
        transition("openai", "half_open", "closed", at(40.0)),
        eval_run("run_7", "ask", "v3", false),
    ];
    records.extend((0..6).map(|i| failed("ask", at(50.0 + f64::from(i)))));
    records
}

/// `rule action scope` of each alert, one a line.
fn lines(alerts: &[Alert]) -> String {
    alerts
        .iter()
        .map(|alert| format!("{} {} {}\n", alert.rule, alert.action.as_str(), alert.scope))
        .collect()
}

fn shared(settings: RedisSettings, changes: Arc<Mutex<Vec<StateChange>>>) -> SharedState {
    let state = RedisState::new(settings).unwrap();
    SharedState::new(
        state,
        Arc::new(move |change: &StateChange| changes.lock().unwrap().push(change.clone())),
    )
}

/// Runs [`PROCESSES`] children on `url` and returns every alert line they delivered.
fn processes_claim(url: &str) -> Vec<String> {
    let dir = TempDir::new("alerts_fleet");
    let children: Vec<_> = (0..PROCESSES)
        .map(|child| {
            let out = dir.path().join(format!("alerts-{child}.txt"));
            let process = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "fleet::child_observes_the_fleet_records",
                    "--include-ignored",
                    "--test-threads=1",
                ])
                .env(CHILD_URL, url)
                .env(CHILD_OUT, &out)
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            (process, out)
        })
        .collect();
    let mut delivered = Vec::new();
    for (mut process, out) in children {
        assert!(process.wait().unwrap().success(), "a child process failed");
        delivered.extend(
            std::fs::read_to_string(out)
                .unwrap()
                .lines()
                .map(str::to_string),
        );
    }
    delivered.sort();
    delivered
}

fn once_each() -> Vec<String> {
    let mut expected: Vec<String> = [
        "down resolve openai",
        "down trigger openai",
        "errors trigger ask",
        "eval trigger ask@v3",
        "spend trigger overall",
    ]
    .map(str::to_string)
    .to_vec();
    expected.sort();
    expected
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn four_processes_on_one_redis_deliver_each_alert_once() {
    let server = RedisServer::start();
    assert_eq!(processes_claim(&server.url()), once_each());
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn four_processes_on_a_three_master_cluster_deliver_each_alert_once() {
    let cluster = RedisCluster::start();
    assert_eq!(processes_claim(&cluster.urls().join(",")), once_each());
}

#[test]
#[ignore = "runs as a child process of the fleet alert tests"]
fn child_observes_the_fleet_records() {
    let (Ok(url), Ok(out)) = (std::env::var(CHILD_URL), std::env::var(CHILD_OUT)) else {
        return;
    };
    let settings = RedisSettings::new(&url)
        .unwrap()
        .with_cluster(url.contains(','))
        .with_timeouts(PATIENT, PATIENT);
    let changes = Arc::new(Mutex::new(Vec::new()));
    let dedup = Dedup::new(Some(shared(settings, Arc::clone(&changes))));
    let mut rules = AlertRules::new(&config(fleet_rules()), dedup);
    let alerts: Vec<Alert> = fleet_records()
        .iter()
        .flat_map(|record| rules.observe(record))
        .collect();
    assert!(
        changes.lock().unwrap().is_empty(),
        "Redis stayed healthy: {changes:?}"
    );
    std::fs::write(out, lines(&alerts)).unwrap();
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_claim_on_redis_is_won_by_one_handle_and_lapses_after_its_ttl() {
    let server = RedisServer::start();
    let handles: Vec<Dedup> = (0..3)
        .map(|_| {
            let settings = RedisSettings::new(&server.url())
                .unwrap()
                .with_timeouts(PATIENT, PATIENT);
            Dedup::new(Some(shared(settings, Arc::default())))
        })
        .collect();
    let key = ClaimKey {
        rule: "down".into(),
        scope: "open{ai}|x".into(),
        period: "2026-12-01T10:00:00.000Z".into(),
        action: AlertAction::Trigger,
    };
    let ttl = Duration::from_millis(300);
    let won: Vec<bool> = handles.iter().map(|dedup| dedup.claim(&key, ttl)).collect();
    assert_eq!(won, [true, false, false]);
    let resolve = ClaimKey {
        action: AlertAction::Resolve,
        ..key.clone()
    };
    assert!(
        handles[1].claim(&resolve, ttl),
        "a resolve is claimed apart from its trigger"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(handles[2].claim(&key, ttl), "the claim lapsed");
}

#[test]
fn with_redis_down_claims_fall_back_to_the_process_and_the_degradation_is_reported() {
    // Nothing listens on port 1: connecting is refused at once.
    let settings = RedisSettings::new("redis://127.0.0.1:1/")
        .unwrap()
        .with_timeouts(Duration::from_millis(200), Duration::from_millis(200));
    let changes = Arc::new(Mutex::new(Vec::new()));
    let mut rules = AlertRules::new(
        &config(fleet_rules()),
        Dedup::new(Some(shared(settings, Arc::clone(&changes)))),
    );
    let alerts: Vec<Alert> = fleet_records()
        .iter()
        .flat_map(|record| rules.observe(record))
        .collect();
    let mut delivered: Vec<String> = lines(&alerts).lines().map(str::to_string).collect();
    delivered.sort();
    assert_eq!(
        delivered,
        once_each(),
        "every alert still goes out, once in this process"
    );
    let changes = changes.lock().unwrap();
    assert!(
        matches!(changes.first(), Some(StateChange::Degraded { .. })),
        "degradation reported: {changes:?}"
    );
}
