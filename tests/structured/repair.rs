//! An invalid answer is sent back once to the same model with its validation errors (the
//! assistant's invalid turn, then a user turn with the repair instruction), unless the version
//! turns repair off.

use prompt_config::client::AttemptOutcome::{InvalidOutput, Success};
use prompt_config::client::FailureKind;

use crate::schema_fixtures::{
    BACKUP, NOT_JSON, VALID, VIOLATING, answer, complete, outcomes, roles_and_contents, structured,
};
use crate::support::http_server::TestServer;

#[test]
fn a_not_json_answer_is_repaired_on_the_same_model_with_the_answer_sent_back() {
    let server = TestServer::start(vec![answer(NOT_JSON), answer(VALID)]);
    let setup = structured(&server, None, true);
    let completion = complete(&setup.engine()).unwrap();
    assert_eq!(completion.repairs, 1);
    assert_eq!(completion.text, VALID);
    assert!(completion.data.is_some());
    assert_eq!(
        outcomes(&completion.attempts),
        [("openai".into(), InvalidOutput), ("openai".into(), Success)]
    );
    let invalid = &completion.attempts[0];
    assert_eq!(invalid.failure, Some(FailureKind::InvalidOutput));
    assert_eq!(invalid.error_type().as_deref(), Some("invalid_output"));
    assert!(
        invalid.message.as_deref().unwrap().contains("not JSON"),
        "{:?}",
        invalid.message
    );

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let first = roles_and_contents(&requests[0].json());
    let repair = roles_and_contents(&requests[1].json());
    assert_eq!(repair.len(), first.len() + 2, "{repair:?}");
    assert_eq!(
        repair[..first.len()],
        first[..],
        "the original messages come first"
    );
    assert_eq!(repair[first.len()], ("assistant".into(), NOT_JSON.into()));
    let (role, instruction) = &repair[first.len() + 1];
    assert_eq!(role, "user");
    assert!(instruction.contains("(root): not JSON"), "{instruction}");
}

#[test]
fn a_schema_violation_is_repaired_with_its_json_pointer_in_the_instruction() {
    let server = TestServer::start(vec![answer(VIOLATING), answer(VALID)]);
    let setup = structured(&server, None, true);
    let completion = complete(&setup.engine()).unwrap();
    assert_eq!(completion.repairs, 1);
    let repair = roles_and_contents(&server.requests()[1].json());
    let (_, assistant) = &repair[repair.len() - 2];
    assert_eq!(assistant, VIOLATING);
    let (_, instruction) = repair.last().unwrap();
    assert!(instruction.contains("/skills: "), "{instruction}");
}

#[test]
fn with_repair_off_an_invalid_answer_fails_over_without_a_repair() {
    let primary = TestServer::start(vec![answer(NOT_JSON), answer(VALID)]);
    let backup = TestServer::start(vec![answer(VALID)]);
    let setup = structured(&primary, Some(&backup), false);
    let completion = complete(&setup.engine()).unwrap();
    assert_eq!(completion.repairs, 0);
    assert_eq!(completion.provider, BACKUP.0);
    assert_eq!(primary.requests().len(), 1, "no repair was sent");
    assert_eq!(
        outcomes(&completion.attempts),
        [("openai".into(), InvalidOutput), ("backup".into(), Success)]
    );
    let sent = roles_and_contents(&backup.single_request().json());
    assert!(
        sent.iter().all(|(role, _)| role != "assistant"),
        "the next model gets the original messages: {sent:?}"
    );
}
