//! A provider's RPM limit shared by OS processes through `Engine::complete` (issue 11): the
//! processes together get the limit, not the limit each.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::support::fleet;
use crate::support::one_feature::asking;
use crate::support::redis_server::{PATIENT, RedisServer};
use crate::support::temp_dir::TempDir;

/// 20 calls a second: a steady minute admits 1200, plus a burst of a tenth after idling.
const RPM: u64 = 1_200;
const PROCESSES: usize = 4;
const THREADS: usize = 2;
/// How long the children call, from a common start.
const RUN: Duration = Duration::from_secs(8);
/// Past the burst: the window measured starts this long after the common start.
const SETTLE: Duration = Duration::from_secs(2);

const CHILD_URL: &str = "STATE_FLEET_RATE_URL";
const CHILD_ROOT: &str = "STATE_FLEET_RATE_ROOT";
const CHILD_OUT: &str = "STATE_FLEET_RATE_OUT";
const CHILD_START: &str = "STATE_FLEET_RATE_START_MS";

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn four_processes_share_one_rpm_limit_within_ten_percent() {
    let server = RedisServer::start();
    let dir = TempDir::new("state_fleet_rate");
    let config = fleet::config(
        None,
        Some(json!({"requests_per_minute": RPM, "max_wait_ms": 0})),
    );
    // A common start, late enough for every child to have opened its engine.
    let start = unix_ms() + 2_000;
    let children: Vec<_> = (0..PROCESSES)
        .map(|child| {
            let out = dir.path().join(format!("accepted-{child}"));
            let process = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "fleet_rate::child_calls_as_fast_as_it_may",
                    "--include-ignored",
                    "--test-threads=1",
                ])
                .env(CHILD_URL, server.url())
                .env(CHILD_ROOT, &config.root)
                .env(CHILD_OUT, &out)
                .env(CHILD_START, start.to_string())
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            (process, out)
        })
        .collect();
    let mut accepted: Vec<u64> = Vec::new();
    for (mut process, out) in children {
        assert!(process.wait().unwrap().success(), "a child process failed");
        let text = std::fs::read_to_string(out).unwrap();
        accepted.extend(text.lines().map(|line| line.parse::<u64>().unwrap()));
    }
    let from = start + SETTLE.as_millis() as u64;
    let to = start + RUN.as_millis() as u64;
    let in_window = accepted.iter().filter(|&&at| at >= from && at < to).count();
    let per_minute = in_window as f64 * 60_000.0 / (to - from) as f64;
    let limit = RPM as f64;
    assert!(
        (per_minute - limit).abs() <= 0.1 * limit,
        "{in_window} calls in {} ms: {per_minute:.0} per minute against a shared {RPM}",
        to - from
    );
    // The whole run: never more than the steady rate plus one burst.
    let total = accepted
        .iter()
        .filter(|&&at| at >= start && at < to)
        .count() as f64;
    let ceiling = limit * RUN.as_secs_f64() / 60.0 + limit / 10.0;
    assert!(total <= ceiling * 1.1, "{total} calls > {ceiling}");
}

#[test]
#[ignore = "runs as a child process of the shared RPM test"]
fn child_calls_as_fast_as_it_may() {
    let (Ok(url), Ok(root), Ok(out), Ok(start)) = (
        std::env::var(CHILD_URL),
        std::env::var(CHILD_ROOT),
        std::env::var(CHILD_OUT),
        std::env::var(CHILD_START),
    ) else {
        return;
    };
    let start: u64 = start.parse().unwrap();
    let dir = TempDir::new("state_fleet_rate_child");
    let engine = fleet::engine(
        Path::new(&root),
        fleet::redis(&url, PATIENT),
        &dir.path().join("telemetry.jsonl"),
    );
    let end = start + RUN.as_millis() as u64;
    std::thread::sleep(Duration::from_millis(start.saturating_sub(unix_ms())));
    let accepted = parking_lot::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                while unix_ms() < end {
                    if engine.complete("ask", &asking("x")).is_ok() {
                        accepted.lock().push(unix_ms());
                    } else {
                        // Refused by the shared limit: try again shortly (open the door for
                        // the other processes' threads too).
                        std::thread::sleep(Duration::from_millis(3));
                    }
                }
            });
        }
    });
    let lines: String = accepted
        .into_inner()
        .iter()
        .map(|at| format!("{at}\n"))
        .collect();
    std::fs::write(out, lines).unwrap();
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn two_engines_share_one_tpm_limit_where_each_alone_would_admit_every_call() {
    let server = RedisServer::start();
    let dir = TempDir::new("state_fleet_tpm");
    // Each call takes about 107 tokens (its prompt and max_tokens 100) and gives back what it
    // did not use (it uses about 67): the burst of 1,000 admits about 15 at once.
    let config = fleet::config(
        None,
        Some(json!({"tokens_per_minute": 10_000, "max_wait_ms": 0})),
    );
    let engines: Vec<_> = (0..2)
        .map(|engine| {
            fleet::engine(
                &config.root,
                fleet::redis(&server.url(), PATIENT),
                &dir.path().join(format!("telemetry-{engine}.jsonl")),
            )
        })
        .collect();
    let accepted = (0..60)
        .filter(|attempt| engines[attempt % 2].complete("ask", &asking("x")).is_ok())
        .count();
    // 10,000 tokens a minute refill about 2.5 calls a second on top of the burst.
    assert!(
        (10..=25).contains(&accepted),
        "{accepted} of 60 calls accepted by a shared TPM of 10,000"
    );
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn while_redis_is_down_each_process_enforces_the_rpm_on_its_own_buckets() {
    let mut server = RedisServer::start();
    let dir = TempDir::new("state_fleet_rpm_local");
    let config = fleet::config(
        None,
        Some(json!({"requests_per_minute": 5, "max_wait_ms": 0})),
    );
    let engine = fleet::engine(
        &config.root,
        fleet::redis(&server.url(), Duration::from_millis(100)),
        &dir.path().join("telemetry.jsonl"),
    );
    server.kill();
    let accepted = (0..10)
        .filter(|_| engine.complete("ask", &asking("x")).is_ok())
        .count();
    assert_eq!(accepted, 5, "the local bucket holds a minute's 5 requests");
    assert_eq!(engine.metrics().state_degraded, 1);
}
