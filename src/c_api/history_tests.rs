//! Tool calls through `pc_stream`: the pieces of a tool call a model streams are not text, so
//! the C callback never sees them; the text around them arrives as it always does.

use std::ptr;
use std::sync::Arc;

use super::stream_tests::{Seen, collect, config_with_provider};
use super::tests::take_json;
use super::*;
use crate::client::{
    AttemptError, FinishReason, Provider, ProviderRequest, ProviderResponse, Usage, UsageReported,
};
use crate::client::{ProviderStream, StreamChunk, StreamTimeouts};

/// A provider whose stream is: text, two pieces of a tool call, more text, the end.
struct TextAroundToolCall;

impl TextAroundToolCall {
    fn response() -> ProviderResponse {
        ProviderResponse {
            text: "Let me check.".into(),
            finish_reason: Some(FinishReason::Stop),
            raw_finish_reason: Some("stop".into()),
            refusal: None,
            response_id: None,
            response_model: None,
            usage: Usage::default(),
            usage_reported: UsageReported::ALL,
            tool_calls: Vec::new(),
        }
    }
}

struct Chunks(Vec<StreamChunk>);

impl ProviderStream for Chunks {
    fn next_chunk(&mut self) -> Result<StreamChunk, AttemptError> {
        Ok(self.0.remove(0))
    }
}

impl Provider for TextAroundToolCall {
    fn call(&self, _request: &ProviderRequest<'_>) -> Result<ProviderResponse, AttemptError> {
        Ok(Self::response())
    }

    fn stream(
        &self,
        _request: &ProviderRequest<'_>,
        _timeouts: StreamTimeouts,
    ) -> Result<Box<dyn ProviderStream + '_>, AttemptError> {
        let piece =
            |id: Option<&str>, name: Option<&str>, arguments: &str| StreamChunk::ToolCallDelta {
                index: 0,
                id: id.map(str::to_string),
                name: name.map(str::to_string),
                arguments: arguments.into(),
            };
        Ok(Box::new(Chunks(vec![
            StreamChunk::Delta("Let me ".into()),
            piece(Some("call_1"), Some("lookup"), "{\"q\":"),
            piece(None, None, "1}"),
            StreamChunk::Delta("check.".into()),
            StreamChunk::Done(Self::response()),
        ])))
    }
}

#[test]
fn streamed_tool_call_pieces_never_reach_the_callback() {
    let root = config_with_provider(serde_json::json!({"kind": "tool_streamer",
        "models": {"m": {"input_per_million": 1.0, "output_per_million": 2.0}}}));
    let options = crate::EngineOptions::new(root.join("config"), root.join("prompts"))
        .with_provider_kind("tool_streamer", |_: &crate::client::ProviderSetup<'_>| {
            Arc::new(TextAroundToolCall) as Arc<dyn Provider>
        });
    let engine = pc_engine {
        engine: crate::Engine::open(options).unwrap(),
    };
    let request = c"{\"user_id\": \"u\", \"variables\": {\"question\": \"q\"}}";
    let mut seen = Seen::default();
    let (mut out, mut error) = (ptr::null_mut(), ptr::null_mut());
    let status = unsafe {
        pc_stream(
            &engine,
            c"ask".as_ptr(),
            request.as_ptr(),
            Some(collect),
            ptr::from_mut(&mut seen).cast(),
            &mut out,
            &mut error,
        )
    };
    let _ = std::fs::remove_dir_all(&root);
    assert_eq!(status, pc_status::PC_OK);
    assert_eq!(seen.deltas, ["Let me ", "check."]);
    let completion = take_json(out);
    assert_eq!(completion["text"], "Let me check.");
}
