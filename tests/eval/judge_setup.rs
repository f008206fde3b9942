//! The setup of the judge tests: a copy of the shipped configuration (the shipped judge
//! `eval_judge` and Career Path Navigator, unchanged) whose `openai` provider is one loopback
//! OpenAI-compatible server and whose `anthropic` provider is another that fails every call.
//! The OpenAI server tells the two features apart by the request: a request for the `verdict`
//! schema is the judge's and gets the next scripted verdict (HTTP 500 once the script is
//! spent); any other is the judged feature's and gets a fixed answer (prose, or three valid
//! career paths for a version with an output schema).

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use prompt_config::eval::{Assertion, AssertionKind, Case, Dataset, EvalOptions, EvalReport};
use prompt_config::{Context, Engine};
use serde_json::{Value, json};

use crate::support::engine_faults::{ANTHROPIC_KEY_VARIABLE, OPENAI_KEY_VARIABLE, set_keys};
use crate::support::fixture::{Fixture, profile};
use crate::support::http_server::{RecordedRequest, Reply, TestServer};

/// The prose the judged feature answers.
pub const ANSWER: &str = "1. Clinical data analyst: your patient care and Excel carry over.\n\
                          2. Health informatics specialist.\n3. Nurse educator.";

/// The rubric of the judge assertions of these tests.
pub const RUBRIC: &str = "Suggests three career paths that build on the user's nursing background.";

/// Tokens of every scripted verdict, and what one costs on the shipped judge model
/// (openai/gpt-4o: $2.50 in, $10 out per million tokens).
pub const VERDICT_INPUT_TOKENS: u64 = 400;
pub const VERDICT_OUTPUT_TOKENS: u64 = 30;
pub const VERDICT_USD: f64 =
    (VERDICT_INPUT_TOKENS as f64 * 2.5 + VERDICT_OUTPUT_TOKENS as f64 * 10.0) / 1e6;

/// The shipped configuration on loopback servers, with the verdicts still to serve.
pub struct JudgeSetup {
    pub fixture: Fixture,
    pub openai: TestServer,
    pub anthropic: TestServer,
    verdicts: Arc<Mutex<VecDeque<Reply>>>,
}

impl JudgeSetup {
    /// The judge answers `verdicts` in order (each an OpenAI chat completion), then HTTP 500.
    pub fn new(verdicts: Vec<Reply>) -> JudgeSetup {
        set_keys();
        let verdicts = Arc::new(Mutex::new(VecDeque::from(verdicts)));
        let script = Arc::clone(&verdicts);
        let openai = TestServer::start_answering(move |request| {
            if schema_name(request).as_deref() == Some("verdict") {
                let exhausted = json!({"error": {"message": "no verdict scripted"}});
                script
                    .lock()
                    .pop_front()
                    .unwrap_or_else(|| Reply::json(500, &exhausted))
            } else {
                judged_answer(request)
            }
        });
        let anthropic = TestServer::start(Vec::new());
        let fixture = Fixture::new();
        let providers = fixture.config_dir().join("providers.json");
        let servers = [
            (
                "openai",
                format!("{}/v1", openai.url()),
                OPENAI_KEY_VARIABLE,
            ),
            ("anthropic", anthropic.url(), ANTHROPIC_KEY_VARIABLE),
        ];
        fixture.edit_json(&providers, |document| {
            for (name, base_url, key_variable) in servers {
                let provider = &mut document["providers"][name];
                provider["base_url"] = json!(base_url);
                provider["api_key_env"] = json!(key_variable);
                // Failures retried at once: a judge failing for good costs milliseconds.
                provider["retry"] =
                    json!({"max_attempts": 2, "base_delay_ms": 1, "max_delay_ms": 2});
            }
        });
        JudgeSetup {
            fixture,
            openai,
            anthropic,
            verdicts,
        }
    }

    /// An engine on real providers (the loopback servers), telemetry off.
    pub fn engine(&self) -> Engine {
        Engine::open(self.fixture.options()).expect("the fixture's configuration opens")
    }

    /// The judge's requests the OpenAI server received, in order.
    pub fn judge_requests(&self) -> Vec<RecordedRequest> {
        self.openai
            .requests()
            .into_iter()
            .filter(|request| schema_name(request).as_deref() == Some("verdict"))
            .collect()
    }

    /// The judged feature's requests, in order.
    pub fn feature_requests(&self) -> Vec<RecordedRequest> {
        self.openai
            .requests()
            .into_iter()
            .filter(|request| schema_name(request).as_deref() != Some("verdict"))
            .collect()
    }

    /// Verdicts not served yet.
    pub fn verdicts_left(&self) -> usize {
        self.verdicts.lock().len()
    }
}

/// The `response_format` schema name of an OpenAI request, if it asks for one.
fn schema_name(request: &RecordedRequest) -> Option<String> {
    let body: Value = serde_json::from_str(&request.body).ok()?;
    body.pointer("/response_format/json_schema/name")?
        .as_str()
        .map(str::to_string)
}

/// The judged feature's answer: three career paths for a structured version, else prose.
fn judged_answer(request: &RecordedRequest) -> Reply {
    let text = if schema_name(request).is_some() {
        let path = |role: &str| json!({"role": role, "fit": "Builds on patient care.", "skills_to_add": ["SQL"], "first_step": "Take a course."});
        json!({"paths": [path("Clinical data analyst"), path("Health informatics specialist"), path("Nurse educator")]})
            .to_string()
    } else {
        ANSWER.to_string()
    };
    completion(&text, 200, 80)
}

/// An OpenAI chat completion saying `content`, finished with `stop`.
pub fn completion(content: &str, prompt_tokens: u64, completion_tokens: u64) -> Reply {
    let message = json!({"role": "assistant", "content": content, "refusal": null});
    let body = json!({
        "id": "chatcmpl-judge",
        "object": "chat.completion",
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens
        }
    });
    Reply::json(200, &body)
}

/// The judge answering `{"reason", "score", "pass"}`.
pub fn verdict(pass: bool, score: f64, reason: &str) -> Reply {
    let text = json!({"reason": reason, "score": score, "pass": pass}).to_string();
    completion(&text, VERDICT_INPUT_TOKENS, VERDICT_OUTPUT_TOKENS)
}

/// The judge answering JSON text that breaks the verdict schema.
pub fn invalid_verdict(text: &str) -> Reply {
    completion(text, VERDICT_INPUT_TOKENS, VERDICT_OUTPUT_TOKENS)
}

/// A judge assertion with [`RUBRIC`], the shipped judge and its own model chain.
pub fn judge() -> Assertion {
    Assertion::new(AssertionKind::Judge {
        rubric: RUBRIC.to_string(),
        feature: None,
        model: None,
    })
}

/// A judge assertion with [`RUBRIC`] on `feature` and `model`, as a dataset line names them.
pub fn judge_with(feature: Option<&str>, model: Option<&str>) -> Assertion {
    Assertion::new(AssertionKind::Judge {
        rubric: RUBRIC.to_string(),
        feature: feature.map(str::to_string),
        model: model.map(str::to_string),
    })
}

/// One case asking Career Path Navigator for a nurse's paths, graded by `assertions`.
pub fn nurse_case(assertions: Vec<Assertion>) -> Dataset {
    let context = Context::new("nurse").with_variables(profile());
    Dataset::new("judged", vec![Case::new("nurse", context, assertions)])
}

/// Evaluates `dataset` on Career Path Navigator `version`, `repeat` times, one run at a time
/// (so the scripted verdicts go to the repeats in order).
pub fn evaluate(
    engine: &Engine,
    dataset: &Dataset,
    version: &str,
    repeat: u32,
) -> prompt_config::Result<EvalReport> {
    let options = EvalOptions::default()
        .versions([version])
        .repeat(repeat)
        .concurrency(1);
    engine.evaluate("career_path_navigator", dataset, &options)
}
