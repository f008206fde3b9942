//! The engine setup of the fault matrices (`tests/providers/fault_matrix.rs` for `complete()`,
//! `stream_fault_matrix.rs` for `stream()`): the real `openai` and `anthropic` providers, each
//! pointed at a scripted loopback server, with small settings, fake API keys set once in the
//! environment, a private configuration directory per test, the client events collected, and
//! the attempts of a call as comparable rows.

#![allow(dead_code)]

use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Once};
use std::time::Duration;

use super::http_server::{Reply, TestServer};
use super::temp_dir::TempDir;
use parking_lot::Mutex;
use prompt_config::client::AttemptOutcome::{Failed, Success};
use prompt_config::client::{
    Attempt, AttemptOutcome, BreakerState, ClientEvent, CompleteError, Completion, EventSink,
};
use prompt_config::{Context, Engine, EngineOptions};
use serde_json::{Value, json};

pub const OPENAI_KEY_VARIABLE: &str = "PROMPT_CONFIG_FAULT_TEST_OPENAI_KEY";
pub const ANTHROPIC_KEY_VARIABLE: &str = "PROMPT_CONFIG_FAULT_TEST_ANTHROPIC_KEY";
/// Never set by anyone.
pub const UNSET_KEY_VARIABLE: &str = "PROMPT_CONFIG_FAULT_TEST_UNSET_KEY";
pub const OPENAI_KEY: &str = "sk-fault-openai-SECRET-5678";
pub const ANTHROPIC_KEY: &str = "sk-ant-fault-SECRET-9012";

pub const TIMEOUT_MS: u64 = 400;
pub const DEADLINE_MS: u64 = 3000;
/// Slack for a loaded machine on top of every time bound asserted.
pub const MARGIN: Duration = Duration::from_millis(400);

pub const OPENAI: (&str, &str) = ("openai", "gpt-test");
pub const OPENAI_LONG: (&str, &str) = ("openai", "gpt-test-long");
pub const ANTHROPIC: (&str, &str) = ("anthropic", "claude-test");

pub const SYSTEM_TEMPLATE: &str = "You are terse.";
pub const USER_TEMPLATE: &str = "Summarise: {{ text }}";
pub const TEXT: &str = "The quick brown fox jumps over the lazy dog.";

pub const RETRYABLE: [u16; 7] = [408, 429, 500, 502, 503, 504, 529];
pub const FINAL: [u16; 5] = [400, 401, 403, 404, 422];

/// Sets the API key variables once, before any engine of any test reads the environment.
pub fn set_keys() {
    static KEYS: Once = Once::new();
    KEYS.call_once(|| {
        // SAFETY: every test of the fault matrices calls this first and `Once` holds the others back
        // until it is done. Tests of other modules of this binary may be running: they read the
        // environment only through `std::env` (engines reading keys, `Command`), which takes the
        // lock `set_var` takes, and nothing through libc (servers are IP literals: no lookups).
        unsafe {
            std::env::set_var(OPENAI_KEY_VARIABLE, OPENAI_KEY);
            std::env::set_var(ANTHROPIC_KEY_VARIABLE, ANTHROPIC_KEY);
        }
    });
}

/// Collects every client event.
#[derive(Default)]
pub struct Events(pub Mutex<Vec<ClientEvent>>);

impl EventSink for Events {
    fn emit(&self, _request_id: &str, event: &ClientEvent) {
        self.0.lock().push(event.clone());
    }
}

impl Events {
    /// Every breaker transition as `breaker: from -> to (reason, open_for_ms)`.
    pub fn transitions(&self) -> Vec<String> {
        let describe = |event: &ClientEvent| match event {
            ClientEvent::CircuitTransition(t) => Some(format!(
                "{}: {:?} -> {:?} ({}, {:?})",
                t.breaker, t.from, t.to, t.reason, t.open_for_ms
            )),
            // `ClientEvent` is `#[non_exhaustive]`: alerts and later kinds are not transitions.
            _ => None,
        };
        self.0.lock().iter().filter_map(describe).collect()
    }
}

/// A provider entry of providers.json with this file's small settings.
pub fn provider(kind: &str, base_url: &str, key_variable: &str, models: &[&str]) -> Value {
    let price = json!({"input_per_million": 1.0, "output_per_million": 2.0});
    let models: serde_json::Map<String, Value> = models
        .iter()
        .map(|model| (model.to_string(), price.clone()))
        .collect();
    json!({
        "kind": kind,
        "base_url": base_url,
        "api_key_env": key_variable,
        "timeout_ms": TIMEOUT_MS,
        "retry": {"max_attempts": 3, "base_delay_ms": 2, "max_delay_ms": 20, "max_retry_after_ms": 2000},
        "circuit_breaker": {"consecutive_failures": 3, "minimum_calls": 100, "open_ms": 10000, "max_open_ms": 40000},
        "models": models
    })
}

pub fn openai_provider(base_url: &str) -> Value {
    let (url, models) = (format!("{base_url}/v1"), [OPENAI.1, OPENAI_LONG.1]);
    provider("openai", &url, OPENAI_KEY_VARIABLE, &models)
}

pub fn anthropic_provider(base_url: &str) -> Value {
    provider(
        "anthropic",
        base_url,
        ANTHROPIC_KEY_VARIABLE,
        &[ANTHROPIC.1],
    )
}

/// providers.json with `openai` and/or `anthropic` at these servers.
pub fn providers(openai: Option<&TestServer>, anthropic: Option<&TestServer>) -> Value {
    let mut entries = serde_json::Map::new();
    if let Some(server) = openai {
        entries.insert("openai".into(), openai_provider(&server.url()));
    }
    if let Some(server) = anthropic {
        entries.insert("anthropic".into(), anthropic_provider(&server.url()));
    }
    json!({"client": {"deadline_ms": DEADLINE_MS}, "providers": entries})
}

/// The feature `summary` (a system and a user template) calling `chain` in order.
pub fn feature(chain: &[(&str, &str)]) -> Value {
    let parameters = json!({"max_tokens": 100, "temperature": 0.2});
    let model = |(provider, name): &(&str, &str)| json!({"provider": provider, "name": name, "parameters": parameters});
    let sha = |template: &str| prompt_config::prompt::sha256_hex(template.as_bytes());
    let text =
        json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]});
    json!({
        "feature": "summary",
        "active_version": "1.0.0",
        "model": model(&chain[0]),
        "fallbacks": chain[1..].iter().map(model).collect::<Vec<_>>(),
        "versions": {"1.0.0": {
            "status": "released",
            "sha256": {"system.j2": sha(SYSTEM_TEMPLATE), "user.j2": sha(USER_TEMPLATE)},
            "messages": [{"role": "system", "template": "system.j2"}, {"role": "user", "template": "user.j2"}],
            "variables": text
        }}
    })
}

/// A private configuration directory, removed on drop, and the events of its engines.
pub struct Setup {
    pub root: PathBuf,
    /// Removes `root` on drop.
    pub _directory: TempDir,
    pub events: Arc<Events>,
}

impl Setup {
    pub fn new(providers: Value, chain: &[(&str, &str)]) -> Setup {
        set_keys();
        let directory = TempDir::new("fault_matrix");
        let root = directory.0.clone();
        fs::create_dir_all(root.join("config/features")).unwrap();
        fs::create_dir_all(root.join("prompts/summary/1.0.0")).unwrap();
        let write = |path: &str, text: &str| fs::write(root.join(path), text).unwrap();
        write("config/providers.json", &providers.to_string());
        write("config/features/summary.json", &feature(chain).to_string());
        write("prompts/summary/1.0.0/system.j2", SYSTEM_TEMPLATE);
        write("prompts/summary/1.0.0/user.j2", USER_TEMPLATE);
        let events = Arc::new(Events::default());
        Setup {
            root,
            _directory: directory,
            events,
        }
    }

    /// `openai` primary, `anthropic` fallback.
    pub fn both(openai: &TestServer, anthropic: &TestServer) -> Setup {
        Setup::new(
            providers(Some(openai), Some(anthropic)),
            &[OPENAI, ANTHROPIC],
        )
    }

    /// `openai` alone.
    pub fn openai_only(openai: &TestServer) -> Setup {
        Setup::new(providers(Some(openai), None), &[OPENAI])
    }

    pub fn engine(&self) -> Engine {
        let options = EngineOptions::new(self.root.join("config"), self.root.join("prompts"))
            .with_event_sink(Arc::clone(&self.events) as Arc<dyn EventSink>);
        Engine::open(options).expect("the test configuration is valid")
    }
}

pub fn complete(engine: &Engine) -> prompt_config::Result<Completion> {
    engine.complete("summary", &Context::new("user-1").variable("text", TEXT))
}

pub fn failure(result: prompt_config::Result<Completion>) -> CompleteError {
    match result {
        Err(prompt_config::Error::Complete(error)) => error,
        Err(other) => panic!("expected a completion failure, got {other}"),
        Ok(completion) => panic!("expected a failure, got {:?}", completion.attempts),
    }
}

/// (provider, outcome, status, error_type) of one attempt.
pub type Row = (String, AttemptOutcome, Option<u16>, Option<String>);

pub fn rows(attempts: &[Attempt]) -> Vec<Row> {
    let to_row = |a: &Attempt| row(&a.provider, a.outcome, a.status, a.error_type().as_deref());
    attempts.iter().map(to_row).collect()
}

/// The attempts of a call, whether it succeeded or not, for comparisons across statuses.
pub fn rows_of(result: &prompt_config::Result<Completion>) -> Vec<Row> {
    match result {
        Ok(completion) => rows(&completion.attempts),
        Err(prompt_config::Error::Complete(error)) => rows(error.attempts()),
        Err(other) => panic!("unexpected error {other}"),
    }
}

pub fn row(
    provider: &str,
    outcome: AttemptOutcome,
    status: Option<u16>,
    kind: Option<&str>,
) -> Row {
    (provider.into(), outcome, status, kind.map(str::to_string))
}

pub fn http_failed(provider: &str, status: u16) -> Row {
    row(provider, Failed, Some(status), Some(&status.to_string()))
}

pub fn fault(provider: &str, error_type: &str) -> Row {
    row(provider, Failed, None, Some(error_type))
}

pub fn succeeded(provider: &str) -> Row {
    row(provider, Success, None, None)
}

pub fn openai_success() -> Reply {
    let message = json!({"role": "assistant", "content": "A fox jumps."});
    let choice = json!({"index": 0, "message": message, "finish_reason": "stop"});
    let usage = json!({"prompt_tokens": 20, "completion_tokens": 4, "total_tokens": 24});
    let body = json!({"id": "chatcmpl-fault-1", "model": "gpt-test-1", "choices": [choice], "usage": usage});
    Reply::json(200, &body)
}

pub fn anthropic_success() -> Reply {
    let content = json!([{"type": "text", "text": "A fox jumps."}]);
    let usage = json!({"input_tokens": 20, "output_tokens": 4});
    let body = json!({"id": "msg_fault_1", "type": "message", "role": "assistant",
        "content": content, "stop_reason": "end_turn", "usage": usage});
    Reply::json(200, &body)
}

pub fn openai_error(status: u16, message: &str, code: Value) -> Reply {
    let error = json!({"message": message, "type": "api_error", "param": null, "code": code});
    Reply::json(status, &json!({ "error": error }))
}

pub fn anthropic_error(status: u16, error_type: &str, message: &str) -> Reply {
    let error = json!({"type": error_type, "message": message});
    Reply::json(status, &json!({"type": "error", "error": error}))
}

pub fn state_of(engine: &Engine, breaker: &str) -> BreakerState {
    let states = engine.breaker_states().into_iter();
    states
        .filter(|(name, _)| name == breaker)
        .map(|(_, state)| state)
        .next()
        .unwrap()
}

/// A loopback address where nothing listens.
pub fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}
