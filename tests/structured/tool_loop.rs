//! Multi-turn tool loops through the engine, as a caller runs them: the model asks for a tool,
//! the caller runs it and calls again with the assistant's turn and the tool result as
//! history, and the model answers. On OpenAI's and Anthropic's loopback servers, and across a
//! failover in the middle of the loop, where the history written by OpenAI's answer is sent to
//! Anthropic in Anthropic's own form.

use prompt_config::client::{AttemptOutcome, Completion, FinishReason};
use prompt_config::{Context, Engine, Message, Role};
use serde_json::{Value, json};

use crate::support::engine_faults::{ANTHROPIC, OPENAI, Setup, TEXT, anthropic_success};
use crate::support::engine_faults::{openai_success, providers};
use crate::support::http_server::{Reply, TestServer};

use super::schema_fixtures::edit_feature;

/// The tool the feature declares.
fn declare_weather(setup: &Setup) {
    edit_feature(setup, |feature| {
        feature["versions"]["1.0.0"]["tools"] = json!([{
            "name": "get_weather",
            "description": "The weather in a city now.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": false
            }
        }]);
    });
}

/// OpenAI asking for `get_weather` in Paris with call id `call_paris`.
fn openai_tool_call() -> Reply {
    let call = json!({"id": "call_paris", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}});
    let message = json!({"role": "assistant", "content": null, "tool_calls": [call]});
    let choice = json!({"index": 0, "message": message, "finish_reason": "tool_calls"});
    let usage = json!({"prompt_tokens": 30, "completion_tokens": 9});
    Reply::json(
        200,
        &json!({"id": "chatcmpl-tool", "model": "gpt-test", "choices": [choice], "usage": usage}),
    )
}

/// Anthropic asking for `get_weather` in Paris with call id `toolu_paris`.
fn anthropic_tool_call() -> Reply {
    let content = json!([{"type": "tool_use", "id": "toolu_paris", "name": "get_weather",
        "input": {"city": "Paris"}}]);
    let usage = json!({"input_tokens": 30, "output_tokens": 9});
    Reply::json(
        200,
        &json!({"id": "msg_tool", "type": "message", "role": "assistant", "content": content,
            "stop_reason": "tool_use", "usage": usage}),
    )
}

fn ask(engine: &Engine, history: Vec<Message>) -> Completion {
    let context = Context::new("user-1")
        .variable("text", TEXT)
        .with_messages(history);
    engine
        .complete("summary", &context)
        .expect("the call succeeds")
}

/// Runs the tool the model asked for and returns the history of the round: the assistant's
/// turn with its calls, then one result per call.
fn run_tools(completion: &Completion) -> Vec<Message> {
    assert_eq!(completion.finish_reason, Some(FinishReason::ToolCalls));
    let mut history = vec![Message {
        tool_calls: completion.tool_calls.clone(),
        ..Message::new(Role::Assistant, completion.text.clone())
    }];
    for call in &completion.tool_calls {
        assert_eq!(call.name, "get_weather");
        let city = call.arguments["city"].as_str().expect("a city");
        history.push(Message::tool_result(&call.id, format!("{city}: 18 C, dry")));
    }
    history
}

fn body(server: &TestServer, index: usize) -> Value {
    server.requests()[index].json()
}

#[test]
fn an_openai_tool_loop_sends_the_call_and_its_result_back_as_openai_messages() {
    let server = TestServer::start(vec![openai_tool_call(), openai_success()]);
    let setup = Setup::new(providers(Some(&server), None), &[OPENAI]);
    declare_weather(&setup);
    let engine = setup.engine();

    let first = ask(&engine, Vec::new());
    assert_eq!(first.tool_calls[0].id, "call_paris");
    assert_eq!(first.tool_calls[0].arguments, json!({"city": "Paris"}));
    let answer = ask(&engine, run_tools(&first));

    assert_eq!(answer.text, "A fox jumps.");
    assert!(answer.tool_calls.is_empty());
    let messages = &body(&server, 1)["messages"];
    assert_eq!(
        messages[2],
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": "call_paris",
            "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]})
    );
    assert_eq!(
        messages[3],
        json!({"role": "tool", "tool_call_id": "call_paris", "content": "Paris: 18 C, dry"})
    );
}

#[test]
fn an_anthropic_tool_loop_sends_tool_use_and_tool_result_blocks() {
    let server = TestServer::start(vec![anthropic_tool_call(), anthropic_success()]);
    let setup = Setup::new(providers(None, Some(&server)), &[ANTHROPIC]);
    declare_weather(&setup);
    let engine = setup.engine();

    let first = ask(&engine, Vec::new());
    assert_eq!(first.tool_calls[0].id, "toolu_paris");
    let answer = ask(&engine, run_tools(&first));

    assert_eq!(answer.text, "A fox jumps.");
    let messages = &body(&server, 1)["messages"];
    assert_eq!(
        messages[1],
        json!({"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_paris",
            "name": "get_weather", "input": {"city": "Paris"}}]})
    );
    assert_eq!(
        messages[2],
        json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_paris",
            "content": "Paris: 18 C, dry"}]})
    );
}

#[test]
fn a_failover_in_the_middle_of_a_loop_translates_openais_history_for_anthropic() {
    let openai = TestServer::start(vec![openai_tool_call(), Reply::status(503)]);
    let anthropic = TestServer::start(vec![anthropic_success()]);
    let setup = Setup::both(&openai, &anthropic);
    declare_weather(&setup);
    let engine = setup.engine();

    let first = ask(&engine, Vec::new());
    assert_eq!(first.provider, "openai");
    let answer = ask(&engine, run_tools(&first));

    assert_eq!(answer.provider, "anthropic");
    assert_eq!(answer.text, "A fox jumps.");
    let outcomes: Vec<AttemptOutcome> = answer.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(outcomes, [AttemptOutcome::Failed, AttemptOutcome::Success]);
    let sent = anthropic.single_request().json();
    assert_eq!(sent["system"], json!("You are terse."));
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "user", "content": format!("Summarise: {TEXT}")},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "call_paris",
                "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_paris",
                "content": "Paris: 18 C, dry"}]}
        ])
    );
    assert!(
        sent["tools"][0]["input_schema"].is_object(),
        "the tools go with the history"
    );
}
