//! Conversation history through the engine: appended after the template's messages and covered
//! by the prompt hash; refused at resolve with `invalid_messages` (index, field) by the rules
//! and the feature's `history` limits; counted in budget reservations and estimated costs;
//! recorded in telemetry only under `telemetry.record_text`. The README's Rust example runs as
//! written.

use std::fs;

use prompt_config::output::ToolCall;
use prompt_config::{Context, Engine, ErrorKind, Message, Role};
use serde_json::{Value, json};

use crate::support::http_server::{Reply, TestServer};
use crate::support::one_feature::{OneFeature, asking};

/// This file's own text, to check the README still holds the example below line for line.
const SOURCE: &str = include_str!("history.rs");
const README: &str = include_str!("../../README.md");

/// A configuration whose feature `ask` calls the mock provider's model `m`, priced at
/// `input_per_million` per million input tokens (output free), with `feature_extra` merged
/// into the feature document.
fn mock_feature(input_per_million: f64, feature_extra: Value) -> OneFeature {
    let providers = json!({"providers": {"mock": {"kind": "mock", "models": {"m": {
        "input_per_million": input_per_million, "output_per_million": 0.0}}}}});
    let config = OneFeature::new(&providers, "mock", "m");
    let path = config.root.join("config/features/ask.json");
    let mut feature: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    if let (Value::Object(feature), Value::Object(extra)) = (&mut feature, feature_extra) {
        feature.extend(extra);
    }
    fs::write(&path, feature.to_string()).unwrap();
    config
}

fn open(config: &OneFeature) -> Engine {
    Engine::open(config.options()).unwrap()
}

/// A tool round: the assistant's call and its result.
fn tool_round(result: &str) -> Vec<Message> {
    vec![
        Message {
            tool_calls: vec![ToolCall {
                id: "call_1".into(),
                name: "salary_lookup".into(),
                arguments: json!({"role": "data analyst"}),
            }],
            ..Message::new(Role::Assistant, "")
        },
        Message::tool_result("call_1", result),
    ]
}

// README: conversation history
#[rustfmt::skip]
fn readme_context() -> Context {
use prompt_config::{Context, Message, Role};
use prompt_config::output::ToolCall;

let context = Context::new("user-42")
    .variable("question", "Which path pays best?")
    .message(Message::new(Role::User, "Which path pays best?"))
    .message(Message {
        // The assistant turn that asked for a tool (`completion.text`, `completion.tool_calls`).
        tool_calls: vec![ToolCall { id: "call_1".into(), name: "salary_lookup".into(),
                                    arguments: serde_json::json!({"role": "data analyst"}) }],
        ..Message::new(Role::Assistant, "")
    })
    .message(Message::tool_result("call_1", r#"{"median": 52000, "currency": "GBP"}"#));
// or `.with_messages(vec![...])`; `context.messages()` reads them back.
// README: end
    context
}

#[test]
fn the_readme_history_example_is_the_readme_s() {
    let start = SOURCE
        .find(
            "// README: conversation history\n#[rustfmt::skip]\nfn readme_context() -> Context {\n",
        )
        .unwrap();
    let body_start = SOURCE[start..].find("use prompt_config").unwrap() + start;
    let body_end = SOURCE.find("// README: end").unwrap();
    let example = SOURCE[body_start..body_end].trim_end();
    assert!(
        README.contains(&format!("```rust\n{example}\n```")),
        "README.md no longer holds this example:\n{example}"
    );
}

#[test]
fn the_history_follows_the_template_messages() {
    let config = mock_feature(1.0, json!({}));
    let context = readme_context();
    let resolution = open(&config).resolve("ask", &context).unwrap();
    assert_eq!(resolution.messages.len(), 4);
    assert_eq!(
        resolution.messages[0],
        Message::new(Role::User, "Question: Which path pays best?")
    );
    assert_eq!(&resolution.messages[1..], context.messages());
}

#[test]
fn the_prompt_hash_covers_the_history() {
    let config = mock_feature(1.0, json!({}));
    let engine = open(&config);
    let hash = |context: &Context| engine.resolve("ask", context).unwrap().prompt_hash;
    let plain = hash(&asking("Which path pays best?"));
    let first = hash(&asking("Which path pays best?").with_messages(tool_round("52000 GBP")));
    let second = hash(&asking("Which path pays best?").with_messages(tool_round("48000 GBP")));
    assert_ne!(plain, first);
    assert_ne!(first, second);
}

#[test]
fn a_broken_history_is_invalid_messages_with_index_and_field() {
    let config = mock_feature(1.0, json!({}));
    let context = asking("q").with_messages(vec![
        Message::new(Role::User, "Hi"),
        Message::tool_result("call_9", "42"),
    ]);
    let error = open(&config).complete("ask", &context).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidMessages);
    assert!(!error.kind().is_retryable());
    let details = error.details();
    assert_eq!(
        (&details["feature"], &details["index"], &details["field"]),
        (&json!("ask"), &json!(1), &json!("/tool_call_id"))
    );
    assert!(
        error
            .to_string()
            .starts_with("history message 1 (/tool_call_id): "),
        "{error}"
    );
}

#[test]
fn the_feature_s_history_limits_apply() {
    let config = mock_feature(
        1.0,
        json!({"history": {"max_messages": 2, "max_bytes": 40}}),
    );
    let engine = open(&config);
    let turns = |count: usize, text: &str| -> Context {
        asking("q").with_messages(
            (0..count)
                .map(|turn| {
                    let role = if turn % 2 == 0 {
                        Role::User
                    } else {
                        Role::Assistant
                    };
                    Message::new(role, text)
                })
                .collect(),
        )
    };
    assert!(engine.resolve("ask", &turns(2, "short")).is_ok());
    let error = engine.resolve("ask", &turns(3, "short")).unwrap_err();
    assert_eq!(
        (
            error.details()["index"].clone(),
            error.details()["field"].clone()
        ),
        (json!(2), json!(""))
    );
    let error = engine
        .resolve("ask", &turns(2, &"x".repeat(21)))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidMessages);
    assert_eq!(error.details()["index"], 1);
    assert!(error.to_string().contains("max_bytes"), "{error}");
}

#[test]
fn a_history_setting_with_an_unknown_key_is_a_config_problem() {
    let config = mock_feature(1.0, json!({"history": {"max_turns": 2}}));
    let error = Engine::open(config.options()).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConfigInvalid);
    assert!(error.to_string().contains("history"), "{error}");
}

#[test]
fn the_budget_reservation_counts_the_history() {
    // $1000 per million input tokens: the template alone reserves about a cent, a 4 KB tool
    // result about a dollar, past the $0.50 left of the day.
    let config = mock_feature(
        1000.0,
        json!({"budget": {"daily_usd": 0.5, "policy": "block"}}),
    );
    let engine = open(&config);
    assert!(engine.complete("ask", &asking("q")).is_ok());
    let long = asking("q").with_messages(tool_round(&"salary data ".repeat(350)));
    let error = engine.complete("ask", &long).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BudgetExceeded, "{error}");
}

#[test]
fn an_estimated_input_grows_with_the_history() {
    // An OpenAI-compatible server that reports no usage: the input tokens are counted here.
    let body = json!({"id": "c", "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": "Analyst."}}]});
    let server = TestServer::start(vec![Reply::json(200, &body), Reply::json(200, &body)]);
    let provider = json!({"kind": "openai_compatible", "base_url": format!("{}/v1", server.url()),
        "models": {"m": {"input_per_million": 1.0, "output_per_million": 1.0}}});
    let config = OneFeature::new(&json!({"providers": {"local": provider}}), "local", "m");
    let engine = Engine::open(config.options()).unwrap();
    let plain = engine.complete("ask", &asking("q")).unwrap();
    let with = engine
        .complete(
            "ask",
            &asking("q").with_messages(tool_round(&"salary ".repeat(100))),
        )
        .unwrap();
    assert!(plain.cost_estimated && with.cost_estimated);
    assert!(
        with.usage.input_tokens > plain.usage.input_tokens + 100,
        "{} vs {}",
        with.usage.input_tokens,
        plain.usage.input_tokens
    );
    assert!(with.cost_usd > plain.cost_usd);
}

#[test]
fn telemetry_records_the_history_only_under_record_text() {
    const SECRET: &str = "my salary is 41234 GBP";
    for record_text in [false, true] {
        let config = mock_feature(1.0, json!({"telemetry": {"record_text": record_text}}));
        let log = config.root.join("telemetry.jsonl");
        let engine = Engine::open(config.options().with_telemetry(&log)).unwrap();
        let context = asking("q").with_messages(vec![
            Message::new(Role::User, SECRET),
            Message::new(Role::Assistant, "Noted."),
            Message::new(Role::User, "Paths?"),
        ]);
        engine.complete("ask", &context).unwrap();
        engine.close();
        let written = fs::read_to_string(&log).unwrap();
        assert!(!written.is_empty());
        assert_eq!(
            written.contains(SECRET),
            record_text,
            "record_text {record_text}"
        );
    }
}
