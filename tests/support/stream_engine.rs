//! The engine setup of the stream fault matrix (`tests/providers/stream_fault_matrix.rs` and
//! `stream_engine.rs`): the fault matrices' setup (`engine_faults.rs`) with short stream limits,
//! `Engine::stream_with` run to its end with every event the callback saw recorded, and the
//! stream replies of the scripted servers.

#![allow(dead_code)]

use std::time::Duration;

use prompt_config::client::{
    CancelToken, CompleteError, Completion, Interruption, StreamControl, StreamEvent,
};
use prompt_config::{Context, Engine, ErrorKind};
use serde_json::{Value, json};

use super::engine_faults::{Setup, TEXT};
use super::http_server::Reply;
use super::sse_fixtures::{anthropic_events, openai_events};

/// The first-token limit of the stream tests, in milliseconds.
pub const FIRST_TOKEN_MS: u64 = 300;
/// The stall limit of the stream tests, in milliseconds.
pub const STALL_MS: u64 = 300;
/// The attempt timeout of the stream tests, longer than both limits so that they are what
/// ends a silent stream.
pub const STREAM_TIMEOUT_MS: u64 = 2000;
/// How soon the server must see the socket close after a stop or a cancel.
pub const CLOSE_WITHIN: Duration = Duration::from_millis(100);

/// The texts every healthy OpenAI stream of these tests sends, and their sum.
pub const OPENAI_TEXTS: [&str; 3] = ["Fox", " jumps", " high."];
pub const OPENAI_TEXT: &str = "Fox jumps high.";
/// The texts every healthy Anthropic stream of these tests sends, and their sum.
pub const ANTHROPIC_TEXTS: [&str; 2] = ["A fox", " jumps."];
pub const ANTHROPIC_TEXT: &str = "A fox jumps.";

/// `config` (providers.json) with the stream limits of these tests and the longer attempt
/// timeout on every provider; `restart` sets `restart_on_incomplete`.
pub fn with_stream_limits(mut config: Value, restart: bool) -> Value {
    if let Some(entries) = config["providers"].as_object_mut() {
        for entry in entries.values_mut() {
            entry["timeout_ms"] = json!(STREAM_TIMEOUT_MS);
        }
    }
    config["client"]["stream"] = json!({
        "first_token_timeout_ms": FIRST_TOKEN_MS,
        "stall_timeout_ms": STALL_MS,
        "restart_on_incomplete": restart
    });
    config
}

/// A fault matrix setup of `config` with the stream limits (no restart).
pub fn stream_setup(config: Value, chain: &[(&str, &str)]) -> Setup {
    Setup::new(with_stream_limits(config, false), chain)
}

/// Gives the feature `summary` of `setup` a daily budget of $10 (policy `block`), so that
/// `Engine::budget_status` shows what calls were charged.
pub fn with_budget(setup: &Setup) {
    let path = setup.root.join("config/features/summary.json");
    let mut feature: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    feature["budget"] = json!({"daily_usd": 10.0});
    std::fs::write(&path, feature.to_string()).unwrap();
}

/// What the feature's daily budget was charged (settled), in USD; panics (failing the test)
/// when a reservation is left over.
pub fn feature_spend(engine: &Engine) -> f64 {
    let status = engine.budget_status();
    let day = status
        .iter()
        .find(|s| s.scope == "feature:summary" && s.period == "day")
        .expect("the feature has a daily budget");
    assert_eq!(day.reserved_usd, 0.0, "nothing stays reserved: {day:?}");
    day.settled_usd
}

/// One event the callback saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Delta(String),
    /// `provider/model` restarted.
    Restart(String),
}

/// A streamed call: what the callback saw, and how it ended.
pub struct Streamed {
    pub seen: Vec<Seen>,
    pub result: prompt_config::Result<Completion>,
}

impl Streamed {
    /// The deltas seen, in order.
    pub fn deltas(&self) -> Vec<String> {
        let delta = |seen: &Seen| match seen {
            Seen::Delta(text) => Some(text.clone()),
            Seen::Restart(_) => None,
        };
        self.seen.iter().filter_map(delta).collect()
    }

    /// The completion; panics (failing the test) when the call failed.
    pub fn completion(&self) -> &Completion {
        match &self.result {
            Ok(completion) => completion,
            Err(error) => panic!("expected a completion, got {error}"),
        }
    }

    /// The error of a call that failed; panics (failing the test) when it succeeded.
    pub fn failure(&self) -> &CompleteError {
        match &self.result {
            Err(prompt_config::Error::Complete(error)) => error,
            Err(other) => panic!("expected a completion failure, got {other}"),
            Ok(completion) => panic!("expected a failure, got {:?}", completion.attempts),
        }
    }

    /// The kind and facts of an interrupted call; panics (failing the test) otherwise.
    pub fn interruption(&self) -> (ErrorKind, &Interruption) {
        match self.failure() {
            CompleteError::Interrupted { kind, interruption } => (*kind, interruption),
            other => panic!("expected an interruption, got {other}"),
        }
    }
}

/// Streams the feature `summary`, recording every event; the callback stops after
/// `stop_after` deltas when set. `cancel` is the call's token.
pub fn stream_until(engine: &Engine, stop_after: Option<usize>, cancel: &CancelToken) -> Streamed {
    stream_observed(engine, stop_after, cancel, |_| {})
}

/// [`stream_until`] that also hands each delta to `observe` as it arrives.
pub fn stream_observed(
    engine: &Engine,
    stop_after: Option<usize>,
    cancel: &CancelToken,
    mut observe: impl FnMut(&str),
) -> Streamed {
    let mut seen = Vec::new();
    let context = Context::new("user-1").variable("text", TEXT);
    let result = engine.stream_with("summary", &context, cancel, |event| {
        match event {
            StreamEvent::Delta(text) => {
                observe(text);
                seen.push(Seen::Delta(text.to_string()));
            }
            StreamEvent::Restart {
                provider, model, ..
            } => seen.push(Seen::Restart(format!("{provider}/{model}"))),
            // `StreamEvent` is `#[non_exhaustive]`.
            _ => {}
        }
        let deltas = seen.iter().filter(|s| matches!(s, Seen::Delta(_))).count();
        match stop_after {
            Some(limit) if deltas >= limit => StreamControl::Stop,
            _ => StreamControl::Continue,
        }
    });
    Streamed { seen, result }
}

/// Streams the feature `summary` to its end.
pub fn stream(engine: &Engine) -> Streamed {
    stream_until(engine, None, &CancelToken::new())
}

/// A healthy OpenAI stream of [`OPENAI_TEXTS`] with usage (20 in, 4 out) in its last chunk.
pub fn openai_stream() -> Reply {
    Reply::events(openai_events(&OPENAI_TEXTS, Some((20, 4, 0))))
}

/// A healthy Anthropic stream of [`ANTHROPIC_TEXTS`].
pub fn anthropic_stream() -> Reply {
    Reply::events(anthropic_events(&ANTHROPIC_TEXTS))
}
