//! The Anthropic provider's structured requests and answers against a loopback server: the
//! output schema sent natively (`output_config.format`) to the models that take it and as one
//! forced tool to the others, tools and `tool_choice`, history's tool calls as `tool_use` blocks
//! and tool results as `tool_result` blocks of one user turn (as Anthropic and as OpenAI wrote
//! them), each request body compared byte for byte with the shape of the Messages API reference
//! (<https://docs.claude.com/en/api/messages>); tool calls, the forced tool's answer as text,
//! native answers and refusals read back, whole and streamed.

use prompt_config::client::{FinishReason, StreamChunk};
use prompt_config::output::{RawToolCall, ToolChoice};
use prompt_config::{Message, Role};
use serde_json::{Value, json};

use crate::support::http_server::{Reply, TestServer};
use crate::support::provider_fixtures::{
    Ask, anthropic, anthropic_success, assistant_calling, career_paths_schema, tool_loop,
    weather_call, weather_parameters,
};
use crate::support::sse_fixtures::{
    anthropic_block_stop, anthropic_input_json, anthropic_message_delta, anthropic_start,
    anthropic_stop, anthropic_text, anthropic_tool_use_start, named, stream_ask,
};

/// A model that takes the output schema natively.
const NATIVE: &str = "claude-sonnet-4-5-20250929";

/// A model that gets the forced output tool.
const FORCED: &str = "claude-opus-4-1-20250805";

/// What the forced output tool tells the model.
const OUTPUT_TOOL_DESCRIPTION: &str =
    "Give your final answer by calling this tool: its input is the answer, matching the schema.";

/// The body `ask` sends, as the server received it, and its `anthropic-beta` header.
fn sent(ask: &Ask) -> (String, Option<String>) {
    let server = TestServer::start(vec![Reply::json(200, &anthropic_success())]);
    ask.call(&anthropic(&server)).expect("success");
    let request = server.single_request();
    let beta = request.header("anthropic-beta").map(str::to_string);
    (request.body, beta)
}

fn sent_body(ask: &Ask) -> String {
    sent(ask).0
}

fn sent_json(ask: &Ask) -> Value {
    serde_json::from_str(&sent_body(ask)).expect("JSON body")
}

/// The documented `tools` entry of `get_weather`.
fn weather_tool_entry() -> Value {
    json!({
        "name": "get_weather",
        "description": "Current weather in a city.",
        "input_schema": weather_parameters()
    })
}

/// The forced output tool's entry.
fn output_tool_entry() -> Value {
    json!({
        "name": "career_paths",
        "description": OUTPUT_TOOL_DESCRIPTION,
        "input_schema": career_paths_schema()
    })
}

/// A message whose content is `content` and whose stop reason is `stop_reason`.
fn message(content: Value, stop_reason: &str) -> Value {
    let mut body = anthropic_success();
    body["content"] = content;
    body["stop_reason"] = json!(stop_reason);
    body
}

const ANSWER: &str = r#"{"career_paths":[{"title":"Data engineer","first_step":"Learn SQL"}]}"#;

#[test]
fn a_model_with_native_structured_output_gets_output_config_format_and_no_beta_header() {
    let (body, beta) = sent(&Ask::new(NATIVE).output());
    let expected = json!({
        "model": NATIVE,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Suggest a career path."}],
        "output_config": {"format": {"type": "json_schema", "schema": career_paths_schema()}}
    });
    assert_eq!(body, expected.to_string());
    assert_eq!(beta, None);
}

#[test]
fn the_native_format_is_sent_the_schema_within_the_array_bounds_anthropic_takes() {
    let mut schema = career_paths_schema();
    schema["properties"]["career_paths"]["minItems"] = json!(3);
    schema["properties"]["career_paths"]["maxItems"] = json!(3);
    let mut ask = Ask::new(NATIVE);
    ask.output = Some(
        prompt_config::output::OutputSchema::compile("career_paths", schema, true)
            .expect("valid schema"),
    );
    let body = sent_json(&ask);
    let mut portable = career_paths_schema();
    portable["properties"]["career_paths"]["minItems"] = json!(1);
    assert_eq!(
        body["output_config"]["format"]["schema"], portable,
        "minItems above 1 is lowered to 1 and maxItems left out of the native format"
    );
}

#[test]
fn another_model_gets_one_forced_tool_whose_input_schema_is_the_schema() {
    let expected = json!({
        "model": FORCED,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Suggest a career path."}],
        "tools": [output_tool_entry()],
        "tool_choice": {"type": "tool", "name": "career_paths"}
    });
    assert_eq!(sent_body(&Ask::new(FORCED).output()), expected.to_string());
}

#[test]
fn the_forced_output_tool_joins_declared_tools_and_any_tool_must_be_called() {
    let body = sent_json(&Ask::new(FORCED).output().tools(ToolChoice::Auto));
    assert_eq!(
        body["tools"],
        json!([weather_tool_entry(), output_tool_entry()])
    );
    assert_eq!(body["tool_choice"], json!({"type": "any"}));
    let no_tools = sent_json(&Ask::new(FORCED).output().tools(ToolChoice::None));
    assert_eq!(
        no_tools["tool_choice"],
        json!({"type": "tool", "name": "career_paths"})
    );
}

#[test]
fn tools_are_sent_with_their_input_schema_and_tool_choice_auto() {
    let expected = json!({
        "model": NATIVE,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Suggest a career path."}],
        "tools": [weather_tool_entry()],
        "tool_choice": {"type": "auto"}
    });
    assert_eq!(
        sent_body(&Ask::new(NATIVE).tools(ToolChoice::Auto)),
        expected.to_string()
    );
}

#[test]
fn each_tool_choice_has_its_documented_form() {
    let cases = [
        (ToolChoice::Required, json!({"type": "any"})),
        (ToolChoice::None, json!({"type": "none"})),
        (
            ToolChoice::Tool("get_weather".into()),
            json!({"type": "tool", "name": "get_weather"}),
        ),
    ];
    for (choice, expected) in cases {
        assert_eq!(
            sent_json(&Ask::new(NATIVE).tools(choice))["tool_choice"],
            expected
        );
    }
}

#[test]
fn a_history_written_by_openai_becomes_tool_use_blocks_and_one_user_turn_of_results() {
    let ask = Ask::new(NATIVE).messages(tool_loop("call_Paris01", "call_Rome02"));
    let expected = json!({
        "model": NATIVE,
        "max_tokens": 1024,
        "system": "You plan trips.",
        "messages": [
            {"role": "user", "content": "Paris or Rome?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking both."},
                {"type": "tool_use", "id": "call_Paris01", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_Rome02", "name": "get_weather", "input": {"city": "Rome"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_Paris01", "content": "18C, sunny"},
                {"type": "tool_result", "tool_use_id": "call_Rome02", "content": "24C, clear"},
                {"type": "text", "text": "Which is warmer?"}
            ]}
        ]
    });
    assert_eq!(sent_body(&ask), expected.to_string());
}

#[test]
fn an_assistant_turn_with_only_tool_calls_sends_no_empty_text_block() {
    let messages = vec![
        Message::new(Role::User, "Weather in Oslo?"),
        assistant_calling(
            "",
            vec![weather_call("toolu_01A09q90qw90lq917835lq9", "Oslo")],
        ),
        Message::tool_result("toolu_01A09q90qw90lq917835lq9", "-3C, snow"),
    ];
    let expected = json!({
        "model": NATIVE,
        "max_tokens": 1024,
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather", "input": {"city": "Oslo"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9", "content": "-3C, snow"}
            ]}
        ]
    });
    assert_eq!(
        sent_body(&Ask::new(NATIVE).messages(messages)),
        expected.to_string()
    );
}

#[test]
fn an_id_anthropic_would_reject_is_mapped_alike_in_the_call_and_its_result() {
    let gateway_id = "functions.get_weather:0";
    let messages = vec![
        Message::new(Role::User, "Weather in Oslo?"),
        assistant_calling("", vec![weather_call(gateway_id, "Oslo")]),
        Message::tool_result(gateway_id, "-3C, snow"),
    ];
    let body = sent_json(&Ask::new(NATIVE).messages(messages));
    let id = body["messages"][1]["content"][0]["id"].as_str().unwrap();
    assert_eq!(body["messages"][2]["content"][0]["tool_use_id"], json!(id));
    assert!(id.starts_with("functions_get_weather_0_"), "{id}");
    assert!(
        id.bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-'),
        "{id}"
    );
}

#[test]
fn adjacent_user_messages_are_merged_into_one_turn_of_text_blocks() {
    let messages = vec![
        Message::new(Role::User, "Context: a trip in May."),
        Message::new(Role::User, "Paris or Rome?"),
    ];
    let body = sent_json(&Ask::new(NATIVE).messages(messages));
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": [
            {"type": "text", "text": "Context: a trip in May."},
            {"type": "text", "text": "Paris or Rome?"}
        ]}])
    );
}

#[test]
fn tool_use_blocks_are_read_as_tool_calls_with_their_input_as_json_text() {
    let content = json!([
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_b", "name": "get_weather", "input": {"city": "Rome"}}
    ]);
    let server = TestServer::start(vec![Reply::json(200, &message(content, "tool_use"))]);
    let response = Ask::new(NATIVE)
        .tools(ToolChoice::Auto)
        .call(&anthropic(&server))
        .expect("success");
    assert_eq!(response.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(response.text, "Checking.");
    let call = |id: &str, city: &str| RawToolCall {
        id: id.into(),
        name: "get_weather".into(),
        arguments: format!("{{\"city\":\"{city}\"}}"),
    };
    assert_eq!(
        response.tool_calls,
        [call("toolu_a", "Paris"), call("toolu_b", "Rome")]
    );
}

#[test]
fn the_forced_tool_answer_is_text_with_a_natural_stop_not_a_tool_call() {
    let input: Value = serde_json::from_str(ANSWER).unwrap();
    let content =
        json!([{"type": "tool_use", "id": "toolu_x", "name": "career_paths", "input": input}]);
    let server = TestServer::start(vec![Reply::json(200, &message(content, "tool_use"))]);
    let response = Ask::new(FORCED)
        .output()
        .call(&anthropic(&server))
        .expect("success");
    assert_eq!(response.text, ANSWER);
    assert_eq!(response.finish_reason, Some(FinishReason::Stop));
    assert!(response.tool_calls.is_empty());
}

#[test]
fn a_tool_named_as_the_schema_is_a_tool_call_when_the_answer_was_asked_natively() {
    let content =
        json!([{"type": "tool_use", "id": "toolu_x", "name": "career_paths", "input": {}}]);
    let server = TestServer::start(vec![Reply::json(200, &message(content, "tool_use"))]);
    let response = Ask::new(NATIVE)
        .output()
        .call(&anthropic(&server))
        .expect("success");
    assert_eq!(response.tool_calls.len(), 1);
    assert_eq!(response.finish_reason, Some(FinishReason::ToolCalls));
}

#[test]
fn a_native_structured_answer_is_the_text_block() {
    let content = json!([{"type": "text", "text": ANSWER}]);
    let server = TestServer::start(vec![Reply::json(200, &message(content, "end_turn"))]);
    let response = Ask::new(NATIVE)
        .output()
        .call(&anthropic(&server))
        .expect("success");
    assert_eq!(response.text, ANSWER);
    assert_eq!(response.finish_reason, Some(FinishReason::Stop));
}

#[test]
fn a_refusal_of_a_forced_tool_answer_is_a_refusal_with_its_explanation() {
    let content = json!([{"type": "text", "text": "I can't help with that."}]);
    let server = TestServer::start(vec![Reply::json(200, &message(content, "refusal"))]);
    let response = Ask::new(FORCED)
        .output()
        .call(&anthropic(&server))
        .expect("success");
    assert_eq!(response.finish_reason, Some(FinishReason::Refusal));
    assert_eq!(response.refusal.as_deref(), Some("I can't help with that."));
}

fn stream_start() -> String {
    anthropic_start(Some(json!({"input_tokens": 30, "output_tokens": 1})))
}

#[test]
fn streamed_tool_use_blocks_are_handed_out_as_tool_call_pieces_and_assembled() {
    let events = vec![
        stream_start(),
        named(
            "content_block_start",
            &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        anthropic_text("Checking."),
        anthropic_block_stop(0),
        anthropic_tool_use_start(1, "toolu_a", "get_weather"),
        anthropic_input_json(1, ""),
        anthropic_input_json(1, "{\"city\": "),
        anthropic_input_json(1, "\"Paris\"}"),
        anthropic_block_stop(1),
        anthropic_message_delta("tool_use", 25),
        anthropic_stop(),
    ];
    let server = TestServer::start(vec![Reply::events(events)]);
    let read = stream_ask(
        &anthropic(&server),
        &Ask::new(NATIVE).tools(ToolChoice::Auto),
    );
    assert_eq!(read.deltas, ["Checking."]);
    let piece =
        |id: Option<&str>, name: Option<&str>, arguments: &str| StreamChunk::ToolCallDelta {
            index: 0,
            id: id.map(str::to_string),
            name: name.map(str::to_string),
            arguments: arguments.to_string(),
        };
    assert_eq!(
        read.tool_call_deltas,
        [
            piece(Some("toolu_a"), Some("get_weather"), ""),
            piece(None, None, "{\"city\": "),
            piece(None, None, "\"Paris\"}"),
        ]
    );
    let response = read.response();
    assert_eq!(response.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(
        response.tool_calls,
        [RawToolCall {
            id: "toolu_a".into(),
            name: "get_weather".into(),
            arguments: "{\"city\": \"Paris\"}".into(),
        }]
    );
    assert_eq!(response.text, "Checking.");
}

#[test]
fn a_streamed_forced_tool_answer_arrives_as_text_deltas() {
    let events = vec![
        stream_start(),
        anthropic_tool_use_start(0, "toolu_x", "career_paths"),
        anthropic_input_json(0, "{\"career_paths\":[{\"title\":\"Data engineer\","),
        anthropic_input_json(0, "\"first_step\":\"Learn SQL\"}]}"),
        anthropic_block_stop(0),
        anthropic_message_delta("tool_use", 25),
        anthropic_stop(),
    ];
    let server = TestServer::start(vec![Reply::events(events)]);
    let read = stream_ask(&anthropic(&server), &Ask::new(FORCED).output());
    assert!(read.tool_call_deltas.is_empty());
    assert_eq!(read.deltas.concat(), ANSWER);
    let response = read.response();
    assert_eq!(response.text, ANSWER);
    assert_eq!(response.finish_reason, Some(FinishReason::Stop));
    assert!(response.tool_calls.is_empty());
}

#[test]
fn the_streamed_forced_tool_request_is_the_plain_one_plus_stream_true() {
    let events = vec![
        stream_start(),
        anthropic_message_delta("end_turn", 1),
        anthropic_stop(),
    ];
    let server = TestServer::start(vec![Reply::events(events)]);
    stream_ask(&anthropic(&server), &Ask::new(FORCED).output()).response();
    let expected = json!({
        "model": FORCED,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Suggest a career path."}],
        "tools": [output_tool_entry()],
        "tool_choice": {"type": "tool", "name": "career_paths"},
        "stream": true
    });
    assert_eq!(server.single_request().body, expected.to_string());
}
