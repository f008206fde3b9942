//! A streamed structured answer is validated when its stream ends: an invalid one tells the
//! caller its deltas are void (a `Restart`) before the repair streams; a cached structured
//! answer carries its data again.

use prompt_config::client::AttemptOutcome::{InvalidOutput, Success};
use prompt_config::client::{StreamControl, StreamEvent};
use prompt_config::{Context, Engine, ErrorKind};
use serde_json::json;

use crate::schema_fixtures::{
    CareerPath, VALID, answer, complete, edit_feature, failed_with, outcomes, structured,
};
use crate::support::engine_faults::TEXT;
use crate::support::http_server::{Reply, TestServer};
use crate::support::sse_fixtures::openai_events;

/// What the callback saw: deltas as text, restarts as `restart provider/model: reason`.
fn stream(
    engine: &Engine,
    stop_at_restart: bool,
) -> (
    Vec<String>,
    prompt_config::Result<prompt_config::client::Completion>,
) {
    let mut seen = Vec::new();
    let context = Context::new("user-1").variable("text", TEXT);
    let result = engine.stream("summary", &context, |event| match event {
        StreamEvent::Delta(text) => {
            seen.push(text.to_string());
            StreamControl::Continue
        }
        StreamEvent::Restart {
            provider,
            model,
            reason,
        } => {
            seen.push(format!("restart {provider}/{model}: {reason}"));
            if stop_at_restart {
                StreamControl::Stop
            } else {
                StreamControl::Continue
            }
        }
        _ => StreamControl::Continue,
    });
    (seen, result)
}

fn streamed(texts: &[&str]) -> Reply {
    Reply::events(openai_events(texts, Some((20, 4, 0))))
}

#[test]
fn an_invalid_streamed_answer_restarts_the_callers_text_before_the_repair_streams() {
    let server = TestServer::start(vec![
        streamed(&["{\"title\":", " \"Data engineer\"}"]),
        streamed(&[
            "{\"title\":\"Data engineer\",",
            "\"skills\":[\"SQL\",\"Rust\"]}",
        ]),
    ]);
    // `restart_on_incomplete` is off (the default): an invalid answer restarts all the same.
    let setup = structured(&server, None, true);
    let (seen, result) = stream(&setup.engine(), false);
    let completion = result.unwrap();
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_eq!(seen[..2], ["{\"title\":", " \"Data engineer\"}"]);
    assert!(
        seen[2]
            .starts_with("restart openai/gpt-test: invalid output: the answer is invalid (schema)"),
        "{}",
        seen[2]
    );
    assert_eq!(seen[3..].concat(), VALID);
    assert_eq!(completion.text, VALID, "the text is the repair's alone");
    assert_eq!(completion.repairs, 1);
    assert_eq!(
        completion.parse::<CareerPath>().unwrap().skills,
        ["SQL", "Rust"]
    );
    assert_eq!(
        outcomes(&completion.attempts),
        [("openai".into(), InvalidOutput), ("openai".into(), Success)]
    );
    assert_eq!(
        completion.stream.unwrap().chunks,
        2,
        "the answer's own chunks"
    );
}

#[test]
fn a_caller_stopping_at_the_restart_of_an_invalid_answer_ends_the_call_as_invalid_output() {
    let server = TestServer::start(vec![streamed(&["not json"]), streamed(&[VALID])]);
    let setup = structured(&server, None, true);
    let (seen, result) = stream(&setup.engine(), true);
    let error = failed_with(result, ErrorKind::InvalidOutput);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(error.details()["raw_text"], "not json");
    assert_eq!(server.requests().len(), 1, "no repair was sent");
}

#[test]
fn a_cache_hit_of_a_structured_version_carries_the_parsed_data() {
    let server = TestServer::start(vec![answer(VALID)]);
    let setup = structured(&server, None, true);
    edit_feature(&setup, |feature| {
        feature["cache"] = json!({"ttl_seconds": 3600});
    });
    let engine = setup.engine();
    let stored = complete(&engine).unwrap();
    assert!(stored.cache.is_none());
    let hit = complete(&engine).unwrap();
    assert!(hit.cache.is_some(), "the second call is a hit");
    assert_eq!(server.requests().len(), 1);
    assert_eq!(hit.data, stored.data);
    assert_eq!(hit.parse::<CareerPath>().unwrap().title, "Data engineer");
}
