//! The vocabulary of streamed calls: what a provider's stream yields ([`StreamChunk`]) and
//! how long it may stay silent ([`StreamTimeouts`]), and what the caller of
//! [`Engine::stream`](crate::Engine::stream) sees ([`StreamEvent`]) and answers
//! ([`StreamControl`]).
//!
//! Why a callback rather than an iterator: a streamed call is the same blocking walk as
//! `complete()` (budgets, breakers, retries and failover before the first token, the deadline),
//! run on the caller's thread; a callback keeps that walk plain code and maps directly onto the
//! C ABI's function pointer and Ruby's `yield`. A caller who wants an iterator can run the call
//! on a thread and send the deltas through a channel.

use super::types::{AttemptError, ProviderResponse};
use std::time::Duration;

/// How long a streamed attempt may stay silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamTimeouts {
    /// The longest wait from sending the request to the first text delta; past it, the attempt
    /// fails as a `timeout` and the call retries or fails over like `complete()`.
    pub first_token: Duration,
    /// The longest gap between two chunks once text has arrived (a stall); past it, the
    /// stream is incomplete.
    pub stall: Duration,
}

/// One event of a streamed attempt, as a provider reads it.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamChunk {
    /// Text to append to the answer (never empty).
    Delta(String),
    /// A piece of a tool call: the first piece of call `index` carries its `id` and `name`,
    /// later ones only `arguments` text to append (OpenAI `delta.tool_calls[]`, Anthropic
    /// `content_block_start` `tool_use` then `input_json_delta`).
    ToolCallDelta {
        /// The call's position in the answer, from 0.
        index: usize,
        /// The provider's id of the call, in its first piece.
        id: Option<String>,
        /// The tool's name, in its first piece.
        name: Option<String>,
        /// Arguments JSON text to append (may be empty).
        arguments: String,
    },
    /// The terminal event arrived (OpenAI `[DONE]`, Anthropic `message_stop`): the whole
    /// response, `text` being every delta joined and `usage` what the provider reported (in
    /// the last chunk), if it did.
    Done(ProviderResponse),
}

/// A streamed attempt in progress. Read it until [`StreamChunk::Done`] or an error; dropping it
/// closes the connection.
pub trait ProviderStream: Send {
    /// The next chunk, waiting at most the first-token limit (before the first delta) or the
    /// stall limit (after it), then failing with kind `timeout`.
    ///
    /// A connection that ends or breaks before the terminal event fails with kind `malformed`
    /// and a message saying the stream ended early; an `error` event fails as `error_in_body`
    /// with the provider's error type, which the failure policy judges as it does a body error.
    fn next_chunk(&mut self) -> Result<StreamChunk, AttemptError>;
}

/// What [`Engine::stream`](crate::Engine::stream) hands its callback, in order: text deltas,
/// and a restart that voids every delta so far (when the stream settings allow restarts, or
/// when a structured answer was invalid and is repaired or failed over). The final [`Completion`](crate::client::Completion) or error is the call's
/// return value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamEvent<'a> {
    /// Text to append to what was shown.
    Delta(&'a str),
    /// A piece of a tool call the model is making (see [`StreamChunk::ToolCallDelta`]); the
    /// validated set arrives in the final `Completion::tool_calls`.
    ToolCallDelta {
        /// The call's position in the answer, from 0.
        index: usize,
        /// The provider's id of the call, in its first piece.
        id: Option<&'a str>,
        /// The tool's name, in its first piece.
        name: Option<&'a str>,
        /// Arguments JSON text to append.
        arguments: &'a str,
    },
    /// The stream of `provider`/`model` broke after text arrived, or its answer was invalid
    /// output, and the call starts again (a repair on the same model, or the next model of the
    /// chain): every delta received so far is void.
    Restart {
        /// The provider whose stream broke or answered invalid output.
        provider: &'a str,
        /// Its model.
        model: &'a str,
        /// Why (`stream cut after 12 chunks: ...`, `invalid output: the answer is invalid
        /// (schema): /skills: ...`).
        reason: &'a str,
    },
}

/// The callback's answer: go on, or stop the stream (the connection is closed at once, the
/// usage so far is estimated and charged, and the call ends as `cancelled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StreamControl {
    /// Keep streaming.
    #[default]
    Continue,
    /// Stop now.
    Stop,
}

/// The stream of a provider that cannot stream: one `call`, replayed as a single delta.
pub(crate) struct Replay {
    response: Option<ProviderResponse>,
    delta_sent: bool,
}

impl Replay {
    /// A stream that yields `response`'s text (if any) then `response`.
    pub(crate) fn new(response: ProviderResponse) -> Replay {
        Replay {
            response: Some(response),
            delta_sent: false,
        }
    }
}

impl ProviderStream for Replay {
    fn next_chunk(&mut self) -> Result<StreamChunk, AttemptError> {
        let Some(response) = self.response.as_ref() else {
            return Err(AttemptError::new(
                super::types::FailureKind::Malformed,
                "stream read after its end",
            ));
        };
        if !self.delta_sent && !response.text.is_empty() {
            self.delta_sent = true;
            return Ok(StreamChunk::Delta(response.text.clone()));
        }
        match self.response.take() {
            Some(response) => Ok(StreamChunk::Done(response)),
            None => Err(AttemptError::new(
                super::types::FailureKind::Malformed,
                "stream read after its end",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::types::{FinishReason, Usage, UsageReported};

    fn response(text: &str) -> ProviderResponse {
        ProviderResponse {
            text: text.to_string(),
            finish_reason: Some(FinishReason::Stop),
            raw_finish_reason: Some("stop".into()),
            refusal: None,
            response_id: None,
            response_model: None,
            usage: Usage::default(),
            usage_reported: UsageReported::default(),
            tool_calls: Vec::new(),
        }
    }

    #[test]
    fn a_replay_yields_the_text_once_then_the_response() {
        let mut replay = Replay::new(response("hello"));
        assert_eq!(replay.next_chunk(), Ok(StreamChunk::Delta("hello".into())));
        assert_eq!(
            replay.next_chunk(),
            Ok(StreamChunk::Done(response("hello")))
        );
        assert!(replay.next_chunk().is_err());
    }

    #[test]
    fn a_replay_of_an_empty_answer_has_no_delta() {
        let mut replay = Replay::new(response(""));
        assert_eq!(replay.next_chunk(), Ok(StreamChunk::Done(response(""))));
    }
}
