//! The OpenAI provider's structured requests and answers against a loopback server: the output
//! schema as a strict `json_schema` `response_format`, tools and `tool_choice`, history's tool
//! calls and tool results (as OpenAI and as Anthropic wrote them), each request body compared
//! byte for byte with the shape of the Chat Completions API reference
//! (<https://platform.openai.com/docs/api-reference/chat/create>); tool calls, structured
//! answers and refusals read back, whole and streamed.

use prompt_config::client::{FinishReason, StreamChunk};
use prompt_config::output::{RawToolCall, ToolChoice};
use prompt_config::{Message, Role};
use serde_json::{Value, json};

use crate::support::http_server::{Reply, TestServer};
use crate::support::provider_fixtures::{
    Ask, assistant_calling, career_paths_schema, openai, openai_success, tool_loop, weather_call,
    weather_parameters,
};
use crate::support::sse_fixtures::{
    DONE, openai_chunk, openai_tool_call_chunk, openai_usage_chunk, stream_ask,
};

const MODEL: &str = "gpt-4o-mini";

/// The body `ask` sends, as the server received it.
fn sent_body(ask: &Ask) -> String {
    let server = TestServer::start(vec![Reply::json(200, &openai_success())]);
    ask.call(&openai(&server)).expect("success");
    server.single_request().body
}

/// The documented `tools` entry of `get_weather`.
fn weather_function() -> Value {
    json!({
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "parameters": weather_parameters(),
            "strict": true
        }
    })
}

/// A completion whose message is `message` and whose finish reason is `finish_reason`.
fn completion(message: Value, finish_reason: &str) -> Value {
    let mut body = openai_success();
    body["choices"][0]["message"] = message;
    body["choices"][0]["finish_reason"] = json!(finish_reason);
    body
}

#[test]
fn an_output_schema_is_sent_as_a_strict_json_schema_response_format() {
    let body = sent_body(&Ask::new(MODEL).output());
    let expected = json!({
        "model": MODEL,
        "messages": [{"role": "user", "content": "Suggest a career path."}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "career_paths", "schema": career_paths_schema(), "strict": true}
        }
    });
    assert_eq!(body, expected.to_string());
}

#[test]
fn tools_are_sent_as_strict_functions_with_tool_choice_auto() {
    let body = sent_body(&Ask::new(MODEL).tools(ToolChoice::Auto));
    let expected = json!({
        "model": MODEL,
        "messages": [{"role": "user", "content": "Suggest a career path."}],
        "tools": [weather_function()],
        "tool_choice": "auto"
    });
    assert_eq!(body, expected.to_string());
}

#[test]
fn each_tool_choice_has_its_documented_form() {
    let cases = [
        (ToolChoice::Required, json!("required")),
        (ToolChoice::None, json!("none")),
        (
            ToolChoice::Tool("get_weather".into()),
            json!({"type": "function", "function": {"name": "get_weather"}}),
        ),
    ];
    for (choice, expected) in cases {
        let body: Value = serde_json::from_str(&sent_body(&Ask::new(MODEL).tools(choice))).unwrap();
        assert_eq!(body["tool_choice"], expected);
    }
}

#[test]
fn a_tool_choice_without_tools_is_not_sent() {
    let mut ask = Ask::new(MODEL);
    ask.tool_choice = ToolChoice::Required;
    let body: Value = serde_json::from_str(&sent_body(&ask)).unwrap();
    assert_eq!(body.get("tool_choice"), None);
    assert_eq!(body.get("tools"), None);
}

#[test]
fn history_tool_calls_and_results_are_assistant_tool_calls_and_tool_messages() {
    let ask = Ask::new(MODEL).messages(tool_loop("call_Paris01", "call_Rome02"));
    let expected = json!({
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You plan trips."},
            {"role": "user", "content": "Paris or Rome?"},
            {"role": "assistant", "content": "Checking both.", "tool_calls": [
                {"id": "call_Paris01", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_Rome02", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
            ]},
            {"role": "tool", "content": "18C, sunny", "tool_call_id": "call_Paris01"},
            {"role": "tool", "content": "24C, clear", "tool_call_id": "call_Rome02"},
            {"role": "user", "content": "Which is warmer?"}
        ]
    });
    assert_eq!(sent_body(&ask), expected.to_string());
}

#[test]
fn a_history_written_by_anthropic_keeps_its_ids_and_an_empty_turn_sends_null_content() {
    let messages = vec![
        Message::new(Role::User, "Weather in Oslo?"),
        assistant_calling(
            "",
            vec![weather_call("toolu_01A09q90qw90lq917835lq9", "Oslo")],
        ),
        Message::tool_result("toolu_01A09q90qw90lq917835lq9", "-3C, snow"),
    ];
    let expected = json!({
        "model": MODEL,
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "toolu_01A09q90qw90lq917835lq9", "type": "function",
                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}
            ]},
            {"role": "tool", "content": "-3C, snow", "tool_call_id": "toolu_01A09q90qw90lq917835lq9"}
        ]
    });
    assert_eq!(
        sent_body(&Ask::new(MODEL).messages(messages)),
        expected.to_string()
    );
}

#[test]
fn an_id_too_long_for_openai_is_mapped_alike_in_the_call_and_its_result() {
    let long_id = "fc_0f0e50a1476a6c35006912c58dc9f8819192c25864eb16f07f";
    let messages = vec![
        Message::new(Role::User, "Weather in Oslo?"),
        assistant_calling("", vec![weather_call(long_id, "Oslo")]),
        Message::tool_result(long_id, "-3C, snow"),
    ];
    let body: Value =
        serde_json::from_str(&sent_body(&Ask::new(MODEL).messages(messages))).unwrap();
    let call_id = body["messages"][1]["tool_calls"][0]["id"].as_str().unwrap();
    assert_eq!(body["messages"][2]["tool_call_id"], json!(call_id));
    assert!(call_id.len() <= 40, "{call_id}");
    assert!(call_id.starts_with("fc_0f0e50a1476a6c350069"), "{call_id}");
}

#[test]
fn tool_calls_are_read_with_their_arguments_text_as_sent() {
    let message = json!({
        "role": "assistant",
        "content": null,
        "tool_calls": [
            {"id": "call_a", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
            {"id": "call_b", "type": "function",
                "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
        ],
        "refusal": null
    });
    let server = TestServer::start(vec![Reply::json(200, &completion(message, "tool_calls"))]);
    let response = Ask::new(MODEL)
        .tools(ToolChoice::Auto)
        .call(&openai(&server))
        .expect("success");
    assert_eq!(response.text, "");
    assert_eq!(response.finish_reason, Some(FinishReason::ToolCalls));
    let expected = [
        ("call_a", "{\"city\": \"Paris\"}"),
        ("call_b", "{\"city\":\"Rome\"}"),
    ];
    let calls: Vec<RawToolCall> = expected
        .iter()
        .map(|(id, arguments)| RawToolCall {
            id: id.to_string(),
            name: "get_weather".into(),
            arguments: arguments.to_string(),
        })
        .collect();
    assert_eq!(response.tool_calls, calls);
}

#[test]
fn a_structured_answer_is_the_content_text() {
    let answer = r#"{"career_paths":[{"title":"Data engineer","first_step":"Learn SQL"}]}"#;
    let message = json!({"role": "assistant", "content": answer, "refusal": null});
    let server = TestServer::start(vec![Reply::json(200, &completion(message, "stop"))]);
    let response = Ask::new(MODEL)
        .output()
        .call(&openai(&server))
        .expect("success");
    assert_eq!(response.text, answer);
    assert_eq!(response.finish_reason, Some(FinishReason::Stop));
    assert!(response.tool_calls.is_empty());
}

#[test]
fn a_refusal_of_a_structured_answer_is_a_refusal_not_text() {
    let message =
        json!({"role": "assistant", "content": null, "refusal": "I can't help with that."});
    let server = TestServer::start(vec![Reply::json(200, &completion(message, "stop"))]);
    let response = Ask::new(MODEL)
        .output()
        .call(&openai(&server))
        .expect("success");
    assert_eq!(response.finish_reason, Some(FinishReason::Refusal));
    assert_eq!(response.refusal.as_deref(), Some("I can't help with that."));
    assert_eq!(response.text, "");
}

#[test]
fn the_streamed_request_is_the_plain_one_plus_the_stream_fields() {
    let events = vec![openai_chunk(json!({}), json!("stop")), DONE.to_string()];
    let server = TestServer::start(vec![Reply::events(events)]);
    let ask = Ask::new(MODEL).output().tools(ToolChoice::Required);
    stream_ask(&openai(&server), &ask).response();
    let expected = json!({
        "model": MODEL,
        "messages": [{"role": "user", "content": "Suggest a career path."}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "career_paths", "schema": career_paths_schema(), "strict": true}
        },
        "tools": [weather_function()],
        "tool_choice": "required",
        "stream": true,
        "stream_options": {"include_usage": true}
    });
    assert_eq!(server.single_request().body, expected.to_string());
}

#[test]
fn streamed_tool_call_pieces_are_handed_out_and_assembled_in_the_final_response() {
    let events = vec![
        openai_chunk(json!({"role": "assistant", "content": null}), Value::Null),
        openai_tool_call_chunk(0, Some(("call_a", "get_weather")), ""),
        openai_tool_call_chunk(0, None, "{\"ci"),
        openai_tool_call_chunk(0, None, "ty\":\"Paris\"}"),
        openai_tool_call_chunk(1, Some(("call_b", "get_weather")), "{\"city\":\"Rome\"}"),
        openai_chunk(json!({}), json!("tool_calls")),
        openai_usage_chunk(80, 40, 0),
        DONE.to_string(),
    ];
    let server = TestServer::start(vec![Reply::events(events)]);
    let read = stream_ask(&openai(&server), &Ask::new(MODEL).tools(ToolChoice::Auto));
    let piece = |index, first: Option<(&str, &str)>, arguments: &str| StreamChunk::ToolCallDelta {
        index,
        id: first.map(|(id, _)| id.to_string()),
        name: first.map(|(_, name)| name.to_string()),
        arguments: arguments.to_string(),
    };
    assert_eq!(
        read.tool_call_deltas,
        [
            piece(0, Some(("call_a", "get_weather")), ""),
            piece(0, None, "{\"ci"),
            piece(0, None, "ty\":\"Paris\"}"),
            piece(1, Some(("call_b", "get_weather")), "{\"city\":\"Rome\"}"),
        ]
    );
    assert!(read.deltas.is_empty());
    let response = read.response();
    assert_eq!(response.finish_reason, Some(FinishReason::ToolCalls));
    let arguments: Vec<&str> = response
        .tool_calls
        .iter()
        .map(|call| call.arguments.as_str())
        .collect();
    assert_eq!(arguments, ["{\"city\":\"Paris\"}", "{\"city\":\"Rome\"}"]);
    assert_eq!(response.tool_calls[1].id, "call_b");
}

#[test]
fn arguments_a_compatible_server_sends_as_an_object_are_read_as_json_text() {
    let message = json!({
        "role": "assistant",
        "content": null,
        "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
    });
    let server = TestServer::start(vec![Reply::json(200, &completion(message, "tool_calls"))]);
    let response = Ask::new(MODEL)
        .tools(ToolChoice::Auto)
        .call(&openai(&server))
        .expect("success");
    assert_eq!(response.tool_calls[0].arguments, "{\"city\":\"Paris\"}");
}
