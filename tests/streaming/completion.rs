//! What a completed stream returns: the deltas joined are the text, time to first token and
//! chunk count on the completion and its attempt, usage reported or estimated, and the
//! response cache storing a completed stream and replaying a hit as a stream.

use std::sync::Arc;

use prompt_config::Engine;
use prompt_config::client::{
    AttemptError, FinishReason, Provider, ProviderRequest, ProviderResponse, ProviderSetup,
    ProviderStream, StreamChunk, StreamTimeouts, Usage, UsageReported,
};
use serde_json::json;

use crate::setup::{Setup, mock, stream};

#[test]
fn the_deltas_joined_equal_the_completion_text() {
    let setup = Setup::plain();
    let engine = setup.engine();
    let (seen, completion) = stream(&engine);
    let completion = completion.unwrap();
    assert!(seen.deltas.len() > 3, "chunks of 10 characters");
    assert!(seen.deltas.iter().all(|delta| delta.chars().count() <= 10));
    assert_eq!(seen.text(), completion.text);
}

#[test]
fn a_completed_stream_carries_time_to_first_token_and_chunk_count() {
    let setup = Setup::plain();
    let engine = setup.engine();
    let (seen, completion) = stream(&engine);
    let completion = completion.unwrap();
    let stats = completion.stream.unwrap();
    assert_eq!(stats.chunks, seen.deltas.len() as u64);
    // The mock's 50 ms latency, on the manual clock.
    assert_eq!(stats.time_to_first_token_ms, 50.0);
    let attempt = completion.attempts[0].stream.unwrap();
    assert_eq!(attempt.chunks, stats.chunks);
    assert_eq!(attempt.time_to_first_token_ms, 50.0);
}

#[test]
fn usage_reported_by_the_stream_is_charged_as_reported() {
    let setup = Setup::plain();
    let engine = setup.engine();
    let completion = stream(&engine).1.unwrap();
    assert!(!completion.cost_estimated);
    assert!(completion.usage.output_tokens > 0);
}

/// A custom provider streaming "one two three" in three deltas without reporting usage.
struct Quiet;

struct QuietStream(Vec<StreamChunk>);

impl ProviderStream for QuietStream {
    fn next_chunk(&mut self) -> Result<StreamChunk, AttemptError> {
        Ok(self.0.remove(0))
    }
}

impl Provider for Quiet {
    fn call(&self, _request: &ProviderRequest<'_>) -> Result<ProviderResponse, AttemptError> {
        unreachable!("streamed calls use stream()")
    }

    fn stream(
        &self,
        _request: &ProviderRequest<'_>,
        _timeouts: StreamTimeouts,
    ) -> Result<Box<dyn ProviderStream + '_>, AttemptError> {
        let done = ProviderResponse {
            text: "one two three".into(),
            finish_reason: Some(FinishReason::Stop),
            raw_finish_reason: Some("stop".into()),
            refusal: None,
            response_id: None,
            response_model: None,
            usage: Usage::default(),
            usage_reported: UsageReported::default(),
            tool_calls: Vec::new(),
        };
        Ok(Box::new(QuietStream(vec![
            StreamChunk::Delta("one ".into()),
            StreamChunk::Delta("two ".into()),
            StreamChunk::Delta("three".into()),
            StreamChunk::Done(done),
        ])))
    }
}

#[test]
fn a_stream_without_usage_is_charged_an_estimate() {
    let setup = Setup::new(
        |providers| {
            providers["providers"] = json!({"quiet": {"kind": "quiet", "models": {"q": {"input_per_million": 1.0, "output_per_million": 2.0}}}});
        },
        |feature| {
            feature["model"] = json!({"provider": "quiet", "name": "q"});
            feature["fallbacks"] = json!([]);
        },
    );
    let options = setup
        .options()
        .with_mock(false)
        .with_provider_kind("quiet", |_: &ProviderSetup<'_>| -> Arc<dyn Provider> {
            Arc::new(Quiet)
        });
    let engine = Engine::open(options).unwrap();
    let (seen, completion) = stream(&engine);
    let completion = completion.unwrap();
    assert_eq!(seen.deltas, ["one ", "two ", "three"]);
    assert_eq!(completion.text, "one two three");
    assert!(completion.cost_estimated);
    assert!(completion.usage.output_tokens > 0 && completion.cost_usd > 0.0);
}

fn cached() -> Setup {
    Setup::new(
        |_| {},
        |feature| {
            feature["model"]["parameters"]["temperature"] = json!(0);
            feature["fallbacks"] = json!([]);
            feature["versions"]["1.0.0"]["cache"] = json!({"ttl_seconds": 3600});
        },
    )
}

#[test]
fn a_cache_hit_is_replayed_as_a_stream_without_a_provider_call() {
    let setup = cached();
    let engine = setup.engine();
    let first = stream(&engine).1.unwrap();
    let calls = mock(&engine, "openai").calls();
    let (seen, second) = stream(&engine);
    let second = second.unwrap();
    assert!(second.cache.is_some(), "served from the cache");
    assert_eq!(mock(&engine, "openai").calls(), calls, "no provider call");
    assert!(seen.deltas.len() > 1, "replayed in several deltas");
    assert_eq!(seen.text(), first.text);
    assert_eq!(second.stream.unwrap().chunks, seen.deltas.len() as u64);
}

#[test]
fn an_incomplete_stream_is_never_stored_in_the_cache() {
    let setup = cached();
    let engine = setup.engine();
    mock(&engine, "openai").break_next_stream(prompt_config::client::StreamFault::Cut, 1);
    assert!(stream(&engine).1.is_err());
    let completion = stream(&engine).1.unwrap();
    assert!(
        completion.cache.is_none(),
        "the second call reached the provider"
    );
}
