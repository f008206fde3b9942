//! What a call costs when the provider does not say, end to end through `Engine::complete` over
//! the real providers pointed at a scripted loopback server: a 200 without `usage` is estimated
//! (never free), flagged in the Completion, the telemetry line, the metrics and `stats`, and
//! settled against a `block` budget; partial counts estimate only the missing part; cache writes
//! are priced; refusals reach the caller and the log. Nothing leaves 127.0.0.1.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Once;

use crate::support::http_server::{Reply, TestServer};
use crate::support::temp_dir::TempDir;
use prompt_config::client::{
    Completion, EstimatedPart, FinishReason, TokenCounter, upper_bound_tokens,
};
use prompt_config::config::ProviderKind;
use prompt_config::telemetry::stats::{StatsOptions, analyze};
use prompt_config::{Context, Engine, EngineOptions, Message, Role};
use serde_json::{Value, json};

const OPENAI_KEY_VARIABLE: &str = "PROMPT_CONFIG_COST_TEST_OPENAI_KEY";
const ANTHROPIC_KEY_VARIABLE: &str = "PROMPT_CONFIG_COST_TEST_ANTHROPIC_KEY";

const SYSTEM_TEMPLATE: &str = "You are terse.";
const USER_TEMPLATE: &str = "Summarise: {{ text }}";
const TEXT: &str = "The quick brown fox jumps over the lazy dog.";

/// USD per million tokens of the test models: dear, so a few calls reach a $20 budget.
const INPUT_PRICE: f64 = 100.0;
const OUTPUT_PRICE: f64 = 1000.0;
/// The feature's `max_tokens`: the output worst case reserved before each call ($5).
const MAX_TOKENS: u64 = 5000;

fn set_keys() {
    static KEYS: Once = Once::new();
    KEYS.call_once(|| {
        // SAFETY: every test of this module calls this first and `Once` holds the others back
        // until it is done. Tests of other modules of this binary may be running: they read the
        // environment only through `std::env` (engines reading keys, `Command`), which takes the
        // lock `set_var` takes, and nothing through libc (servers are IP literals: no lookups).
        unsafe {
            std::env::set_var(OPENAI_KEY_VARIABLE, "sk-cost-test");
            std::env::set_var(ANTHROPIC_KEY_VARIABLE, "sk-ant-cost-test");
        }
    });
}

/// Which provider the feature calls.
#[derive(Clone, Copy)]
enum Api {
    OpenAi,
    Anthropic,
}

/// A private configuration: one provider at `server`, the feature `summary` on `model`,
/// optionally with a daily `block` budget; removed on drop.
struct Setup {
    root: PathBuf,
    /// Removes `root` on drop.
    _directory: TempDir,
}

impl Setup {
    fn new(api: Api, server: &TestServer, model: &str, daily_budget: Option<f64>) -> Setup {
        set_keys();
        let directory = TempDir::new("cost");
        let root = directory.0.clone();
        fs::create_dir_all(root.join("config/features")).unwrap();
        fs::create_dir_all(root.join("prompts/summary/1.0.0")).unwrap();
        let (provider, kind, base_url, key) = match api {
            Api::OpenAi => (
                "openai",
                "openai",
                format!("{}/v1", server.url()),
                OPENAI_KEY_VARIABLE,
            ),
            Api::Anthropic => (
                "anthropic",
                "anthropic",
                server.url(),
                ANTHROPIC_KEY_VARIABLE,
            ),
        };
        let price = json!({
            "input_per_million": INPUT_PRICE,
            "output_per_million": OUTPUT_PRICE,
            "cached_input_per_million": INPUT_PRICE / 10.0,
            "cache_write_per_million": INPUT_PRICE * 1.25
        });
        let providers = json!({"providers": {provider: {
            "kind": kind,
            "base_url": base_url,
            "api_key_env": key,
            "retry": {"max_attempts": 1},
            "models": {model: price}
        }}});
        let sha = |template: &str| prompt_config::prompt::sha256_hex(template.as_bytes());
        let mut feature = json!({
            "feature": "summary",
            "active_version": "1.0.0",
            "model": {"provider": provider, "name": model, "parameters": {"max_tokens": MAX_TOKENS}},
            "versions": {"1.0.0": {
                "status": "released",
                "sha256": {"system.j2": sha(SYSTEM_TEMPLATE), "user.j2": sha(USER_TEMPLATE)},
                "messages": [{"role": "system", "template": "system.j2"}, {"role": "user", "template": "user.j2"}],
                "variables": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
            }}
        });
        if let Some(daily_usd) = daily_budget {
            feature["budget"] = json!({"daily_usd": daily_usd, "policy": "block"});
        }
        let write = |path: &str, text: &str| fs::write(root.join(path), text).unwrap();
        write("config/providers.json", &providers.to_string());
        write("config/features/summary.json", &feature.to_string());
        write("prompts/summary/1.0.0/system.j2", SYSTEM_TEMPLATE);
        write("prompts/summary/1.0.0/user.j2", USER_TEMPLATE);
        Setup {
            root,
            _directory: directory,
        }
    }

    fn telemetry_path(&self) -> PathBuf {
        self.root.join("telemetry.jsonl")
    }

    fn engine(&self) -> Engine {
        let options = EngineOptions::new(self.root.join("config"), self.root.join("prompts"))
            .with_telemetry(self.telemetry_path());
        Engine::open(options).expect("the test configuration is valid")
    }
}

fn complete(engine: &Engine) -> prompt_config::Result<Completion> {
    engine.complete("summary", &Context::new("user-1").variable("text", TEXT))
}

/// The rendered messages of the feature, as the providers receive them.
fn rendered() -> Vec<Message> {
    vec![
        Message::new(Role::System, SYSTEM_TEMPLATE),
        Message::new(Role::User, USER_TEMPLATE.replace("{{ text }}", TEXT)),
    ]
}

/// An OpenAI chat completion answering `text`, with `usage` when given.
fn openai_answer(text: Option<&str>, usage: Option<Value>) -> Reply {
    let message = json!({"role": "assistant", "content": text});
    let choice = json!({"index": 0, "message": message, "finish_reason": "stop"});
    let mut body =
        json!({"id": "chatcmpl-cost", "model": "gpt-4o-2024-08-06", "choices": [choice]});
    if let Some(usage) = usage {
        body["usage"] = usage;
    }
    Reply::json(200, &body)
}

fn cost_of(input_tokens: u64, output_tokens: u64) -> f64 {
    (input_tokens as f64 * INPUT_PRICE + output_tokens as f64 * OUTPUT_PRICE) / 1e6
}

fn assert_close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() < 1e-9,
        "expected {expected}, got {actual}"
    );
}

fn lines(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

fn request_lines(path: &Path) -> Vec<Value> {
    lines(path)
        .into_iter()
        .filter(|line| line["event"] == "llm.request")
        .collect()
}

/// Calls `engine` eight times and counts the calls the budget let through.
fn successes_of_eight(engine: &Engine) -> usize {
    (0..8)
        .map(|_| complete(engine))
        .filter(|result| match result {
            Ok(_) => true,
            Err(error) => {
                assert_eq!(error.kind(), "budget_exceeded", "{error}");
                false
            }
        })
        .count()
}

/// "word word word ...": `count` tokens for OpenAI's o200k encoding.
fn words(count: usize) -> String {
    vec!["word"; count].join(" ")
}

#[test]
fn with_usage_a_20_dollar_block_budget_lets_one_of_eight_dear_calls_through() {
    // 10,000 input and 15,000 output tokens: $16 per call; the next call's worst case ($5
    // of max_tokens) no longer fits under $20.
    let usage = json!({"prompt_tokens": 10_000, "completion_tokens": 15_000});
    let server = TestServer::start_with_fallback(vec![], openai_answer(Some("Done."), Some(usage)));
    let setup = Setup::new(Api::OpenAi, &server, "gpt-4o", Some(20.0));
    let engine = setup.engine();
    assert_eq!(successes_of_eight(&engine), 1);
}

#[test]
fn without_usage_a_20_dollar_block_budget_settles_the_estimate_and_stops_calls() {
    // The same dear answers without `usage`: each is estimated from its 4,000 output tokens
    // ($4) instead of costing $0, so the budget holds after four calls instead of eight.
    let answer = words(4000);
    let server = TestServer::start_with_fallback(vec![], openai_answer(Some(&answer), None));
    let setup = Setup::new(Api::OpenAi, &server, "gpt-4o", Some(20.0));
    let engine = setup.engine();
    let through = successes_of_eight(&engine);
    assert!(through < 8, "the budget let {through} of 8 calls through");
    assert_eq!(through, 4);
    let spent: f64 = engine
        .budget_status()
        .iter()
        .map(|status| status.settled_usd)
        .fold(0.0, f64::max);
    assert!(spent > 15.0, "spent {spent}");
}

#[test]
fn a_200_without_usage_is_charged_the_counted_prompt_and_answer_and_flagged_estimated() {
    let server = TestServer::start(vec![openai_answer(Some("A fox jumps."), None)]);
    let setup = Setup::new(Api::OpenAi, &server, "gpt-4o", None);
    let completion = complete(&setup.engine()).expect("success");
    let counter = TokenCounter::for_model(Some(ProviderKind::Openai), "gpt-4o");
    let input = counter.count_messages(&rendered());
    let output = counter.count_text("A fox jumps.");
    assert_eq!(completion.usage.input_tokens, input);
    assert_eq!(completion.usage.output_tokens, output);
    assert!(completion.cost_estimated);
    assert_eq!(
        completion.cost_estimated_parts,
        [EstimatedPart::InputTokens, EstimatedPart::OutputTokens]
    );
    assert!(completion.cost_usd > 0.0);
    assert_close(completion.cost_usd, cost_of(input, output));
}

#[test]
fn a_reported_prompt_without_completion_tokens_estimates_only_the_output() {
    let usage = json!({"prompt_tokens": 30});
    let server = TestServer::start(vec![openai_answer(Some("A fox jumps."), Some(usage))]);
    let setup = Setup::new(Api::OpenAi, &server, "gpt-4o", None);
    let completion = complete(&setup.engine()).expect("success");
    assert_eq!(completion.usage.input_tokens, 30);
    assert_eq!(
        completion.cost_estimated_parts,
        [EstimatedPart::OutputTokens]
    );
    let output = completion.usage.output_tokens;
    assert!(output > 0);
    assert_close(completion.cost_usd, cost_of(30, output));
}

#[test]
fn an_empty_answer_without_usage_is_charged_the_reserved_max_tokens() {
    // A tool call or hidden reasoning leaves no text to count: the worst case is charged.
    let server = TestServer::start(vec![openai_answer(None, None)]);
    let setup = Setup::new(Api::OpenAi, &server, "gpt-4o", None);
    let completion = complete(&setup.engine()).expect("success");
    assert_eq!(completion.usage.output_tokens, MAX_TOKENS);
    assert!(
        completion
            .cost_estimated_parts
            .contains(&EstimatedPart::OutputTokensMax)
    );
    assert!(completion.cost_usd >= cost_of(0, MAX_TOKENS));
}

#[test]
fn zero_counts_from_a_gateway_are_estimated_rather_than_free() {
    let usage = json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0});
    let server = TestServer::start(vec![openai_answer(Some("A fox jumps."), Some(usage))]);
    let setup = Setup::new(Api::OpenAi, &server, "gpt-4o", None);
    let completion = complete(&setup.engine()).expect("success");
    assert!(completion.cost_estimated);
    assert!(completion.usage.input_tokens > 0 && completion.usage.output_tokens > 0);
    assert!(completion.cost_usd > 0.0);
}

#[test]
fn anthropic_without_usage_is_estimated_with_the_documented_upper_bound() {
    let body = json!({"id": "msg_cost", "type": "message", "role": "assistant",
        "content": [{"type": "text", "text": "A fox jumps."}], "stop_reason": "end_turn"});
    let server = TestServer::start(vec![Reply::json(200, &body)]);
    let setup = Setup::new(Api::Anthropic, &server, "claude-test", None);
    let completion = complete(&setup.engine()).expect("success");
    let expected_input: u64 = rendered()
        .iter()
        .map(|message| upper_bound_tokens(&message.content) + 4)
        .sum::<u64>()
        + 3;
    assert_eq!(completion.usage.input_tokens, expected_input);
    assert_eq!(
        completion.usage.output_tokens,
        upper_bound_tokens("A fox jumps.")
    );
    assert!(completion.cost_estimated);
}

#[test]
fn anthropic_cache_writes_are_billed_at_the_cache_write_price_and_counted_as_input() {
    let body = json!({"id": "msg_cache", "type": "message", "role": "assistant",
        "content": [{"type": "text", "text": "A fox jumps."}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 100, "cache_creation_input_tokens": 1000,
                  "cache_read_input_tokens": 2000, "output_tokens": 10}});
    let server = TestServer::start(vec![Reply::json(200, &body)]);
    let setup = Setup::new(Api::Anthropic, &server, "claude-test", None);
    let engine = setup.engine();
    let completion = complete(&engine).expect("success");
    assert!(!completion.cost_estimated);
    assert_eq!(completion.usage.input_tokens, 3100);
    let expected = (100.0 * INPUT_PRICE
        + 1000.0 * INPUT_PRICE * 1.25
        + 2000.0 * INPUT_PRICE / 10.0
        + 10.0 * OUTPUT_PRICE)
        / 1e6;
    assert_close(completion.cost_usd, expected);
    // One definition of input tokens: the telemetry line and the metrics say 3,100 too.
    engine.close();
    let request = &request_lines(&setup.telemetry_path())[0];
    assert_eq!(request["gen_ai.usage.input_tokens"], 3100);
    assert_eq!(request["gen_ai.usage.cache_creation.input_tokens"], 1000);
    assert_eq!(engine.metrics().requests[0].input_tokens, 3100);
}

#[test]
fn an_estimated_cost_is_marked_in_telemetry_metrics_and_stats() {
    let usage = json!({"prompt_tokens": 20, "completion_tokens": 4});
    let server = TestServer::start(vec![
        openai_answer(Some("A fox jumps."), None),
        openai_answer(Some("A fox jumps."), Some(usage)),
    ]);
    let setup = Setup::new(Api::OpenAi, &server, "gpt-4o", None);
    let engine = setup.engine();
    let estimated = complete(&engine).expect("success");
    let reported = complete(&engine).expect("success");
    engine.close();

    let requests = request_lines(&setup.telemetry_path());
    assert_eq!(requests[0]["prompt_config.cost_estimated"], true);
    assert!(requests[0]["prompt_config.cost_usd"].as_f64().unwrap() > 0.0);
    assert!(requests[1].get("prompt_config.cost_estimated").is_none());

    let series = &engine.metrics().requests[0];
    assert_close(series.estimated_cost_usd, estimated.cost_usd);
    assert_eq!(series.cost_estimated_requests, 1);
    let exposition = engine.prometheus_text();
    assert!(exposition.contains("prompt_config_cost_estimated_usd_total{"));

    let report = analyze(&[setup.telemetry_path()], &StatsOptions::default()).unwrap();
    let group = &report.groups[0];
    assert_close(group.cost_usd, estimated.cost_usd + reported.cost_usd);
    assert_close(group.estimated_cost_usd, estimated.cost_usd);
    assert_eq!(group.cost_estimated_requests, 1);
    assert!(report.to_string().contains("is estimated: 1 request"));
}

#[test]
fn an_openai_refusal_reaches_the_caller_and_the_log() {
    let message =
        json!({"role": "assistant", "content": null, "refusal": "I can't help with that."});
    let choice = json!({"index": 0, "message": message, "finish_reason": "stop"});
    let usage = json!({"prompt_tokens": 20, "completion_tokens": 7});
    let body = json!({"id": "chatcmpl-refusal", "choices": [choice], "usage": usage});
    let server = TestServer::start(vec![Reply::json(200, &body)]);
    let setup = Setup::new(Api::OpenAi, &server, "gpt-4o", None);
    let engine = setup.engine();
    let completion = complete(&engine).expect("a refusal is an answer");
    assert_eq!(completion.finish_reason, Some(FinishReason::Refusal));
    assert_eq!(
        completion.refusal.as_deref(),
        Some("I can't help with that.")
    );
    assert_eq!(completion.raw_finish_reason.as_deref(), Some("stop"));
    let json = serde_json::to_value(&completion).unwrap();
    assert_eq!(json["finish_reason"], "refusal");
    engine.close();
    let request = &request_lines(&setup.telemetry_path())[0];
    assert_eq!(
        request["gen_ai.response.finish_reasons"],
        json!(["refusal"])
    );
    assert_eq!(request["prompt_config.refusal"], true);
}

#[test]
fn an_error_object_in_a_200_body_reaches_the_caller_with_its_type_and_message() {
    let body =
        json!({"error": {"type": "invalid_request_error", "message": "Unknown parameter: 'foo'."}});
    let server = TestServer::start(vec![Reply::json(200, &body)]);
    let setup = Setup::new(Api::OpenAi, &server, "gpt-4o", None);
    let error = complete(&setup.engine()).expect_err("an error body is a failure");
    let text = error.to_string();
    assert!(text.contains("Unknown parameter: 'foo'."), "{text}");
    assert!(text.contains("invalid_request_error"), "{text}");
    // A request mistake is final for the provider: one attempt, no retry.
    assert_eq!(server.requests().len(), 1);
}
