//! Reading a streamed chat completion (API reference, "The chat completion chunk object",
//! <https://platform.openai.com/docs/api-reference/chat-streaming>): `data: {chunk}` events,
//! then `data: [DONE]`. Text comes in `delta.content`; tool calls in
//! `delta.tool_calls[{index, id?, type?, function: {name?, arguments?}}]`, the id and name in a
//! call's first piece and its arguments text spread over the following ones. The final response
//! carries every call assembled, in order.

use serde::Deserialize;
use serde_json::Value;

use super::{Answer, ChatUsage, arguments_text, read_error, response};
use crate::client::endpoint::decode;
use crate::client::event_stream::{Step, StreamDecoder};
use crate::client::sse::SseEvent;
use crate::client::stream::StreamChunk;
use crate::client::types::{AttemptError, ProviderRequest};
use crate::output::RawToolCall;

/// One `data:` chunk of a streamed completion.
#[derive(Deserialize)]
struct ChatChunk {
    /// Gateways report a failure mid-stream as a data line with an `error` object.
    error: Option<Value>,
    id: Option<String>,
    model: Option<String>,
    choices: Option<Vec<ChunkChoice>>,
    /// Only in the last chunk (with empty `choices`), when `include_usage` was asked for.
    usage: Option<ChatUsage>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    delta: Option<ChunkDelta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChunkDelta {
    content: Option<String>,
    refusal: Option<String>,
    tool_calls: Option<Vec<ToolCallPiece>>,
}

/// A piece of one tool call; `index` says which.
#[derive(Deserialize)]
struct ToolCallPiece {
    index: Option<u64>,
    id: Option<String>,
    function: Option<FunctionPiece>,
}

#[derive(Deserialize)]
struct FunctionPiece {
    name: Option<String>,
    arguments: Option<Value>,
}

/// A tool call being assembled: OpenAI's `index` of it and what came so far.
struct PartialCall {
    provider_index: u64,
    call: RawToolCall,
}

/// Reads a Chat Completions stream: `data: {chunk}` events, then `data: [DONE]`.
#[derive(Default)]
pub(crate) struct ChatStreamDecoder {
    text: String,
    refusal: String,
    /// In order of first appearance; a call's position here is its `ToolCallDelta` index (the
    /// provider's index is only matched, never trusted as a position).
    tool_calls: Vec<PartialCall>,
    finish_reason: Option<String>,
    id: Option<String>,
    model: Option<String>,
    usage: Option<ChatUsage>,
}

impl ChatStreamDecoder {
    /// Appends `piece` to its call and returns the chunk handed out for it.
    fn tool_call_piece(&mut self, piece: ToolCallPiece) -> StreamChunk {
        let provider_index = piece.index.unwrap_or(0);
        let position = match self
            .tool_calls
            .iter()
            .position(|partial| partial.provider_index == provider_index)
        {
            Some(position) => position,
            None => {
                self.tool_calls.push(PartialCall {
                    provider_index,
                    call: RawToolCall {
                        id: String::new(),
                        name: String::new(),
                        arguments: String::new(),
                    },
                });
                self.tool_calls.len() - 1
            }
        };
        let call = &mut self.tool_calls[position].call;
        let (name, arguments) = match piece.function {
            Some(function) => (function.name, arguments_text(function.arguments)),
            None => (None, String::new()),
        };
        let id = piece.id.filter(|id| !id.is_empty());
        if let Some(id) = &id {
            call.id.clone_from(id);
        }
        let name = name.filter(|name| !name.is_empty());
        if let Some(name) = &name {
            call.name.clone_from(name);
        }
        call.arguments.push_str(&arguments);
        StreamChunk::ToolCallDelta {
            index: position,
            id,
            name,
            arguments,
        }
    }
}

impl StreamDecoder for ChatStreamDecoder {
    fn for_request(_request: &ProviderRequest<'_>) -> Self {
        ChatStreamDecoder::default()
    }

    fn event(&mut self, event: SseEvent) -> Result<Step, AttemptError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            let decoder = std::mem::take(self);
            return Ok(Step::Done(response(
                Answer {
                    text: decoder.text,
                    refusal: Some(decoder.refusal),
                    tool_calls: decoder
                        .tool_calls
                        .into_iter()
                        .map(|partial| partial.call)
                        .collect(),
                },
                decoder.finish_reason,
                decoder.id,
                decoder.model,
                decoder.usage,
            )));
        }
        let chunk: ChatChunk = decode(data.as_bytes(), "a chat completion chunk")?;
        if let Some(error) = chunk.error.as_ref().filter(|error| !error.is_null()) {
            return Err(read_error(Some(error), data.as_bytes(), true).into_error_in_body());
        }
        if self.id.is_none() {
            self.id = chunk.id;
        }
        if self.model.is_none() {
            self.model = chunk.model;
        }
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        let Some(choice) = chunk.choices.and_then(|choices| choices.into_iter().next()) else {
            return Ok(Step::Skip);
        };
        if choice.finish_reason.is_some() {
            self.finish_reason = choice.finish_reason;
        }
        let Some(delta) = choice.delta else {
            return Ok(Step::Skip);
        };
        if let Some(refusal) = delta.refusal {
            self.refusal.push_str(&refusal);
        }
        let content = delta.content.filter(|content| !content.is_empty());
        if let Some(content) = &content {
            self.text.push_str(content);
        }
        let pieces = delta.tool_calls.unwrap_or_default();
        if pieces.is_empty() {
            return Ok(content.map_or(Step::Skip, Step::Delta));
        }
        let mut chunks: Vec<StreamChunk> = content.map(StreamChunk::Delta).into_iter().collect();
        for piece in pieces {
            chunks.push(self.tool_call_piece(piece));
        }
        Ok(Step::Chunks(chunks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse(data: &str) -> SseEvent {
        SseEvent {
            event: "message".into(),
            data: data.into(),
            id: String::new(),
            retry: None,
        }
    }

    #[test]
    fn done_with_surrounding_whitespace_still_ends_the_stream() {
        let mut decoder = ChatStreamDecoder::default();
        assert!(matches!(decoder.event(sse(" [DONE] ")), Ok(Step::Done(_))));
    }

    #[test]
    fn pieces_of_two_calls_in_one_chunk_are_handed_out_in_order() {
        let mut decoder = ChatStreamDecoder::default();
        let chunk = r#"{"choices":[{"delta":{"tool_calls":[
            {"index":0,"id":"call_a","type":"function","function":{"name":"f","arguments":""}},
            {"index":1,"id":"call_b","type":"function","function":{"name":"g","arguments":"{}"}}]}}]}"#;
        let Ok(Step::Chunks(chunks)) = decoder.event(sse(chunk)) else {
            panic!("a chunk with two pieces yields both");
        };
        assert_eq!(chunks.len(), 2);
        assert!(matches!(
            &chunks[1],
            StreamChunk::ToolCallDelta { index: 1, .. }
        ));
        let Ok(Step::Done(response)) = decoder.event(sse("[DONE]")) else {
            panic!("[DONE] ends the stream");
        };
        assert_eq!(response.tool_calls[0].id, "call_a");
        assert_eq!(response.tool_calls[1].arguments, "{}");
    }

    #[test]
    fn a_huge_provider_index_is_matched_not_used_as_a_position() {
        let mut decoder = ChatStreamDecoder::default();
        let chunk = r#"{"choices":[{"delta":{"tool_calls":[{"index":18446744073709551615,"id":"c","function":{"name":"f","arguments":"{"}}]}}]}"#;
        let Ok(Step::Chunks(chunks)) = decoder.event(sse(chunk)) else {
            panic!("a tool-call piece");
        };
        assert!(matches!(
            &chunks[0],
            StreamChunk::ToolCallDelta { index: 0, .. }
        ));
    }
}
