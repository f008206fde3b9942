//! A scripted custom provider (registered with `EngineOptions::with_provider_kind`) streaming
//! through the engine: failures it scripts before and after the first token follow the same
//! policy as the mock's.

use std::sync::Arc;

use parking_lot::Mutex;
use prompt_config::client::{
    AttemptError, AttemptOutcome, BreakerState, FailureKind, FinishReason, Provider,
    ProviderRequest, ProviderResponse, ProviderSetup, ProviderStream, StreamChunk, StreamTimeouts,
    Usage, UsageReported,
};
use prompt_config::{Engine, ErrorKind};
use serde_json::json;

use crate::setup::{Setup, failure, outcomes, stream};

/// One scripted step of a stream: a delta, or the error that ends it.
#[derive(Clone)]
enum Step {
    Delta(&'static str),
    Fail(AttemptError),
}

/// Streams answer per call from a queue of scripts; `Err` fails the open itself.
struct Scripted {
    scripts: Mutex<Vec<Result<Vec<Step>, AttemptError>>>,
}

struct ScriptedStream {
    steps: std::vec::IntoIter<Step>,
    text: String,
}

impl ProviderStream for ScriptedStream {
    fn next_chunk(&mut self) -> Result<StreamChunk, AttemptError> {
        match self.steps.next() {
            Some(Step::Delta(delta)) => {
                self.text.push_str(delta);
                Ok(StreamChunk::Delta(delta.to_string()))
            }
            Some(Step::Fail(error)) => Err(error),
            None => Ok(StreamChunk::Done(ProviderResponse {
                text: self.text.clone(),
                finish_reason: Some(FinishReason::Stop),
                raw_finish_reason: Some("stop".into()),
                refusal: None,
                response_id: None,
                response_model: None,
                usage: Usage {
                    input_tokens: 7,
                    output_tokens: 3,
                    ..Usage::default()
                },
                usage_reported: UsageReported::ALL,
                tool_calls: Vec::new(),
            })),
        }
    }
}

impl Provider for Scripted {
    fn call(&self, _request: &ProviderRequest<'_>) -> Result<ProviderResponse, AttemptError> {
        Err(AttemptError::new(FailureKind::Malformed, "stream only"))
    }

    fn stream(
        &self,
        _request: &ProviderRequest<'_>,
        _timeouts: StreamTimeouts,
    ) -> Result<Box<dyn ProviderStream + '_>, AttemptError> {
        let steps = self.scripts.lock().remove(0)?;
        Ok(Box::new(ScriptedStream {
            steps: steps.into_iter(),
            text: String::new(),
        }))
    }
}

/// The scripted provider as `openai` (primary) and the mock `anthropic` as fallback.
fn engine(setup: &Setup, scripts: Vec<Result<Vec<Step>, AttemptError>>) -> Engine {
    let provider = Arc::new(Scripted {
        scripts: Mutex::new(scripts),
    });
    let options = setup.options().with_mock(false).with_provider_kind(
        "scripted",
        move |_setup: &ProviderSetup<'_>| -> Arc<dyn Provider> {
            Arc::clone(&provider) as Arc<dyn Provider>
        },
    );
    Engine::open(options).unwrap()
}

fn scripted_setup() -> Setup {
    Setup::new(
        |providers| {
            providers["providers"]["openai"]["kind"] = json!("scripted");
            providers["providers"]["anthropic"]["kind"] = json!("mock");
            providers["providers"]["openai"]["circuit_breaker"]["consecutive_failures"] = json!(1);
        },
        |_| {},
    )
}

#[test]
fn a_scripted_500_on_open_fails_over_to_the_fallback() {
    let setup = scripted_setup();
    let engine = engine(&setup, vec![Err(AttemptError::http(500, "boom"))]);
    let (seen, completion) = stream(&engine);
    let completion = completion.unwrap();
    assert_eq!(completion.provider, "anthropic");
    assert_eq!(completion.attempts[0].status, Some(500));
    assert_eq!(seen.text(), completion.text);
}

#[test]
fn a_scripted_stream_reports_its_usage() {
    let setup = scripted_setup();
    let engine = engine(&setup, vec![Ok(vec![Step::Delta("a "), Step::Delta("b")])]);
    let completion = stream(&engine).1.unwrap();
    assert_eq!(completion.text, "a b");
    assert_eq!(
        (
            completion.usage.input_tokens,
            completion.usage.output_tokens
        ),
        (7, 3)
    );
    assert!(!completion.cost_estimated);
}

#[test]
fn a_caller_mistake_error_after_the_first_token_still_counts_for_the_breaker() {
    let setup = scripted_setup();
    let mut mistake = AttemptError::new(FailureKind::ErrorInBody, "invalid request mid-stream");
    mistake.provider_error_type = Some("invalid_request_error".into());
    let engine = engine(
        &setup,
        vec![Ok(vec![Step::Delta("partial "), Step::Fail(mistake)])],
    );
    let (seen, result) = stream(&engine);
    let error = failure(result.unwrap_err());
    assert_eq!(error.kind(), ErrorKind::StreamIncomplete);
    assert_eq!(seen.text(), "partial ");
    assert_eq!(
        outcomes(error.attempts()),
        [("openai".into(), AttemptOutcome::StreamIncomplete)]
    );
    let states = engine.breaker_states();
    let openai = states
        .iter()
        .find(|(name, _)| name.starts_with("openai"))
        .unwrap();
    assert_eq!(openai.1, BreakerState::Open);
}
