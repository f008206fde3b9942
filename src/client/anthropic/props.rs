//! Properties of the Messages encoding and reading of tool calls: any `tool_use` block is read
//! back with its input as JSON text that parses to the same value, the forced output tool's
//! input becomes the text whole or streamed, any history tool call is encoded with its input
//! and with ids the API accepts and that still match, and no body makes the reader panic.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::stream::MessagesStreamDecoder;
use super::{Messages, parse_message};
use crate::client::endpoint::{WireFormat, test_request};
use crate::client::event_stream::{Step, StreamDecoder};
use crate::client::sse::SseEvent;
use crate::config::ModelParameters;
use crate::output::ToolCall;
use crate::prompt::{Message, Role};

/// Any text: empty, NUL bytes, quotes and backslashes, any Unicode, and one huge value (20 KB
/// of 4-byte characters).
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[\\x00\"\\\\{}.:]{1,8}",
        "\\PC{0,64}",
        ".{0,256}",
        Just("\u{1F600}".repeat(5000)),
    ]
}

/// Short text for the keys and strings inside JSON values: control characters, quotes,
/// backslashes, any Unicode.
fn short_text() -> impl Strategy<Value = String> {
    "[\\x00-\\x1f\"\\\\]{0,3}\\PC{0,12}"
}

/// Any JSON object without floats (a float's text may differ after a round trip).
fn any_object() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        short_text().prop_map(Value::String),
    ];
    let value = leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(short_text(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    });
    prop::collection::btree_map(short_text(), value, 0..6)
        .prop_map(|map| Value::Object(map.into_iter().collect()))
}

fn event(name: &str, data: Value) -> SseEvent {
    SseEvent {
        event: name.into(),
        data: data.to_string(),
        id: String::new(),
        retry: None,
    }
}

fn accepted_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
}

proptest! {
    #[test]
    fn any_tool_use_block_is_read_with_its_input_as_json_text(
        id in any_text(), name in any_text(), input in any_object()
    ) {
        let body = json!({"content": [{"type": "tool_use", "id": id, "name": name, "input": input}],
            "stop_reason": "tool_use"});
        let response = parse_message(body.to_string().as_bytes(), None).expect("a message");
        prop_assert_eq!(&response.tool_calls[0].id, &id);
        prop_assert_eq!(&response.tool_calls[0].name, &name);
        let read: Value = serde_json::from_str(&response.tool_calls[0].arguments).expect("JSON");
        prop_assert_eq!(read, input);
    }

    #[test]
    fn any_forced_tool_input_is_the_answer_text(input in any_object()) {
        let body = json!({"content": [{"type": "tool_use", "id": "toolu_1", "name": "answer", "input": input}],
            "stop_reason": "tool_use"});
        let response = parse_message(body.to_string().as_bytes(), Some("answer")).expect("a message");
        prop_assert!(response.tool_calls.is_empty());
        let read: Value = serde_json::from_str(&response.text).expect("JSON");
        prop_assert_eq!(read, input);
    }

    #[test]
    fn any_streamed_forced_tool_input_is_the_text_of_its_pieces(
        pieces in prop::collection::vec(any_text(), 1..6)
    ) {
        let output = crate::output::OutputSchema::compile("answer", json!({"type": "object"}), true)
            .expect("schema");
        let messages = [Message::new(Role::User, "go")];
        let parameters = ModelParameters::default();
        let mut request = test_request("claude-3-5-haiku-latest", &messages, &parameters);
        request.output = Some(&output);
        let mut decoder = MessagesStreamDecoder::for_request(&request);
        decoder.event(event("content_block_start", json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "answer", "input": {}}})))
            .expect("an event");
        let mut deltas = String::new();
        for piece in &pieces {
            let step = decoder.event(event("content_block_delta", json!({"type": "content_block_delta",
                "index": 0, "delta": {"type": "input_json_delta", "partial_json": piece}})))
                .expect("an event");
            if let Step::Delta(text) = step {
                deltas.push_str(&text);
            }
        }
        let Ok(Step::Done(response)) = decoder.event(event("message_stop", json!({"type": "message_stop"}))) else {
            panic!("message_stop ends the stream");
        };
        prop_assert_eq!(&deltas, &pieces.concat());
        if !deltas.is_empty() {
            prop_assert_eq!(&response.text, &deltas);
        }
    }

    #[test]
    fn any_history_tool_call_is_encoded_with_its_input_and_accepted_matching_ids(
        id in any_text(), name in any_text(), input in any_object(), result in any_text()
    ) {
        let mut assistant = Message::new(Role::Assistant, "");
        assistant.tool_calls = vec![ToolCall { id: id.clone(), name: name.clone(), arguments: input.clone() }];
        let messages = [Message::new(Role::User, "go"), assistant, Message::tool_result(id, result.clone())];
        let parameters = ModelParameters::default();
        let request = test_request("claude-sonnet-4-5", &messages, &parameters);
        let body: Value = serde_json::from_slice(&(Messages::ENCODE)(&request).expect("encodes"))
            .expect("JSON");
        let tool_use = &body["messages"][1]["content"][0];
        let tool_result = &body["messages"][2]["content"][0];
        prop_assert_eq!(&tool_use["input"], &input);
        prop_assert_eq!(&tool_use["name"], &json!(name));
        prop_assert!(accepted_id(tool_use["id"].as_str().expect("an id")));
        prop_assert_eq!(&tool_result["tool_use_id"], &tool_use["id"]);
        prop_assert_eq!(&tool_result["content"], &json!(result));
    }

    #[test]
    fn no_body_makes_the_reader_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_message(&body, Some("answer"));
        let mut decoder = MessagesStreamDecoder::default();
        for name in ["content_block_start", "content_block_delta", "message_delta", "message_stop"] {
            let _ = decoder.event(SseEvent {
                event: name.into(),
                data: String::from_utf8_lossy(&body).into_owned(),
                id: String::new(),
                retry: None,
            });
        }
    }
}
