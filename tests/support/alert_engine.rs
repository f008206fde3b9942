//! An engine with alerts on: a fast-mock copy of the shipped configuration whose `openai`
//! breaker opens after 2 consecutive failures for 150 ms (one attempt per call, so a call
//! fails over at once), a `config/alerts.json` with one `breaker_open` rule on `openai` sending
//! to the channels a test gives, and a telemetry log. Opening and closing the breaker through
//! the mock provider's fault script makes the rules trigger and resolve an alert.

#![allow(dead_code)]

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use prompt_config::Engine;
use serde_json::{Value, json};

use super::eval::fast_mock_fixture;
use super::fixture::{Fixture, context};

/// How long the `openai` breaker stays open.
pub const OPEN_MS: u64 = 150;

/// Sets an environment variable the test's alerts.json names. Each test uses variables of its
/// own, so tests running at once never see each other's values.
pub fn set_env(name: &str, value: &str) {
    // SAFETY: the variable is unique to the calling test; other threads of this binary read
    // the environment only through `std::env` (engines reading keys and alert secrets), which
    // takes the lock `set_var` takes, and nothing through libc (servers are IP literals).
    unsafe { std::env::set_var(name, value) };
}

/// A fast-mock fixture with alerts: `channels` as alerts.json's channels, and one rule,
/// `openai-down` (`breaker_open` on `openai`, critical) sending to every one of them.
pub fn breaker_alerts_fixture(channels: &Value) -> Fixture {
    let fixture = fast_mock_fixture();
    let providers = fixture.config_dir().join("providers.json");
    fixture.edit_json(&providers, |document| {
        let openai = &mut document["providers"]["openai"];
        openai["retry"]["max_attempts"] = json!(1);
        openai["circuit_breaker"]["consecutive_failures"] = json!(2);
        openai["circuit_breaker"]["open_ms"] = json!(OPEN_MS);
        openai["circuit_breaker"]["max_open_ms"] = json!(OPEN_MS);
    });
    let names: Vec<&String> = channels
        .as_object()
        .expect("channels object")
        .keys()
        .collect();
    let alerts = json!({
        "channels": channels,
        "rules": [{"name": "openai-down", "type": "breaker_open", "breaker": "openai",
                   "severity": "critical", "channels": names}],
    });
    fs::write(
        fixture.config_dir().join("alerts.json"),
        serde_json::to_string_pretty(&alerts).unwrap(),
    )
    .unwrap();
    fixture
}

/// The fixture's mock-mode engine, logging to `log`.
pub fn open_engine(fixture: &Fixture, log: &PathBuf) -> Engine {
    Engine::open(fixture.options().with_mock(true).with_telemetry(log))
        .expect("the fixture's configuration opens")
}

/// Fails `openai` until its breaker opens (the calls fail over and succeed).
pub fn open_breaker(engine: &Engine) {
    let openai = engine.mock_provider("openai").expect("openai is mocked");
    openai.start_outage(500);
    for _ in 0..4 {
        let _ = engine.complete("career_path_navigator", &context("u1"));
    }
    openai.end_outage();
}

/// Waits out the open period, then calls until a probe closes the breaker (at most 5 s).
pub fn close_breaker(engine: &Engine) {
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(OPEN_MS + 20));
        let _ = engine.complete("career_path_navigator", &context("u1"));
        let open = engine
            .breaker_states()
            .iter()
            .any(|(name, state)| name == "openai" && state.as_str() != "closed");
        if !open {
            return;
        }
    }
    panic!("the openai breaker did not close");
}

/// The log's lines with `event`, parsed.
pub fn lines_with_event(log: &PathBuf, event: &str) -> Vec<Value> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["event"] == event)
        .collect()
}
