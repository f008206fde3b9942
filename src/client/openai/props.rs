//! Properties of the Chat Completions encoding and reading of tool calls: any id, name and
//! arguments text a server sends is read back as sent; any history tool call is encoded to
//! JSON whose arguments string parses back to the call's arguments and whose ids match; no
//! body, however broken, makes the reader panic.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::stream::ChatStreamDecoder;
use super::{ChatCompletions, parse_completion};
use crate::client::endpoint::{WireFormat, test_request};
use crate::client::event_stream::StreamDecoder;
use crate::client::sse::SseEvent;
use crate::config::ModelParameters;
use crate::output::{RawToolCall, ToolCall};
use crate::prompt::{Message, Role};

/// Any text: empty, NUL bytes, quotes and backslashes, any Unicode, and one huge value (20 KB
/// of 4-byte characters).
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[\\x00\"\\\\{}]{1,8}",
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

/// Any JSON value without floats (a float's text may differ after a round trip).
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        short_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(short_text(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn any_tool_call_of_a_completion_is_read_as_sent(
        id in any_text(), name in any_text(), arguments in any_text()
    ) {
        let body = json!({"choices": [{"message": {"content": null, "tool_calls": [
            {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}
        ]}, "finish_reason": "tool_calls"}]});
        let response = parse_completion(body.to_string().as_bytes()).expect("a completion");
        prop_assert_eq!(response.tool_calls, vec![RawToolCall { id, name, arguments }]);
    }

    #[test]
    fn any_streamed_tool_call_is_assembled_from_its_pieces(
        id in any_text(), name in any_text(), pieces in prop::collection::vec(any_text(), 0..6)
    ) {
        let mut decoder = ChatStreamDecoder::default();
        let event = |data: String| SseEvent {
            event: "message".into(), data, id: String::new(), retry: None,
        };
        let first = json!({"choices": [{"delta": {"tool_calls": [
            {"index": 0, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}
        ]}}]});
        decoder.event(event(first.to_string())).expect("a chunk");
        for piece in &pieces {
            let chunk = json!({"choices": [{"delta": {"tool_calls": [
                {"index": 0, "function": {"arguments": piece}}
            ]}}]});
            decoder.event(event(chunk.to_string())).expect("a chunk");
        }
        let Ok(crate::client::event_stream::Step::Done(response)) = decoder.event(event("[DONE]".into())) else {
            panic!("[DONE] ends the stream");
        };
        prop_assert_eq!(&response.tool_calls[0].id, &id);
        prop_assert_eq!(&response.tool_calls[0].name, &name);
        prop_assert_eq!(&response.tool_calls[0].arguments, &pieces.concat());
    }

    #[test]
    fn any_history_tool_call_is_encoded_with_its_arguments_and_matching_ids(
        id in any_text(), name in any_text(), arguments in any_json(), result in any_text()
    ) {
        let mut assistant = Message::new(Role::Assistant, "");
        assistant.tool_calls = vec![ToolCall { id: id.clone(), name: name.clone(), arguments: arguments.clone() }];
        let messages = [Message::new(Role::User, "go"), assistant, Message::tool_result(id, result.clone())];
        let parameters = ModelParameters::default();
        let request = test_request("gpt-4o-mini", &messages, &parameters);
        let body: Value = serde_json::from_slice(&(ChatCompletions::ENCODE)(&request).expect("encodes"))
            .expect("JSON");
        let call = &body["messages"][1]["tool_calls"][0];
        let sent_arguments: Value = serde_json::from_str(call["function"]["arguments"].as_str().expect("a string"))
            .expect("arguments are JSON text");
        prop_assert_eq!(sent_arguments, arguments);
        prop_assert_eq!(&call["function"]["name"], &json!(name));
        prop_assert_eq!(&body["messages"][2]["tool_call_id"], &call["id"]);
        prop_assert_eq!(&body["messages"][2]["content"], &json!(result));
    }

    #[test]
    fn no_body_makes_the_reader_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_completion(&body);
        let mut decoder = ChatStreamDecoder::default();
        let _ = decoder.event(SseEvent {
            event: "message".into(),
            data: String::from_utf8_lossy(&body).into_owned(),
            id: String::new(),
            retry: None,
        });
    }
}
