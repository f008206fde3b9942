//! Every answer of a version with an output schema is parsed and validated: a valid one is the
//! Completion's `data`, typed by `Completion::parse`.

use prompt_config::client::AttemptOutcome;
use serde_json::json;

use crate::schema_fixtures::{CareerPath, VALID, answer, complete, outcomes, structured};
use crate::support::http_server::TestServer;

#[test]
fn a_valid_json_answer_is_the_completions_data_and_parses_into_a_type() {
    let server = TestServer::start(vec![answer(VALID)]);
    let setup = structured(&server, None, true);
    let completion = complete(&setup.engine()).unwrap();
    assert_eq!(
        completion.data,
        Some(json!({"title": "Data engineer", "skills": ["SQL", "Rust"]}))
    );
    assert_eq!(completion.text, VALID, "the raw text stays beside the data");
    let parsed: CareerPath = completion.parse().unwrap();
    assert_eq!(
        parsed,
        CareerPath {
            title: "Data engineer".into(),
            skills: vec!["SQL".into(), "Rust".into()]
        }
    );
    assert_eq!(completion.repairs, 0);
    assert!(completion.tool_calls.is_empty());
    assert_eq!(
        outcomes(&completion.attempts),
        [("openai".to_string(), AttemptOutcome::Success)]
    );
}

#[test]
fn parse_into_a_type_the_data_does_not_fit_is_an_error_not_a_panic() {
    let server = TestServer::start(vec![answer(VALID)]);
    let setup = structured(&server, None, true);
    let completion = complete(&setup.engine()).unwrap();
    let error = completion.parse::<Vec<u32>>().unwrap_err();
    assert!(error.to_string().contains("invalid type"), "{error}");
}
