//! An engine exporting to the loopback collector (helper H2's end-to-end tests): the fault
//! matrix's `summary` feature over scripted loopback `openai` and `anthropic` servers, with the
//! OTLP exporter on and a short batch delay; closing the engine flushes what it holds.

use std::fs;
use std::time::Duration;

use prompt_config::telemetry::otlp::OtlpOptions;
use prompt_config::{Engine, EngineOptions};
use serde_json::{Value, json};

use crate::support::engine_faults::Setup;
use crate::support::otlp_collector::OtlpCollector;

/// How long a test waits for what the exporter sends.
pub const WAIT: Duration = Duration::from_secs(10);

/// A caller's sampled `traceparent`.
pub const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Engine options of `setup` exporting to `collector` as service `otlp-e2e`.
pub fn options(setup: &Setup, collector: &OtlpCollector) -> EngineOptions {
    let mut otlp = OtlpOptions::new(collector.endpoint());
    otlp.service_name = "otlp-e2e".to_string();
    otlp.batch_delay = Duration::from_millis(50);
    let mut options = EngineOptions::new(setup.root.join("config"), setup.root.join("prompts"));
    options.otlp = Some(otlp);
    options
}

/// An engine of `setup` exporting to `collector`.
pub fn engine(setup: &Setup, collector: &OtlpCollector) -> Engine {
    Engine::open(options(setup, collector)).expect("the test configuration is valid")
}

/// Turns the `summary` feature's `telemetry.record_text` on.
pub fn record_text(setup: &Setup) {
    let path = setup.root.join("config/features/summary.json");
    let mut feature: Value =
        serde_json::from_str(&fs::read_to_string(&path).expect("the feature file")).expect("JSON");
    feature["telemetry"] = json!({"record_text": true});
    fs::write(&path, feature.to_string()).expect("the feature file is writable");
}
