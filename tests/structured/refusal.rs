//! A refusal of a structured request and a structured answer cut at `max_tokens` are errors of
//! their own kinds: not invalid output, neither repaired nor failed over, and charged.

use prompt_config::ErrorKind;
use prompt_config::client::AttemptOutcome::Success;
use serde_json::{Value, json};

use crate::schema_fixtures::{
    ANSWER_USD, VALID, answer, complete, failed_with, openai_answer, outcomes, structured,
};
use crate::support::http_server::TestServer;
use crate::support::stream_engine::{feature_spend, with_budget};

const REFUSAL: &str = "I can't help with that request.";

#[test]
fn a_refusal_of_a_structured_request_is_a_refusal_error_with_its_message() {
    let primary = TestServer::start(vec![openai_answer(Value::Null, Some(REFUSAL), "stop")]);
    let backup = TestServer::start(vec![answer(VALID)]);
    let setup = structured(&primary, Some(&backup), true);
    let error = failed_with(complete(&setup.engine()), ErrorKind::Refusal);
    assert_eq!(error.details()["refusal"], REFUSAL);
    assert!(error.to_string().contains(REFUSAL), "{error}");
    assert_eq!(outcomes(error.attempts()), [("openai".into(), Success)]);
    assert!(backup.requests().is_empty(), "a refusal is not failed over");
    assert_eq!(primary.requests().len(), 1, "nor repaired");
    assert!(!ErrorKind::Refusal.is_retryable());
}

#[test]
fn a_structured_answer_cut_at_the_token_limit_is_output_truncated_with_its_partial_text() {
    let partial = r#"{"title":"Data engin"#;
    let primary = TestServer::start(vec![openai_answer(json!(partial), None, "length")]);
    let backup = TestServer::start(vec![answer(VALID)]);
    let setup = structured(&primary, Some(&backup), true);
    with_budget(&setup);
    let engine = setup.engine();
    let error = failed_with(complete(&engine), ErrorKind::OutputTruncated);
    assert_eq!(error.details()["partial_text"], partial);
    assert!(error.to_string().contains("raise max_tokens"), "{error}");
    assert!(backup.requests().is_empty() && primary.requests().len() == 1);
    assert_eq!(error.details()["cost_usd"], json!(ANSWER_USD));
    assert!(
        (feature_spend(&engine) - ANSWER_USD).abs() < 1e-12,
        "the cut answer is charged"
    );
}
