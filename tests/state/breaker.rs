//! Breaker knowledge shared by the fleet (issue 11): the Redis primitives (`scripts`), and
//! engines sharing one Redis through the mock provider: an opening in one OS process makes
//! another skip the provider within about a second, exactly one probe crosses the fleet at
//! half-open, and Redis down leaves every breaker local.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use prompt_config::client::{AttemptOutcome, BreakerState, ClientEvent, Completion, EventSink};
use prompt_config::state::breaker::FleetOpen;
use prompt_config::state::{RedisSettings, RedisState, StateBackend};
use prompt_config::{Context, Engine, EngineOptions};
use serde_json::{Value, json};

use crate::support::redis_server::{PATIENT, RedisServer};
use crate::support::temp_dir::TempDir;

mod scripts;

/// Collects every breaker transition as `(breaker, to, reason)`.
#[derive(Default)]
struct Transitions(Mutex<Vec<(String, BreakerState, String)>>);

impl EventSink for Transitions {
    fn emit(&self, _request_id: &str, event: &ClientEvent) {
        if let ClientEvent::CircuitTransition(transition) = event {
            self.0.lock().push((
                transition.breaker.clone(),
                transition.to,
                transition.reason.clone(),
            ));
        }
    }
}

impl Transitions {
    fn reasons(&self) -> Vec<String> {
        self.0
            .lock()
            .iter()
            .map(|(_, _, reason)| reason.clone())
            .collect()
    }
}

const TEMPLATE: &str = "Summarise: {{ text }}";

/// A configuration: feature `summary` calls `openai/gpt-test` (opens at its first failure, for
/// `open_ms`; the mock answers after `openai_latency_ms`), then `anthropic/claude-test`.
fn write_config(root: &Path, open_ms: u64, openai_latency_ms: u64) {
    let provider = |kind: &str, model: &str, latency_ms: u64| {
        json!({
            "kind": kind,
            "timeout_ms": 5000,
            "retry": {"max_attempts": 1},
            "circuit_breaker": {"consecutive_failures": 1, "minimum_calls": 100, "open_ms": open_ms, "max_open_ms": open_ms * 4},
            "mock": {"latency_ms": latency_ms},
            "models": {model: {"input_per_million": 1.0, "output_per_million": 2.0}}
        })
    };
    let providers = json!({
        "client": {"deadline_ms": 20000},
        "providers": {
            "openai": provider("openai", "gpt-test", openai_latency_ms),
            "anthropic": provider("anthropic", "claude-test", 0)
        }
    });
    let feature = json!({
        "feature": "summary",
        "active_version": "1.0.0",
        "model": {"provider": "openai", "name": "gpt-test"},
        "fallbacks": [{"provider": "anthropic", "name": "claude-test"}],
        "versions": {"1.0.0": {
            "status": "released",
            "sha256": {"user.j2": prompt_config::prompt::sha256_hex(TEMPLATE.as_bytes())},
            "messages": [{"role": "user", "template": "user.j2"}],
            "variables": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
        }}
    });
    fs::create_dir_all(root.join("config/features")).unwrap();
    fs::create_dir_all(root.join("prompts/summary/1.0.0")).unwrap();
    fs::write(root.join("config/providers.json"), providers.to_string()).unwrap();
    fs::write(
        root.join("config/features/summary.json"),
        feature.to_string(),
    )
    .unwrap();
    fs::write(root.join("prompts/summary/1.0.0/user.j2"), TEMPLATE).unwrap();
}

/// The Redis keys a mock engine uses: mock mode keeps its fleet state under `PREFIX:mock`.
fn mock_state(server: &RedisServer) -> RedisState {
    let settings = RedisSettings::new(&server.url())
        .unwrap()
        .with_timeouts(PATIENT, PATIENT)
        .with_key_prefix("prompt_config:mock")
        .unwrap();
    RedisState::new(settings).unwrap()
}

/// A mock engine on `root`'s configuration with its fleet state on `url`, reporting to `sink`.
fn engine(root: &Path, url: &str, sink: Arc<Transitions>) -> Engine {
    let settings = RedisSettings::new(url)
        .unwrap()
        .with_timeouts(PATIENT, PATIENT);
    let options = EngineOptions::new(root.join("config"), root.join("prompts"))
        .with_mock(true)
        .with_state(StateBackend::Redis(settings))
        .with_event_sink(sink as Arc<dyn EventSink>);
    Engine::open(options).unwrap()
}

fn context() -> Context {
    Context::new("user-1").variable("text", "The quick brown fox.")
}

/// Each attempt as `provider outcome`.
fn attempts(completion: &Completion) -> Vec<String> {
    completion
        .attempts
        .iter()
        .map(|attempt| format!("{} {:?}", attempt.provider, attempt.outcome))
        .collect()
}

fn openai_calls(engine: &Engine) -> u64 {
    engine.mock_provider("openai").unwrap().calls()
}

fn wall_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Set in the child process: the Redis URL, the configuration root and the files it writes.
const CHILD_URL: &str = "STATE_BREAKER_CHILD_URL";
const CHILD_ROOT: &str = "STATE_BREAKER_CHILD_ROOT";
const CHILD_READY: &str = "STATE_BREAKER_CHILD_READY";
const CHILD_REPORT: &str = "STATE_BREAKER_CHILD_REPORT";

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_breaker_opened_in_one_process_makes_another_skip_the_provider_within_about_a_second() {
    let server = RedisServer::start();
    let dir = TempDir::new("state_breaker_processes");
    let root = dir.path().join("app");
    write_config(&root, 30_000, 0);
    let (ready, report) = (dir.path().join("ready"), dir.path().join("report.json"));
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "breaker::child_calls_until_the_fleet_says_the_primary_is_open",
            "--include-ignored",
            "--test-threads=1",
        ])
        .env(CHILD_URL, server.url())
        .env(CHILD_ROOT, &root)
        .env(CHILD_READY, &ready)
        .env(CHILD_REPORT, &report)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let waiting = Instant::now();
    while !ready.exists() {
        assert!(waiting.elapsed() < Duration::from_secs(30), "no child");
        std::thread::sleep(Duration::from_millis(10));
    }

    // Process A: the primary fails, its breaker opens (and is published).
    let sink = Arc::new(Transitions::default());
    let a = engine(&root, &server.url(), Arc::clone(&sink));
    a.mock_provider("openai").unwrap().start_outage(503);
    let opened_at_ms = wall_ms();
    let completion = a.complete("summary", &context()).unwrap();
    assert_eq!(
        attempts(&completion),
        ["openai Failed", "anthropic Success"]
    );
    assert_eq!(sink.reasons(), ["consecutive_failures"]);

    assert!(child.wait().unwrap().success(), "the child process failed");
    let report: Value = serde_json::from_str(&fs::read_to_string(&report).unwrap()).unwrap();
    let skipped_at_ms = report["skipped_at_ms"]
        .as_i64()
        .expect("process B never skipped the primary");
    let after = skipped_at_ms - opened_at_ms;
    // One lookup interval (1 s) plus B's 20 ms between calls; the rest is slack for a loaded
    // shared test machine.
    assert!(after <= 2_000, "B skipped {after} ms after A opened");
    assert_eq!(
        report["attempts"],
        json!(["openai SkippedCircuitOpen", "anthropic Success"])
    );
    assert_eq!(
        report["openai_calls_during_skip"], 0,
        "the skip never reached the provider"
    );
    assert_eq!(report["reasons"], json!(["fleet_open"]));
}

#[test]
#[ignore = "runs as a child process of the two-process breaker test"]
fn child_calls_until_the_fleet_says_the_primary_is_open() {
    let (Ok(url), Ok(root), Ok(ready), Ok(report)) = (
        std::env::var(CHILD_URL),
        std::env::var(CHILD_ROOT),
        std::env::var(CHILD_READY),
        std::env::var(CHILD_REPORT),
    ) else {
        return;
    };
    let sink = Arc::new(Transitions::default());
    let b = engine(Path::new(&root), &url, Arc::clone(&sink));
    let first = b.complete("summary", &context()).unwrap();
    assert_eq!(attempts(&first), ["openai Success"], "healthy in B");
    fs::write(&ready, "").unwrap();
    let started = Instant::now();
    let mut result = json!({"skipped_at_ms": null});
    while started.elapsed() < Duration::from_secs(20) {
        let before = openai_calls(&b);
        let completion = b.complete("summary", &context()).unwrap();
        let at = wall_ms();
        if completion.attempts[0].outcome == AttemptOutcome::SkippedCircuitOpen {
            result = json!({
                "skipped_at_ms": at,
                "attempts": attempts(&completion),
                "openai_calls_during_skip": openai_calls(&b) - before,
                "reasons": sink.reasons(),
            });
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    fs::write(report, result.to_string()).unwrap();
}

/// `count` engines sharing `server`, on one configuration under `root`.
fn fleet(root: &Path, server: &RedisServer, count: usize) -> Vec<(Engine, Arc<Transitions>)> {
    (0..count)
        .map(|_| {
            let sink = Arc::new(Transitions::default());
            (engine(root, &server.url(), Arc::clone(&sink)), sink)
        })
        .collect()
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn exactly_one_probe_crosses_the_fleet_at_half_open() {
    let server = RedisServer::start();
    let dir = TempDir::new("state_breaker_probe");
    let root: PathBuf = dir.path().join("app");
    // Open 1 s; the primary answers after 800 ms, so every racer decides while the probe runs
    // (even on a loaded machine).
    write_config(&root, 1_000, 800);
    let engines = fleet(&root, &server, 4);
    let (opener, _) = &engines[0];
    opener.mock_provider("openai").unwrap().fail_next(1, 503);
    let tripped = opener.complete("summary", &context()).unwrap();
    assert_eq!(attempts(&tripped), ["openai Failed", "anthropic Success"]);
    for (other, _) in &engines[1..] {
        let skipped = other.complete("summary", &context()).unwrap();
        assert_eq!(
            attempts(&skipped),
            ["openai SkippedCircuitOpen", "anthropic Success"]
        );
    }
    std::thread::sleep(Duration::from_millis(1_100));

    let before: u64 = engines.iter().map(|(engine, _)| openai_calls(engine)).sum();
    let barrier = Barrier::new(engines.len() * 4);
    let answered_by = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for (engine, _) in &engines {
            for _ in 0..4 {
                let (barrier, answered_by) = (&barrier, &answered_by);
                scope.spawn(move || {
                    barrier.wait();
                    let completion = engine.complete("summary", &context()).unwrap();
                    answered_by.lock().push(completion.provider);
                });
            }
        }
    });
    let after: u64 = engines.iter().map(|(engine, _)| openai_calls(engine)).sum();
    assert_eq!(after - before, 1, "one probe for the whole fleet");
    let answered_by = answered_by.into_inner();
    assert_eq!(answered_by.len(), 16, "no call failed");
    assert_eq!(
        answered_by.iter().filter(|p| *p == "openai").count(),
        1,
        "{answered_by:?}"
    );

    // The probe succeeded: every engine is back on the primary by its next lookup.
    std::thread::sleep(Duration::from_millis(1_100));
    for (engine, _) in &engines {
        let completion = engine.complete("summary", &context()).unwrap();
        assert_eq!(attempts(&completion), ["openai Success"]);
    }
    let reasons: Vec<Vec<String>> = engines[1..]
        .iter()
        .map(|(_, sink)| sink.reasons())
        .collect();
    for reasons in reasons {
        assert_eq!(reasons.first().map(String::as_str), Some("fleet_open"));
        assert!(reasons.iter().any(|r| r == "fleet_closed"), "{reasons:?}");
    }
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn with_redis_down_breakers_stay_local_and_no_call_fails() {
    let mut server = RedisServer::start();
    let dir = TempDir::new("state_breaker_down");
    let root = dir.path().join("app");
    write_config(&root, 30_000, 0);
    let engines = fleet(&root, &server, 2);
    let ((a, a_sink), (b, _)) = (&engines[0], &engines[1]);
    server.kill();
    a.mock_provider("openai").unwrap().start_outage(503);
    for _ in 0..3 {
        let completion = a.complete("summary", &context()).unwrap();
        assert_eq!(completion.provider, "anthropic");
    }
    assert_eq!(a_sink.reasons(), ["consecutive_failures"], "opened locally");
    for _ in 0..3 {
        let completion = b.complete("summary", &context()).unwrap();
        assert_eq!(
            attempts(&completion),
            ["openai Success"],
            "B knows nothing of A's breaker and decides alone"
        );
    }
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn with_redis_down_a_half_open_breaker_probes_without_a_lease() {
    let mut server = RedisServer::start();
    let dir = TempDir::new("state_breaker_down_probe");
    let root = dir.path().join("app");
    write_config(&root, 300, 0);
    let sink = Arc::new(Transitions::default());
    let a = engine(&root, &server.url(), Arc::clone(&sink));
    a.mock_provider("openai").unwrap().fail_next(1, 503);
    a.complete("summary", &context()).unwrap();
    server.kill();
    std::thread::sleep(Duration::from_millis(350));
    let probe = a.complete("summary", &context()).unwrap();
    assert_eq!(attempts(&probe), ["openai Success"]);
    assert_eq!(
        sink.reasons(),
        [
            "consecutive_failures",
            "open_timeout_elapsed",
            "probe_succeeded"
        ]
    );
}

/// A fleet entry published straight on Redis (by "another process") for the test's breaker.
fn publish_elsewhere(state: &RedisState, breaker: &str, open_for_ms: u64) {
    let entry = FleetOpen {
        until_ms: wall_ms() + open_for_ms as i64,
        open_for_ms,
    };
    state
        .breaker_publish(breaker, entry, Duration::from_millis(open_for_ms * 2), None)
        .unwrap();
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn an_engine_starting_while_the_fleet_has_a_breaker_open_skips_it_from_its_first_call() {
    let server = RedisServer::start();
    let dir = TempDir::new("state_breaker_start");
    let root = dir.path().join("app");
    write_config(&root, 30_000, 0);
    publish_elsewhere(&mock_state(&server), "openai", 30_000);
    let sink = Arc::new(Transitions::default());
    let b = engine(&root, &server.url(), Arc::clone(&sink));
    let completion = b.complete("summary", &context()).unwrap();
    assert_eq!(
        attempts(&completion),
        ["openai SkippedCircuitOpen", "anthropic Success"]
    );
    assert_eq!(openai_calls(&b), 0);
    assert_eq!(
        b.breaker_states(),
        [
            ("anthropic".to_string(), BreakerState::Closed),
            ("openai".to_string(), BreakerState::Closed)
        ],
        "the local breaker keeps its own state"
    );
    assert_eq!(
        completion.attempts[0].breaker_state,
        BreakerState::Open,
        "the attempt shows what the call saw"
    );
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn a_per_model_breaker_open_for_the_fleet_skips_only_that_model() {
    let server = RedisServer::start();
    let dir = TempDir::new("state_breaker_per_model");
    let root = dir.path().join("app");
    write_config(&root, 30_000, 0);
    let path = root.join("config/providers.json");
    let mut providers: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    providers["providers"]["openai"]["circuit_breaker"]["per_model"] = json!(true);
    fs::write(&path, providers.to_string()).unwrap();
    publish_elsewhere(&mock_state(&server), "openai/gpt-other", 30_000);
    let b = engine(&root, &server.url(), Arc::new(Transitions::default()));
    let untouched = b.complete("summary", &context()).unwrap();
    assert_eq!(
        attempts(&untouched),
        ["openai Success"],
        "another model's breaker"
    );
    publish_elsewhere(&mock_state(&server), "openai/gpt-test", 30_000);
    std::thread::sleep(Duration::from_millis(1_050));
    let skipped = b.complete("summary", &context()).unwrap();
    assert_eq!(
        attempts(&skipped),
        ["openai SkippedCircuitOpen", "anthropic Success"]
    );
}

#[test]
#[cfg_attr(
    pc_missing_redis,
    ignore = "needs redis-server (see the notice from build.rs)"
)]
fn after_redis_comes_back_openings_are_shared_again() {
    let mut server = RedisServer::start();
    let dir = TempDir::new("state_breaker_restored");
    let root = dir.path().join("app");
    write_config(&root, 30_000, 0);
    let engines = fleet(&root, &server, 2);
    let ((a, _), (b, _)) = (&engines[0], &engines[1]);
    server.kill();
    // Both notice the outage (and degrade) on their first call; neither call fails.
    assert_eq!(
        a.complete("summary", &context()).unwrap().provider,
        "openai"
    );
    assert_eq!(
        b.complete("summary", &context()).unwrap().provider,
        "openai"
    );
    server.restart();
    // The reconnect thread pings every 500 ms; B's cached lookup is a second old at most.
    std::thread::sleep(Duration::from_millis(1_200));
    a.mock_provider("openai").unwrap().start_outage(503);
    let tripped = a.complete("summary", &context()).unwrap();
    assert_eq!(attempts(&tripped), ["openai Failed", "anthropic Success"]);
    let started = Instant::now();
    loop {
        let completion = b.complete("summary", &context()).unwrap();
        if attempts(&completion) == ["openai SkippedCircuitOpen", "anthropic Success"] {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "B never saw A's opening"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
