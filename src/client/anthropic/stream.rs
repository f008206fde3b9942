//! Reading a streamed message (Streaming Messages,
//! <https://docs.claude.com/en/docs/build-with-claude/streaming>): `message_start`, for each
//! content block a `content_block_start`, its `content_block_delta`s and a
//! `content_block_stop`, then `message_delta` (stop reason, usage) and `message_stop`. Text
//! comes in `text_delta`s; a tool call starts with a `tool_use` block (`id`, `name`) and its
//! input arrives as `input_json_delta` `partial_json` pieces. The forced output tool's pieces
//! are the answer text, handed out as text deltas.

use serde::Deserialize;
use serde_json::Value;

use super::request::OutputMode;
use super::{MessagesUsage, Reply, read_error, response};
use crate::client::endpoint::decode;
use crate::client::event_stream::{Step, StreamDecoder};
use crate::client::sse::SseEvent;
use crate::client::stream::StreamChunk;
use crate::client::types::{AttemptError, ProviderRequest};
use crate::output::RawToolCall;

/// The event types a Messages stream is read by; any other (`ping`, and the types Anthropic's
/// versioning policy says may be added) is skipped.
const KNOWN_EVENTS: [&str; 7] = [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "error",
];

/// One event's data; every field is optional because each event type has its own.
#[derive(Deserialize)]
struct MessagesEvent {
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// `message_start`: the message without content.
    message: Option<StartedMessage>,
    /// `content_block_start`, `content_block_delta`: the block's position in the message.
    index: Option<u64>,
    /// `content_block_start`: the block, without its content.
    content_block: Option<StartedBlock>,
    /// `content_block_delta` (`text_delta`, `input_json_delta`, ...) or `message_delta`
    /// (`stop_reason`).
    delta: Option<EventDelta>,
    /// `message_delta`: the usage so far (output tokens; input and cache counts in newer
    /// versions).
    usage: Option<MessagesUsage>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct StartedMessage {
    id: Option<String>,
    model: Option<String>,
    usage: Option<MessagesUsage>,
}

#[derive(Deserialize)]
struct StartedBlock {
    #[serde(rename = "type")]
    block_type: Option<String>,
    id: Option<String>,
    name: Option<String>,
    /// A `tool_use` block starts with its input so far (`{}`); the rest comes in pieces.
    input: Option<Value>,
}

#[derive(Deserialize)]
struct EventDelta {
    #[serde(rename = "type")]
    delta_type: Option<String>,
    text: Option<String>,
    partial_json: Option<String>,
    stop_reason: Option<String>,
}

/// What a content block of the stream is.
enum BlockKind {
    /// A call of one of the version's tools, at this position among the calls.
    ToolCall(usize),
    /// The forced output tool: its input is the answer.
    Answer,
}

/// A tool-use block being assembled: its input as it started, and the pieces so far.
struct PartialInput {
    started: Option<Value>,
    pieces: String,
}

impl PartialInput {
    /// The input as JSON text: the pieces, or the start's input when no piece came.
    fn finish(self) -> String {
        if self.pieces.is_empty() {
            self.started
                .map(|input| input.to_string())
                .unwrap_or_default()
        } else {
            self.pieces
        }
    }
}

/// Reads a Messages stream: `message_start`, content block events, `message_delta`, then
/// `message_stop`.
#[derive(Default)]
pub(crate) struct MessagesStreamDecoder {
    /// The forced output tool's name, when the request had one.
    output_tool: Option<String>,
    text: String,
    /// Tool-use blocks by the block's `index` (matched, never used as a position).
    blocks: Vec<(u64, BlockKind)>,
    /// The calls of the version's tools: id, name, input.
    calls: Vec<(String, String, PartialInput)>,
    answer: Option<PartialInput>,
    stop_reason: Option<String>,
    id: Option<String>,
    model: Option<String>,
    usage: Option<MessagesUsage>,
}

impl MessagesStreamDecoder {
    /// Counts in a later usage replace earlier ones; absent counts keep what came before.
    fn merge_usage(&mut self, later: MessagesUsage) {
        let earlier = self.usage.take().unwrap_or_default();
        self.usage = Some(MessagesUsage {
            input_tokens: later.input_tokens.or(earlier.input_tokens),
            output_tokens: later.output_tokens.or(earlier.output_tokens),
            cache_read_input_tokens: later
                .cache_read_input_tokens
                .or(earlier.cache_read_input_tokens),
            cache_creation_input_tokens: later
                .cache_creation_input_tokens
                .or(earlier.cache_creation_input_tokens),
        });
    }

    fn block_start(&mut self, index: u64, block: StartedBlock) -> Step {
        if block.block_type.as_deref() != Some("tool_use") {
            return Step::Skip;
        }
        let name = block.name.unwrap_or_default();
        let input = PartialInput {
            started: block.input,
            pieces: String::new(),
        };
        if self.output_tool.as_deref() == Some(name.as_str()) && self.answer.is_none() {
            self.blocks.push((index, BlockKind::Answer));
            self.answer = Some(input);
            return Step::Skip;
        }
        let position = self.calls.len();
        let id = block.id.unwrap_or_default();
        self.blocks.push((index, BlockKind::ToolCall(position)));
        self.calls.push((id.clone(), name.clone(), input));
        Step::Chunks(vec![StreamChunk::ToolCallDelta {
            index: position,
            id: Some(id).filter(|id| !id.is_empty()),
            name: Some(name).filter(|name| !name.is_empty()),
            arguments: String::new(),
        }])
    }

    fn input_piece(&mut self, index: Option<u64>, piece: String) -> Step {
        let kind = self
            .blocks
            .iter()
            .find(|(block, _)| Some(*block) == index)
            .map(|(_, kind)| kind);
        match kind {
            Some(BlockKind::Answer) => {
                if let Some(answer) = self.answer.as_mut() {
                    answer.pieces.push_str(&piece);
                }
                Step::Delta(piece)
            }
            Some(&BlockKind::ToolCall(position)) => {
                if let Some((_, _, input)) = self.calls.get_mut(position) {
                    input.pieces.push_str(&piece);
                }
                Step::Chunks(vec![StreamChunk::ToolCallDelta {
                    index: position,
                    id: None,
                    name: None,
                    arguments: piece,
                }])
            }
            // Input of a block that did not start as a tool use: nothing we asked for.
            None => Step::Skip,
        }
    }

    fn finish(&mut self) -> Step {
        let decoder = std::mem::take(self);
        let reply = Reply {
            text: decoder.text,
            answer: decoder.answer.map(PartialInput::finish),
            tool_calls: decoder
                .calls
                .into_iter()
                .map(|(id, name, input)| RawToolCall {
                    id,
                    name,
                    arguments: input.finish(),
                })
                .collect(),
        };
        Step::Done(response(
            reply,
            decoder.stop_reason,
            decoder.id,
            decoder.model,
            decoder.usage,
        ))
    }
}

impl StreamDecoder for MessagesStreamDecoder {
    fn for_request(request: &ProviderRequest<'_>) -> Self {
        MessagesStreamDecoder {
            output_tool: OutputMode::of(request).output_tool().map(str::to_string),
            ..MessagesStreamDecoder::default()
        }
    }

    fn event(&mut self, event: SseEvent) -> Result<Step, AttemptError> {
        if event.event == "ping" {
            return Ok(Step::Skip);
        }
        let parsed: MessagesEvent = match decode(event.data.as_bytes(), "a message stream event") {
            Ok(parsed) => parsed,
            // An unknown event type may carry anything; only ours must be JSON.
            Err(_) if !KNOWN_EVENTS.contains(&event.event.as_str()) => return Ok(Step::Skip),
            Err(error) => return Err(error),
        };
        // The data's `type` names the event; the SSE `event:` field is the fallback.
        let event_type = parsed.event_type.as_deref().unwrap_or(&event.event);
        match event_type {
            "error" => Err(
                read_error(parsed.error.as_ref(), event.data.as_bytes(), true).into_error_in_body(),
            ),
            "message_start" => {
                if let Some(message) = parsed.message {
                    self.id = message.id;
                    self.model = message.model;
                    if let Some(usage) = message.usage {
                        self.merge_usage(usage);
                    }
                }
                Ok(Step::Skip)
            }
            "content_block_start" => match (parsed.index, parsed.content_block) {
                (Some(index), Some(block)) => Ok(self.block_start(index, block)),
                _ => Ok(Step::Skip),
            },
            "content_block_delta" => match parsed.delta {
                Some(EventDelta {
                    delta_type: Some(delta_type),
                    text: Some(text),
                    ..
                }) if delta_type == "text_delta" => {
                    self.text.push_str(&text);
                    Ok(Step::Delta(text))
                }
                Some(EventDelta {
                    delta_type: Some(delta_type),
                    partial_json: Some(piece),
                    ..
                }) if delta_type == "input_json_delta" => Ok(self.input_piece(parsed.index, piece)),
                // Thinking, signature and citation deltas carry no answer.
                _ => Ok(Step::Skip),
            },
            "message_delta" => {
                if let Some(stop_reason) = parsed.delta.and_then(|delta| delta.stop_reason) {
                    self.stop_reason = Some(stop_reason);
                }
                if let Some(usage) = parsed.usage {
                    self.merge_usage(usage);
                }
                Ok(Step::Skip)
            }
            "message_stop" => Ok(self.finish()),
            _ => Ok(Step::Skip),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::types::FailureKind;

    fn sse(event: &str, data: serde_json::Value) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.to_string(),
            id: String::new(),
            retry: None,
        }
    }

    #[test]
    fn a_message_delta_with_input_counts_replaces_those_of_message_start() {
        let mut decoder = MessagesStreamDecoder::default();
        let start = serde_json::json!({"type": "message_start", "message": {"id": "m", "usage": {"input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 1}}});
        let delta = serde_json::json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"input_tokens": 12, "output_tokens": 40}});
        assert!(matches!(
            decoder.event(sse("message_start", start)),
            Ok(Step::Skip)
        ));
        assert!(matches!(
            decoder.event(sse("message_delta", delta)),
            Ok(Step::Skip)
        ));
        let stop = serde_json::json!({"type": "message_stop"});
        let Ok(Step::Done(response)) = decoder.event(sse("message_stop", stop)) else {
            panic!("message_stop ends the stream");
        };
        assert_eq!(response.usage.input_tokens, 17);
        assert_eq!(response.usage.output_tokens, 40);
        assert_eq!(response.usage.cache_read_input_tokens, 5);
    }

    #[test]
    fn a_known_event_whose_data_is_not_json_is_malformed() {
        let mut decoder = MessagesStreamDecoder::default();
        let event = SseEvent {
            event: "content_block_delta".into(),
            data: "{not json".into(),
            id: String::new(),
            retry: None,
        };
        let Err(error) = decoder.event(event) else {
            panic!("unreadable data of a known event fails");
        };
        assert_eq!(error.kind, FailureKind::Malformed);
    }

    #[test]
    fn a_tool_use_block_without_input_pieces_keeps_its_starting_input() {
        let mut decoder = MessagesStreamDecoder::default();
        let start = serde_json::json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "now", "input": {}}});
        assert!(matches!(
            decoder.event(sse("content_block_start", start)),
            Ok(Step::Chunks(_))
        ));
        let stop = serde_json::json!({"type": "message_stop"});
        let Ok(Step::Done(response)) = decoder.event(sse("message_stop", stop)) else {
            panic!("message_stop ends the stream");
        };
        assert_eq!(response.tool_calls[0].arguments, "{}");
    }

    #[test]
    fn input_pieces_of_a_block_that_never_started_are_skipped() {
        let mut decoder = MessagesStreamDecoder::default();
        let delta = serde_json::json!({"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": "{"}});
        assert!(matches!(
            decoder.event(sse("content_block_delta", delta)),
            Ok(Step::Skip)
        ));
    }
}
