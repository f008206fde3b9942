//! Evaluation fixtures: a copy of the shipped configuration whose mock providers answer at
//! once and always validly, and an engine over it in mock mode.

#![allow(dead_code)]

use prompt_config::{Engine, EngineOptions};
use serde_json::{Value, json};

use super::fixture::Fixture;

/// A shipped-config fixture whose mocks have no latency, jitter or invalid answers, so an
/// evaluation is fast and every run of a case answers alike.
pub fn fast_mock_fixture() -> Fixture {
    let fixture = Fixture::new();
    let providers = fixture.config_dir().join("providers.json");
    fixture.edit_json(&providers, |document| {
        if let Some(Value::Object(providers)) = document.get_mut("providers") {
            for provider in providers.values_mut() {
                provider["mock"] = json!({
                    "latency_ms": 0,
                    "jitter_ms": 0,
                    "stream_chunk_chars": 12,
                    "stream_delay_ms": 0,
                    "invalid_output_share": 0.0
                });
            }
        }
    });
    fixture
}

/// Mock-mode engine options over `fixture`, telemetry off.
pub fn mock_options(fixture: &Fixture) -> EngineOptions {
    fixture.options().with_mock(true)
}

/// A mock-mode engine over `fixture`.
pub fn mock_engine(fixture: &Fixture) -> Engine {
    Engine::open(mock_options(fixture)).expect("the fixture's configuration opens")
}
