//! Fixtures for the streaming tests of the HTTP providers (`tests/providers/stream_*.rs`): event
//! streams shaped as OpenAI and Anthropic send them, opening a stream on a provider, and reading
//! one to its end.

#![allow(dead_code)]

use std::time::Duration;

use prompt_config::client::{
    AttemptError, Provider, ProviderRequest, ProviderResponse, ProviderStream, StreamChunk,
    StreamTimeouts,
};
use prompt_config::config::ModelParameters;
use serde_json::{Value, json};

use super::provider_fixtures::{Ask, conversation};

/// Generous limits, for tests that are not about timeouts.
pub fn relaxed() -> StreamTimeouts {
    StreamTimeouts {
        first_token: Duration::from_secs(5),
        stall: Duration::from_secs(5),
    }
}

/// Opens a stream of `test-model` with the conversation, as request `request-42`, with a 5 s
/// attempt timeout.
pub fn open<'p>(
    provider: &'p dyn Provider,
    timeouts: StreamTimeouts,
) -> Result<Box<dyn ProviderStream + 'p>, AttemptError> {
    let messages = conversation();
    let parameters = ModelParameters::default();
    provider.stream(
        &ProviderRequest {
            model: "test-model",
            messages: &messages,
            parameters: &parameters,
            request_id: "request-42",
            timeout: Duration::from_secs(5),
            output: None,
            tools: &[],
            tool_choice: &Default::default(),
            traceparent: None,
        },
        timeouts,
    )
}

/// What a stream yielded: its deltas in order, then the response or the error that ended it.
pub struct Read {
    pub deltas: Vec<String>,
    /// The tool-call pieces (`StreamChunk::ToolCallDelta`), in order.
    pub tool_call_deltas: Vec<StreamChunk>,
    pub end: Result<ProviderResponse, AttemptError>,
}

impl Read {
    /// The response; panics (failing the test) when the stream failed.
    pub fn response(&self) -> &ProviderResponse {
        self.end.as_ref().expect("the stream should complete")
    }

    /// The error; panics (failing the test) when the stream completed.
    pub fn error(&self) -> &AttemptError {
        self.end.as_ref().expect_err("the stream should fail")
    }
}

/// Reads `stream` to its end (Done or an error).
pub fn read_all(mut stream: Box<dyn ProviderStream + '_>) -> Read {
    let mut deltas = Vec::new();
    let mut tool_call_deltas = Vec::new();
    loop {
        match stream.next_chunk() {
            Ok(StreamChunk::Delta(text)) => {
                assert!(!text.is_empty(), "a delta is never empty");
                deltas.push(text);
            }
            Ok(piece @ StreamChunk::ToolCallDelta { .. }) => tool_call_deltas.push(piece),
            Ok(StreamChunk::Done(response)) => {
                return Read {
                    deltas,
                    tool_call_deltas,
                    end: Ok(response),
                };
            }
            Err(error) => {
                return Read {
                    deltas,
                    tool_call_deltas,
                    end: Err(error),
                };
            }
        }
    }
}

/// Opens a stream on `provider` with relaxed limits and reads it to its end.
pub fn stream(provider: &dyn Provider) -> Read {
    stream_with(provider, relaxed())
}

/// Opens a stream on `provider` with `timeouts` and reads it to its end; a failure to open is
/// the end.
pub fn stream_with(provider: &dyn Provider, timeouts: StreamTimeouts) -> Read {
    match open(provider, timeouts) {
        Ok(opened) => read_all(opened),
        Err(error) => Read {
            deltas: Vec::new(),
            tool_call_deltas: Vec::new(),
            end: Err(error),
        },
    }
}

/// One SSE event with only a `data:` line.
pub fn data(value: &Value) -> String {
    format!("data: {value}\n\n")
}

/// One SSE event with `event:` and `data:` lines.
pub fn named(event: &str, value: &Value) -> String {
    format!("event: {event}\ndata: {value}\n\n")
}

/// An OpenAI chunk with `delta` and `finish_reason` in its only choice.
pub fn openai_chunk(delta: Value, finish_reason: Value) -> String {
    data(&json!({
        "id": "chatcmpl-stream-1",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_44709d6fcb",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        "usage": null
    }))
}

/// The last chunk OpenAI sends with `include_usage`: no choices, the usage.
pub fn openai_usage_chunk(prompt: u64, completion: u64, cached: u64) -> String {
    data(&json!({
        "id": "chatcmpl-stream-1",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached}
        }
    }))
}

/// The OpenAI terminal event.
pub const DONE: &str = "data: [DONE]\n\n";

/// An OpenAI stream of `texts`: a role chunk, one chunk per text, a `stop` chunk, then the
/// usage chunk when `usage` is `Some((prompt, completion, cached))`, then `[DONE]`.
pub fn openai_events(texts: &[&str], usage: Option<(u64, u64, u64)>) -> Vec<String> {
    let mut events = vec![openai_chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        Value::Null,
    )];
    events.extend(
        texts
            .iter()
            .map(|text| openai_chunk(json!({"content": text}), Value::Null)),
    );
    events.push(openai_chunk(json!({}), json!("stop")));
    if let Some((prompt, completion, cached)) = usage {
        events.push(openai_usage_chunk(prompt, completion, cached));
    }
    events.push(DONE.to_string());
    events
}

/// Anthropic's `message_start` with `usage` (or none).
pub fn anthropic_start(usage: Option<Value>) -> String {
    let mut message = json!({
        "id": "msg_01Stream",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-sonnet-4-5-20250929",
        "stop_reason": null,
        "stop_sequence": null
    });
    if let Some(usage) = usage {
        message["usage"] = usage;
    }
    named(
        "message_start",
        &json!({"type": "message_start", "message": message}),
    )
}

/// Anthropic's `content_block_delta` with text.
pub fn anthropic_text(text: &str) -> String {
    named(
        "content_block_delta",
        &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
    )
}

/// Anthropic's `message_delta` with `stop_reason` and the output tokens.
pub fn anthropic_message_delta(stop_reason: &str, output_tokens: u64) -> String {
    named(
        "message_delta",
        &json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": output_tokens}}),
    )
}

/// Anthropic's terminal event.
pub fn anthropic_stop() -> String {
    named("message_stop", &json!({"type": "message_stop"}))
}

/// Anthropic's `error` event.
pub fn anthropic_error_event(error_type: &str, message: &str) -> String {
    named(
        "error",
        &json!({"type": "error", "error": {"type": error_type, "message": message}}),
    )
}

/// An Anthropic stream of `texts` in one text block, with a ping after the block start, input
/// usage with cache reads and writes, and `end_turn`.
pub fn anthropic_events(texts: &[&str]) -> Vec<String> {
    let mut events = vec![
        anthropic_start(Some(json!({
            "input_tokens": 25,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 1500,
            "output_tokens": 1
        }))),
        named(
            "content_block_start",
            &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        named("ping", &json!({"type": "ping"})),
    ];
    events.extend(texts.iter().map(|text| anthropic_text(text)));
    events.push(named(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push(anthropic_message_delta("end_turn", 15));
    events.push(anthropic_stop());
    events
}

/// Opens a stream of `ask` on `provider` with relaxed limits and reads it to its end.
pub fn stream_ask(provider: &dyn Provider, ask: &Ask) -> Read {
    let parameters = ModelParameters::default();
    match provider.stream(&ask.request(&parameters), relaxed()) {
        Ok(opened) => read_all(opened),
        Err(error) => Read {
            deltas: Vec::new(),
            tool_call_deltas: Vec::new(),
            end: Err(error),
        },
    }
}

/// An OpenAI chunk with one piece of tool call `index`: the first piece (with `id` and `name`)
/// as OpenAI sends it, or a later one with only `arguments`.
pub fn openai_tool_call_chunk(
    index: usize,
    first: Option<(&str, &str)>,
    arguments: &str,
) -> String {
    let piece = match first {
        Some((id, name)) => json!({
            "index": index, "id": id, "type": "function",
            "function": {"name": name, "arguments": arguments}
        }),
        None => json!({"index": index, "function": {"arguments": arguments}}),
    };
    openai_chunk(json!({"tool_calls": [piece]}), Value::Null)
}

/// Anthropic's `content_block_start` of a `tool_use` block.
pub fn anthropic_tool_use_start(index: usize, id: &str, name: &str) -> String {
    named(
        "content_block_start",
        &json!({"type": "content_block_start", "index": index,
            "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
    )
}

/// Anthropic's `content_block_delta` with a piece of a tool's input.
pub fn anthropic_input_json(index: usize, partial_json: &str) -> String {
    named(
        "content_block_delta",
        &json!({"type": "content_block_delta", "index": index,
            "delta": {"type": "input_json_delta", "partial_json": partial_json}}),
    )
}

/// Anthropic's `content_block_stop`.
pub fn anthropic_block_stop(index: usize) -> String {
    named(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": index}),
    )
}
