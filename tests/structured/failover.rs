//! After the repair, an invalid answer fails over to the next model; a chain of invalid answers
//! fails with `invalid_output` carrying the violations and the last raw text. Invalid answers are
//! the model's, not the provider's: the breaker never counts them, the budget does.

use prompt_config::ErrorKind;
use prompt_config::client::AttemptOutcome::{InvalidOutput, Success};
use prompt_config::client::{BreakerState, CompleteError};
use serde_json::json;

use crate::schema_fixtures::{
    ANSWER_USD, BACKUP, NOT_JSON, VALID, VIOLATING, answer, complete, failed_with, outcomes,
    roles_and_contents, structured,
};
use crate::support::engine_faults::state_of;
use crate::support::http_server::TestServer;
use crate::support::stream_engine::{feature_spend, with_budget};

#[test]
fn an_answer_invalid_twice_fails_over_to_the_next_model() {
    let primary = TestServer::start(vec![answer(VIOLATING), answer(VIOLATING)]);
    let backup = TestServer::start(vec![answer(VALID)]);
    let setup = structured(&primary, Some(&backup), true);
    let completion = complete(&setup.engine()).unwrap();
    assert_eq!(
        outcomes(&completion.attempts),
        [
            ("openai".into(), InvalidOutput),
            ("openai".into(), InvalidOutput),
            ("backup".into(), Success)
        ]
    );
    assert_eq!(completion.repairs, 1);
    assert_eq!(
        (completion.provider.as_str(), completion.model.as_str()),
        BACKUP
    );
    assert_eq!(
        completion.data.as_ref().unwrap()["skills"],
        json!(["SQL", "Rust"])
    );
    let sent = roles_and_contents(&backup.single_request().json());
    let original = roles_and_contents(&primary.requests()[0].json());
    assert_eq!(sent, original, "the next model gets the original messages");
}

#[test]
fn every_answer_invalid_fails_with_invalid_output_carrying_the_violations() {
    let primary = TestServer::start(vec![answer(NOT_JSON), answer(NOT_JSON)]);
    let backup = TestServer::start(vec![answer(NOT_JSON), answer(VIOLATING)]);
    let setup = structured(&primary, Some(&backup), true);
    let error = failed_with(complete(&setup.engine()), ErrorKind::InvalidOutput);
    assert_eq!(
        outcomes(error.attempts()),
        [
            ("openai".into(), InvalidOutput),
            ("openai".into(), InvalidOutput),
            ("backup".into(), InvalidOutput),
            ("backup".into(), InvalidOutput)
        ]
    );
    let details = error.details();
    assert_eq!(details["raw_text"], VIOLATING, "the last answer's text");
    assert_eq!(details["reason"], "schema");
    let violations = details["violations"].as_array().unwrap();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0]["pointer"], "/skills");
    assert!(violations[0]["message"].as_str().unwrap().contains("array"));
    assert_eq!(details["attempts"].as_array().unwrap().len(), 4);
    assert!(
        error
            .to_string()
            .starts_with("every answer broke the output schema (4 invalid answers")
    );
    assert!(ErrorKind::InvalidOutput.is_retryable());
}

#[test]
fn a_run_of_invalid_answers_never_opens_the_breaker() {
    // The breaker opens after 3 consecutive failures: 6 invalid answers in a row say nothing
    // about the provider's health.
    let server = TestServer::start_with_fallback(Vec::new(), answer(NOT_JSON));
    let setup = structured(&server, None, true);
    let engine = setup.engine();
    for _ in 0..3 {
        failed_with(complete(&engine), ErrorKind::InvalidOutput);
    }
    assert_eq!(state_of(&engine, "openai"), BreakerState::Closed);
    failed_with(complete(&engine), ErrorKind::InvalidOutput);
    assert_eq!(
        server.requests().len(),
        8,
        "every call still reached the provider"
    );
}

#[test]
fn invalid_answers_are_charged_in_the_completions_cost_and_usage() {
    let primary = TestServer::start(vec![answer(NOT_JSON), answer(VIOLATING)]);
    let backup = TestServer::start(vec![answer(VALID)]);
    let setup = structured(&primary, Some(&backup), true);
    with_budget(&setup);
    let engine = setup.engine();
    let completion = complete(&engine).unwrap();
    assert!(
        (completion.cost_usd - 3.0 * ANSWER_USD).abs() < 1e-12,
        "{}",
        completion.cost_usd
    );
    assert_eq!(completion.usage.output_tokens, 12);
    assert!(!completion.cost_estimated);
    assert!((feature_spend(&engine) - 3.0 * ANSWER_USD).abs() < 1e-12);
}

#[test]
fn a_call_failed_on_invalid_answers_settles_what_they_cost() {
    let server = TestServer::start(vec![answer(NOT_JSON), answer(NOT_JSON)]);
    let setup = structured(&server, None, true);
    with_budget(&setup);
    let engine = setup.engine();
    let error = failed_with(complete(&engine), ErrorKind::InvalidOutput);
    let CompleteError::Unusable { answer, .. } = &error else {
        panic!("expected an unusable answer, got {error:?}");
    };
    assert!((answer.cost_usd - 2.0 * ANSWER_USD).abs() < 1e-12);
    assert_eq!(error.charged().map(|(usd, _)| usd), Some(answer.cost_usd));
    assert!((feature_spend(&engine) - 2.0 * ANSWER_USD).abs() < 1e-12);
}
