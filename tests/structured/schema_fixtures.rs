//! The setup of the validation, repair and failover tests: the fault matrices' feature `summary`
//! (tests/support/engine_faults.rs) given an output schema, calling OpenAI-shaped loopback
//! servers (a primary and, when a test names one, a backup of another provider name with its
//! own breaker), and the answers those servers send: valid JSON, text that is not JSON, JSON
//! that breaks the schema, refusals and cut answers.

#![allow(dead_code)]

use prompt_config::client::{Attempt, AttemptOutcome, CompleteError, Completion};
use prompt_config::{Context, Engine, ErrorKind};
use serde_json::{Value, json};

use crate::support::engine_faults::{self, OPENAI_KEY_VARIABLE, Setup, TEXT};
use crate::support::http_server::{Reply, TestServer};

/// The primary model and the backup model (another provider entry of kind `openai`).
pub const PRIMARY: (&str, &str) = ("openai", "gpt-test");
pub const BACKUP: (&str, &str) = ("backup", "gpt-backup");

/// A valid answer, and the value it parses to.
pub const VALID: &str = r#"{"title":"Data engineer","skills":["SQL","Rust"]}"#;
/// Prose around JSON-like text: not JSON at all.
pub const NOT_JSON: &str = "Sure! Here it is: {title: Data engineer}";
/// JSON whose `skills` is a string, not an array: one violation at `/skills`.
pub const VIOLATING: &str = r#"{"title":"Data engineer","skills":"SQL"}"#;

/// The output schema of these tests, in the subset both providers' strict modes accept: every
/// object closes its properties and requires them all.
pub fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "skills": {"type": "array", "items": {"type": "string"}}
        },
        "required": ["title", "skills"],
        "additionalProperties": false
    })
}

/// A type `VALID` parses into.
#[derive(Debug, PartialEq, serde::Deserialize)]
pub struct CareerPath {
    pub title: String,
    pub skills: Vec<String>,
}

/// `summary` with the output schema (`repair` as given), on `primary` alone or followed by
/// `backup`, at temperature 0 (so that a cache may hold its answers).
pub fn structured(primary: &TestServer, backup: Option<&TestServer>, repair: bool) -> Setup {
    let mut providers = json!({
        "client": {"deadline_ms": engine_faults::DEADLINE_MS},
        "providers": {"openai": engine_faults::openai_provider(&primary.url())}
    });
    let mut chain = vec![PRIMARY];
    if let Some(backup) = backup {
        providers["providers"]["backup"] = engine_faults::provider(
            "openai",
            &format!("{}/v1", backup.url()),
            OPENAI_KEY_VARIABLE,
            &[BACKUP.1],
        );
        chain.push(BACKUP);
    }
    let setup = Setup::new(providers, &chain);
    edit_feature(&setup, |feature| {
        let version = &mut feature["versions"]["1.0.0"];
        version["output"] = json!({"name": "career_path", "schema": schema(), "repair": repair});
        feature["model"]["parameters"]["temperature"] = json!(0.0);
        if let Some(fallbacks) = feature["fallbacks"].as_array_mut() {
            for fallback in fallbacks {
                fallback["parameters"]["temperature"] = json!(0.0);
            }
        }
    });
    setup
}

/// Rewrites the feature file of `setup`, then releases version 1.0.0 again as
/// `prompt-config release` would, so its hashes cover the declarations the edit made (a released
/// version's output, tools and tool_choice are immutable like its templates).
pub fn edit_feature(setup: &Setup, edit: impl FnOnce(&mut Value)) {
    crate::support::release::edit_and_release(&setup.root, "summary", "1.0.0", edit);
}

/// An OpenAI chat completion whose message says `content` (`null` for none) and `refusal`, with
/// `finish_reason`; 20 prompt and 4 completion tokens.
pub fn openai_answer(content: Value, refusal: Option<&str>, finish_reason: &str) -> Reply {
    let message = json!({"role": "assistant", "content": content, "refusal": refusal});
    let choice = json!({"index": 0, "message": message, "finish_reason": finish_reason});
    let usage = json!({"prompt_tokens": 20, "completion_tokens": 4, "total_tokens": 24});
    let body = json!({"id": "chatcmpl-structured-1", "model": "gpt-test-1", "choices": [choice], "usage": usage});
    Reply::json(200, &body)
}

/// An answer saying `text`, finished with `stop`.
pub fn answer(text: &str) -> Reply {
    openai_answer(json!(text), None, "stop")
}

/// What one answer of [`openai_answer`] costs at $1/$2 per million tokens: 20 in, 4 out.
pub const ANSWER_USD: f64 = (20.0 * 1.0 + 4.0 * 2.0) / 1e6;

/// Completes `summary`.
pub fn complete(engine: &Engine) -> prompt_config::Result<Completion> {
    engine.complete("summary", &Context::new("user-1").variable("text", TEXT))
}

/// (provider, outcome) of every attempt.
pub fn outcomes(attempts: &[Attempt]) -> Vec<(String, AttemptOutcome)> {
    attempts
        .iter()
        .map(|attempt| (attempt.provider.clone(), attempt.outcome))
        .collect()
}

/// The error of a call that must fail with `kind`; panics (failing the test) otherwise.
pub fn failed_with(result: prompt_config::Result<Completion>, kind: ErrorKind) -> CompleteError {
    let error = engine_faults::failure(result);
    assert_eq!(error.kind(), kind, "{error}");
    error
}

/// The messages of a recorded request body, as (role, content) pairs.
pub fn roles_and_contents(body: &Value) -> Vec<(String, String)> {
    body["messages"]
        .as_array()
        .expect("the body has messages")
        .iter()
        .map(|message| {
            (
                message["role"].as_str().unwrap_or_default().to_string(),
                message["content"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}
