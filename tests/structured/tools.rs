//! Tool calls come back normalised (arguments parsed and valid against the tool's schema); a
//! call with invalid arguments is `invalid_output` and is repaired with a tool result per call
//! carrying the validation errors. Served by a scripted custom provider: the providers' own
//! tool-call formats are tested with the providers.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prompt_config::client::AttemptOutcome::{InvalidOutput, Success};
use prompt_config::client::{
    AttemptError, Clock, FinishReason, ManualClock, Provider, ProviderRequest, ProviderResponse,
    StreamControl, StreamEvent, Usage, UsageReported,
};
use prompt_config::output::RawToolCall;
use prompt_config::{Engine, ErrorKind, Message, Role};
use serde_json::{Value, json};

use crate::schema_fixtures::{failed_with, outcomes};
use crate::support::one_feature::{OneFeature, asking};
use crate::support::release::edit_and_release;

/// Answers with scripted tool calls, in order, and keeps every request's messages; with a
/// clock, each answer takes `slow` on it.
struct Toolbox {
    answers: Mutex<Vec<ProviderResponse>>,
    requests: Mutex<Vec<Vec<Message>>>,
    clock: Option<(Arc<ManualClock>, Duration)>,
}

impl Provider for Toolbox {
    fn call(&self, request: &ProviderRequest<'_>) -> Result<ProviderResponse, AttemptError> {
        self.requests.lock().push(request.messages.to_vec());
        if let Some((clock, slow)) = &self.clock {
            clock.advance(*slow);
        }
        let mut answers = self.answers.lock();
        if answers.is_empty() {
            return Err(AttemptError::http(500, "the script is over"));
        }
        Ok(answers.remove(0))
    }
}

/// An answer calling `get_weather` with `arguments` (JSON text), finish reason `tool_calls`.
fn calling(arguments: &str) -> ProviderResponse {
    ProviderResponse {
        text: String::new(),
        finish_reason: Some(FinishReason::ToolCalls),
        raw_finish_reason: Some("tool_calls".into()),
        refusal: None,
        response_id: None,
        response_model: None,
        usage: Usage {
            input_tokens: 30,
            output_tokens: 10,
            ..Usage::default()
        },
        usage_reported: UsageReported::ALL,
        tool_calls: vec![RawToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments: arguments.into(),
        }],
    }
}

/// The feature `ask` declaring the tool `get_weather(city: string)`, served by a [`Toolbox`]
/// answering `answers`.
struct Setup {
    config: OneFeature,
    toolbox: Arc<Toolbox>,
}

impl Setup {
    fn new(answers: Vec<ProviderResponse>) -> Setup {
        Setup::timed(answers, None)
    }

    /// With a response cache (at temperature 0, so that answers may be stored).
    fn cached(answers: Vec<ProviderResponse>) -> Setup {
        let setup = Setup::new(answers);
        let path = setup.config.root.join("config/features/ask.json");
        let mut feature: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        feature["cache"] = json!({"ttl_seconds": 3600});
        feature["model"]["parameters"] = json!({"temperature": 0.0});
        std::fs::write(&path, feature.to_string()).unwrap();
        setup
    }

    /// With each answer taking `slow` on a manual clock, and a 1 s deadline.
    fn timed(answers: Vec<ProviderResponse>, slow: Option<Duration>) -> Setup {
        let providers = json!({"client": {"deadline_ms": 1000}, "providers": {"p": {
            "kind": "toolbox",
            "retry": {"max_attempts": 1},
            "models": {"m": {"input_per_million": 1.0, "output_per_million": 2.0}}
        }}});
        let config = OneFeature::new(&providers, "p", "m");
        edit_and_release(&config.root, "ask", "1.0.0", |feature| {
            feature["versions"]["1.0.0"]["tools"] = json!([{
                "name": "get_weather",
                "description": "The weather in a city now.",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                    "additionalProperties": false
                }
            }]);
        });
        Setup {
            config,
            toolbox: Arc::new(Toolbox {
                answers: Mutex::new(answers),
                requests: Mutex::new(Vec::new()),
                clock: slow.map(|slow| {
                    let start = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
                    (Arc::new(ManualClock::new(start)), slow)
                }),
            }),
        }
    }

    fn engine(&self) -> Engine {
        let toolbox = Arc::clone(&self.toolbox);
        let mut options = self.config.options();
        if let Some((clock, _)) = &self.toolbox.clock {
            options = options.with_clock(Arc::clone(clock) as Arc<dyn Clock>);
        }
        let options = options.with_provider_kind(
            "toolbox",
            move |_setup: &prompt_config::client::ProviderSetup<'_>| -> Arc<dyn Provider> {
                Arc::clone(&toolbox) as Arc<dyn Provider>
            },
        );
        Engine::open(options).unwrap()
    }
}

#[test]
fn valid_tool_calls_come_back_normalised_with_parsed_arguments() {
    let setup = Setup::new(vec![calling(r#"{"city":"Lyon"}"#)]);
    let completion = setup.engine().complete("ask", &asking("Weather?")).unwrap();
    assert_eq!(completion.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(completion.tool_calls.len(), 1);
    let call = &completion.tool_calls[0];
    assert_eq!(
        (call.id.as_str(), call.name.as_str()),
        ("call_1", "get_weather")
    );
    assert_eq!(call.arguments, json!({"city": "Lyon"}));
    assert_eq!(completion.data, None, "tool calls carry no data");
    assert_eq!(completion.repairs, 0);
}

#[test]
fn invalid_tool_arguments_are_repaired_with_a_tool_result_naming_the_violation() {
    let setup = Setup::new(vec![
        calling(r#"{"city":7}"#),
        calling(r#"{"city":"Lyon"}"#),
    ]);
    let completion = setup.engine().complete("ask", &asking("Weather?")).unwrap();
    assert_eq!(completion.repairs, 1);
    assert_eq!(completion.tool_calls[0].arguments, json!({"city": "Lyon"}));
    assert_eq!(
        outcomes(&completion.attempts),
        [("p".into(), InvalidOutput), ("p".into(), Success)]
    );
    assert!(
        completion.attempts[0]
            .message
            .as_deref()
            .unwrap()
            .starts_with("the arguments of tool call get_weather is invalid (schema): /city: "),
        "{:?}",
        completion.attempts[0].message
    );
    let requests = setup.toolbox.requests.lock();
    let repair = &requests[1];
    assert_eq!(repair.len(), requests[0].len() + 2);
    let assistant = &repair[repair.len() - 2];
    assert_eq!(assistant.role, Role::Assistant);
    assert_eq!(assistant.tool_calls[0].id, "call_1");
    assert_eq!(assistant.tool_calls[0].arguments, json!({"city": 7}));
    let result = &repair[repair.len() - 1];
    assert_eq!(result.role, Role::Tool);
    assert_eq!(result.tool_call_id.as_deref(), Some("call_1"));
    assert!(result.content.contains("/city: "), "{}", result.content);
}

#[test]
fn a_call_of_an_undeclared_tool_is_invalid_output() {
    let mut unknown = calling("{}");
    unknown.tool_calls[0].name = "delete_everything".into();
    let setup = Setup::new(vec![unknown.clone(), unknown]);
    let error = failed_with(
        setup.engine().complete("ask", &asking("Weather?")),
        ErrorKind::InvalidOutput,
    );
    let details = error.details();
    assert_eq!(details["reason"], "unknown_tool");
    assert_eq!(details["tool"], "delete_everything");
}

#[test]
fn no_repair_is_sent_once_the_deadline_has_passed() {
    // The invalid answer arrives 1.2 s into a call with a 1 s deadline.
    let slow = Some(Duration::from_millis(1200));
    let setup = Setup::timed(
        vec![calling(r#"{"city":7}"#), calling(r#"{"city":"Lyon"}"#)],
        slow,
    );
    let error = failed_with(
        setup.engine().complete("ask", &asking("Weather?")),
        ErrorKind::Timeout,
    );
    assert_eq!(outcomes(error.attempts()), [("p".into(), InvalidOutput)]);
    assert_eq!(setup.toolbox.requests.lock().len(), 1);
}

#[test]
fn a_streamed_cache_hit_replays_its_tool_calls_as_tool_call_deltas() {
    let setup = Setup::cached(vec![calling(r#"{"city":"Lyon"}"#)]);
    let engine = setup.engine();
    let stored = engine.complete("ask", &asking("Weather?")).unwrap();
    let mut seen = Vec::new();
    let hit = engine
        .stream("ask", &asking("Weather?"), |event| {
            if let StreamEvent::ToolCallDelta {
                index,
                id,
                name,
                arguments,
            } = event
            {
                seen.push((
                    index,
                    id.map(str::to_string),
                    name.map(str::to_string),
                    arguments.to_string(),
                ));
            }
            StreamControl::Continue
        })
        .unwrap();
    assert!(hit.cache.is_some(), "the second call is a hit");
    assert_eq!(setup.toolbox.requests.lock().len(), 1);
    assert_eq!(hit.tool_calls, stored.tool_calls);
    assert_eq!(
        seen,
        [(
            0,
            Some("call_1".into()),
            Some("get_weather".into()),
            r#"{"city":"Lyon"}"#.into()
        )]
    );
    assert_eq!(hit.stream.unwrap().chunks, 1);
}
