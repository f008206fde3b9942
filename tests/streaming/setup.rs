//! A private configuration for the streaming tests: providers `openai` and `anthropic`
//! (mocked), feature `summary` with `openai/gpt-test` primary and `anthropic/claude-test`
//! fallback, a manual clock.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::TimeZone;
use prompt_config::client::Completion;
use prompt_config::client::{
    Attempt, AttemptOutcome, Clock, CompleteError, ManualClock, MockProvider, SeededRandom,
    StreamControl, StreamEvent,
};
use prompt_config::{Context, Engine, EngineOptions, Error};
use serde_json::{Value, json};

use crate::support::summary_tree;
use crate::support::temp_dir::TempDir;

pub struct Setup {
    pub root: PathBuf,
    _directory: TempDir,
    pub clock: Arc<ManualClock>,
}

const TEMPLATE: &str = "Summarise: {{ text }}";

fn providers_json() -> Value {
    let provider = |kind: &str, model: &str| {
        json!({
            "kind": kind,
            "timeout_ms": 20000,
            "retry": {"max_attempts": 3, "base_delay_ms": 100, "max_delay_ms": 1000, "max_retry_after_ms": 5000},
            "circuit_breaker": {"consecutive_failures": 3, "minimum_calls": 100, "open_ms": 10000, "max_open_ms": 40000},
            "mock": {"latency_ms": 50, "stream_chunk_chars": 10, "stream_delay_ms": 5},
            "models": {model: {"input_per_million": 1.0, "output_per_million": 2.0}}
        })
    };
    json!({
        "client": {"deadline_ms": 60000, "stream": {"first_token_timeout_ms": 1000, "stall_timeout_ms": 2000}},
        "providers": {"openai": provider("openai", "gpt-test"), "anthropic": provider("anthropic", "claude-test")}
    })
}

fn feature_json() -> Value {
    json!({
        "feature": "summary",
        "active_version": "1.0.0",
        "model": {"provider": "openai", "name": "gpt-test", "parameters": {"max_tokens": 100}},
        "fallbacks": [{"provider": "anthropic", "name": "claude-test", "parameters": {"max_tokens": 100}}],
        "versions": {
            "1.0.0": {
                "status": "released",
                "sha256": {"user.j2": prompt_config::prompt::sha256_hex(TEMPLATE.as_bytes())},
                "messages": [{"role": "user", "template": "user.j2"}],
                "variables": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
            }
        }
    })
}

impl Setup {
    pub fn new(
        edit_providers: impl FnOnce(&mut Value),
        edit_feature: impl FnOnce(&mut Value),
    ) -> Setup {
        let mut providers = providers_json();
        edit_providers(&mut providers);
        let mut feature = feature_json();
        edit_feature(&mut feature);
        let (directory, root) = summary_tree::write("streaming", &providers, &feature, TEMPLATE);
        let start = chrono::Utc
            .with_ymd_and_hms(2026, 11, 27, 10, 0, 0)
            .unwrap();
        Setup {
            root,
            _directory: directory,
            clock: Arc::new(ManualClock::new(start)),
        }
    }

    pub fn plain() -> Setup {
        Setup::new(|_| {}, |_| {})
    }

    pub fn options(&self) -> EngineOptions {
        EngineOptions::new(self.root.join("config"), self.root.join("prompts"))
            .with_mock(true)
            .with_clock(Arc::clone(&self.clock) as Arc<dyn Clock>)
            .with_random(Arc::new(SeededRandom::new(1)))
    }

    pub fn engine(&self) -> Engine {
        Engine::open(self.options()).unwrap()
    }
}

pub fn context() -> Context {
    Context::new("user-1").variable("text", "The quick brown fox jumps over the lazy dog.")
}

pub fn mock(engine: &Engine, provider: &str) -> Arc<MockProvider> {
    engine.mock_provider(provider).unwrap()
}

/// What a stream handed its callback, in order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Seen {
    pub deltas: Vec<String>,
    /// `(provider, model)` of each restart, with the number of deltas seen before it.
    pub restarts: Vec<(String, String, usize)>,
}

impl Seen {
    pub fn text(&self) -> String {
        self.deltas.concat()
    }
}

/// Streams `summary`, collecting the events.
pub fn stream(engine: &Engine) -> (Seen, Result<Completion, Error>) {
    let mut seen = Seen::default();
    let result = engine.stream("summary", &context(), |event| {
        record(&mut seen, event);
        StreamControl::Continue
    });
    (seen, result)
}

pub fn record(seen: &mut Seen, event: StreamEvent<'_>) {
    match event {
        StreamEvent::Delta(delta) => seen.deltas.push(delta.to_string()),
        StreamEvent::Restart {
            provider, model, ..
        } => seen
            .restarts
            .push((provider.to_string(), model.to_string(), seen.deltas.len())),
        _ => {}
    }
}

pub fn failure(error: Error) -> CompleteError {
    match error {
        Error::Complete(failure) => failure,
        other => panic!("expected a completion failure, got {other}"),
    }
}

pub fn outcomes(attempts: &[Attempt]) -> Vec<(String, AttemptOutcome)> {
    attempts
        .iter()
        .map(|attempt| (attempt.provider.clone(), attempt.outcome))
        .collect()
}
