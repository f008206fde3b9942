//! An engine on the fleet's shared state (issue 11) for tests that go through
//! `Engine::complete`: the one-feature configuration (feature `ask`, `one_feature.rs`) on the
//! built-in mock provider `mock`/`m` with no latency, a budget and rate limit the test chooses,
//! Redis or memory state, and a telemetry file whose events the test reads back.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use prompt_config::state::budget::{BudgetWindow, Period};
use prompt_config::state::{RedisSettings, StateBackend};
use prompt_config::{Engine, EngineOptions};
use serde_json::{Value, json};

use super::one_feature::OneFeature;
use super::redis_server::RedisServer;

/// The mock's prices: $1 per million input tokens, $2 per million output tokens.
const PRICES: (f64, f64) = (1.0, 2.0);
/// `max_tokens` of the feature's model: the worst case reserved per call is about
/// (7 + 100 x 2) / 1e6 = $0.000207; a mock answer costs about $0.00013.
pub const MAX_TOKENS: u32 = 100;
/// An upper bound of the worst case reserved by one call of [`asking_x`](super::one_feature::asking).
pub const WORST_CASE_USD: f64 = 0.000_25;

/// `providers.json` with the mock provider `mock` (model `m`) and its `rate_limit`, if any.
pub fn providers(rate_limit: Option<Value>) -> Value {
    let mut mock = json!({
        "kind": "mock",
        "models": {"m": {"input_per_million": PRICES.0, "output_per_million": PRICES.1}},
        "retry": {"max_attempts": 1},
        "mock": {"latency_ms": 0}
    });
    if let Some(rate_limit) = rate_limit {
        mock["rate_limit"] = rate_limit;
    }
    json!({"client": {"deadline_ms": 10000}, "providers": {"mock": mock}})
}

/// The one-feature configuration calling `mock`/`m`, with `budget` as the feature's own budget.
pub fn config(budget: Option<Value>, rate_limit: Option<Value>) -> OneFeature {
    let one = OneFeature::new(&providers(rate_limit), "mock", "m");
    let path = one.root.join("config/features/ask.json");
    let mut feature: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    feature["model"]["parameters"] = json!({"max_tokens": MAX_TOKENS});
    if let Some(budget) = budget {
        feature["budget"] = budget;
    }
    std::fs::write(&path, feature.to_string()).unwrap();
    one
}

/// Redis settings for `url` (one server, or comma-separated cluster seeds) with `timeout` for
/// connecting and for each command.
pub fn redis(url: &str, timeout: Duration) -> StateBackend {
    StateBackend::Redis(
        RedisSettings::new(url)
            .unwrap()
            .with_timeouts(timeout, timeout),
    )
}

/// Options for the configuration at `root` on `state`, logging telemetry to `telemetry`.
pub fn options(root: &Path, state: StateBackend, telemetry: &Path) -> EngineOptions {
    EngineOptions::new(root.join("config"), root.join("prompts"))
        .with_state(state)
        .with_telemetry(telemetry)
}

/// Opens an engine for the configuration at `root`.
pub fn engine(root: &Path, state: StateBackend, telemetry: &Path) -> Engine {
    Engine::open(options(root, state, telemetry)).unwrap()
}

/// Every line of the telemetry file(s) at `path` (rotated files are not read), as JSON.
pub fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The events named `name` in `events`.
pub fn named<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|event| event["event"] == name)
        .collect()
}

/// A file in `dir` named `name`.
pub fn file(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// Polls `done` every 20 ms until it holds, failing after 20 s (Redis restarts and reconnect
/// threads on a loaded machine).
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The feature's day budget on Redis: settled spend in nano-dollars.
pub fn fleet_spent(server: &RedisServer) -> u64 {
    let window = BudgetWindow::new("feature:ask", Period::Day, chrono::Utc::now());
    server.state().totals(&window).unwrap().spent
}
