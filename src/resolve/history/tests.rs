use serde_json::{Value, json};

use super::{InvalidMessage, check, message_bytes};
use crate::config::HistorySettings;
use crate::output::ToolCall;
use crate::prompt::{Message, Role};

fn user(text: &str) -> Message {
    Message::new(Role::User, text)
}

fn assistant(text: &str) -> Message {
    Message::new(Role::Assistant, text)
}

fn call(id: &str, name: &str, arguments: Value) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: name.into(),
        arguments,
    }
}

fn asking(calls: Vec<ToolCall>) -> Message {
    Message {
        tool_calls: calls,
        ..Message::new(Role::Assistant, "")
    }
}

fn defaults(messages: &[Message]) -> Result<(), InvalidMessage> {
    check(messages, &HistorySettings::default())
}

fn refused(messages: &[Message]) -> InvalidMessage {
    defaults(messages).expect_err("the history should be refused")
}

#[test]
fn an_empty_history_is_valid() {
    assert_eq!(defaults(&[]), Ok(()));
}

#[test]
fn a_chat_of_user_and_assistant_turns_is_valid() {
    assert_eq!(
        defaults(&[user("Hi"), assistant("Hello!"), user("Paths into data?")]),
        Ok(())
    );
}

#[test]
fn a_tool_loop_with_every_call_answered_is_valid() {
    let history = [
        user("Weather in Paris and Rome?"),
        asking(vec![
            call("call_1", "weather", json!({"city": "Paris"})),
            call("call_2", "weather", json!({"city": "Rome"})),
        ]),
        // Results may come in any order.
        Message::tool_result("call_2", "24C"),
        Message::tool_result("call_1", "18C"),
        assistant("Paris 18C, Rome 24C."),
        user("And Oslo?"),
        asking(vec![call("call_3", "weather", json!({"city": "Oslo"}))]),
        Message::tool_result("call_3", "3C"),
    ];
    assert_eq!(defaults(&history), Ok(()));
}

#[test]
fn a_system_message_is_refused_naming_its_role() {
    let problem = refused(&[user("Hi"), Message::new(Role::System, "Be terse")]);
    assert_eq!((problem.index, problem.field.as_str()), (1, "/role"));
    assert!(problem.message.contains("template"), "{}", problem.message);
}

#[test]
fn a_tool_result_without_a_call_before_it_is_refused() {
    let problem = refused(&[user("Hi"), Message::tool_result("call_9", "42")]);
    assert_eq!(
        (problem.index, problem.field.as_str()),
        (1, "/tool_call_id")
    );
    assert!(problem.message.contains("call_9"), "{}", problem.message);
}

#[test]
fn a_tool_result_for_an_unknown_id_is_refused() {
    let problem = refused(&[
        asking(vec![call("call_1", "weather", json!({}))]),
        Message::tool_result("call_2", "42"),
    ]);
    assert_eq!(
        (problem.index, problem.field.as_str()),
        (1, "/tool_call_id")
    );
    assert!(
        problem.message.contains("not a call"),
        "{}",
        problem.message
    );
}

#[test]
fn a_second_result_for_the_same_call_is_refused() {
    let problem = refused(&[
        asking(vec![call("call_1", "weather", json!({}))]),
        Message::tool_result("call_1", "18C"),
        Message::tool_result("call_1", "19C"),
    ]);
    assert_eq!(
        (problem.index, problem.field.as_str()),
        (2, "/tool_call_id")
    );
    assert!(
        problem.message.contains("answered already"),
        "{}",
        problem.message
    );
}

#[test]
fn a_result_after_the_next_user_turn_is_refused() {
    // The call is answered late: the user turn in between is where the history breaks.
    let problem = refused(&[
        asking(vec![call("call_1", "weather", json!({}))]),
        user("Well?"),
        Message::tool_result("call_1", "18C"),
    ]);
    assert_eq!((problem.index, problem.field.as_str()), (1, "/role"));
    assert!(problem.message.contains("call_1"), "{}", problem.message);
}

#[test]
fn an_unanswered_call_at_the_end_is_refused_at_its_turn() {
    let problem = refused(&[
        user("Weather?"),
        asking(vec![
            call("call_1", "weather", json!({})),
            call("call_2", "weather", json!({})),
        ]),
        Message::tool_result("call_1", "18C"),
    ]);
    assert_eq!((problem.index, problem.field.as_str()), (1, "/tool_calls"));
    assert!(problem.message.contains("call_2"), "{}", problem.message);
}

#[test]
fn a_tool_message_needs_a_tool_call_id() {
    let problem = refused(&[
        asking(vec![call("call_1", "weather", json!({}))]),
        Message::new(Role::Tool, "18C"),
    ]);
    assert_eq!(
        (problem.index, problem.field.as_str()),
        (1, "/tool_call_id")
    );
}

#[test]
fn tool_call_ids_are_unique_across_the_history() {
    let problem = refused(&[
        asking(vec![call("call_1", "weather", json!({}))]),
        Message::tool_result("call_1", "18C"),
        asking(vec![call("call_1", "weather", json!({}))]),
        Message::tool_result("call_1", "19C"),
    ]);
    assert_eq!(
        (problem.index, problem.field.as_str()),
        (2, "/tool_calls/0/id")
    );
    assert!(problem.message.contains("twice"), "{}", problem.message);
}

#[test]
fn a_tool_call_id_may_not_be_empty() {
    let problem = refused(&[asking(vec![
        call("call_1", "weather", json!({})),
        call("", "weather", json!({})),
    ])]);
    assert_eq!(
        (problem.index, problem.field.as_str()),
        (0, "/tool_calls/1/id")
    );
}

#[test]
fn tool_call_arguments_must_be_an_object() {
    let problem = refused(&[asking(vec![call(
        "call_1",
        "weather",
        json!("{\"city\":\"Paris\"}"),
    )])]);
    assert_eq!(
        (problem.index, problem.field.as_str()),
        (0, "/tool_calls/0/arguments")
    );
    assert!(problem.message.contains("a string"), "{}", problem.message);
}

#[test]
fn tool_names_follow_the_providers_rule() {
    for name in ["", "get weather", "wétter", &"x".repeat(65)] {
        let problem = refused(&[asking(vec![call("call_1", name, json!({}))])]);
        assert_eq!(problem.field, "/tool_calls/0/name", "{name:?}");
    }
    let longest = "a".repeat(64);
    let history = [
        asking(vec![call("call_1", &longest, json!({}))]),
        Message::tool_result("call_1", "ok"),
    ];
    assert_eq!(defaults(&history), Ok(()));
}

#[test]
fn only_assistant_turns_carry_tool_calls() {
    let mut message = user("Hi");
    message.tool_calls = vec![call("call_1", "weather", json!({}))];
    let problem = refused(&[message]);
    assert_eq!((problem.index, problem.field.as_str()), (0, "/tool_calls"));
}

#[test]
fn only_tool_messages_carry_a_tool_call_id() {
    let mut message = assistant("Hello");
    message.tool_call_id = Some("call_1".into());
    let problem = refused(&[message]);
    assert_eq!(
        (problem.index, problem.field.as_str()),
        (0, "/tool_call_id")
    );
}

#[test]
fn empty_or_blank_content_is_refused_for_user_assistant_and_tool_text() {
    for (history, index) in [
        (vec![user("")], 0),
        (vec![user("Hi"), assistant(" \n\t")], 1),
        (
            vec![
                asking(vec![call("call_1", "weather", json!({}))]),
                Message::tool_result("call_1", ""),
            ],
            1,
        ),
    ] {
        let problem = refused(&history);
        assert_eq!((problem.index, problem.field.as_str()), (index, "/content"));
    }
}

#[test]
fn an_assistant_turn_with_tool_calls_may_have_no_text() {
    let history = [
        asking(vec![call("call_1", "weather", json!({}))]),
        Message::tool_result("call_1", "18C"),
    ];
    assert_eq!(defaults(&history), Ok(()));
}

#[test]
fn a_nul_byte_in_any_text_is_refused() {
    let problem = refused(&[user("a\0b")]);
    assert_eq!(problem.field, "/content");
    let problem = refused(&[asking(vec![call("call\0", "weather", json!({}))])]);
    assert_eq!(problem.field, "/tool_calls/0/id");
    let problem = refused(&[
        asking(vec![call("call_1", "weather", json!({}))]),
        Message::tool_result("call_1\0", "18C"),
    ]);
    assert_eq!(problem.field, "/tool_call_id");
}

#[test]
fn more_messages_than_the_limit_are_refused_at_the_first_one_past_it() {
    let limits = HistorySettings {
        max_messages: 2,
        ..HistorySettings::default()
    };
    let history = [user("a"), assistant("b"), user("c")];
    assert_eq!(check(&history[..2], &limits), Ok(()));
    let problem = check(&history, &limits).unwrap_err();
    assert_eq!((problem.index, problem.field.as_str()), (2, ""));
    assert!(
        problem.message.contains("max_messages"),
        "{}",
        problem.message
    );
}

#[test]
fn more_bytes_than_the_limit_are_refused_at_the_message_that_passes_it() {
    let limits = HistorySettings {
        max_bytes: 10,
        ..HistorySettings::default()
    };
    assert_eq!(check(&[user("12345"), assistant("12345")], &limits), Ok(()));
    let problem = check(&[user("12345"), assistant("123456")], &limits).unwrap_err();
    assert_eq!((problem.index, problem.field.as_str()), (1, ""));
    assert!(problem.message.contains("max_bytes"), "{}", problem.message);
}

#[test]
fn bytes_count_tool_calls_and_results_not_only_content() {
    let turn = asking(vec![call("c1", "fn", json!({"a": 1}))]);
    // "c1" + "fn" + `{"a":1}`.
    assert_eq!(message_bytes(&turn), 2 + 2 + 7);
    assert_eq!(message_bytes(&Message::tool_result("c1", "ok")), 4);
    assert_eq!(message_bytes(&user("日本")), 6);
}

#[test]
fn the_default_limits_are_fifty_messages_and_256_kib() {
    let limits = HistorySettings::default();
    assert_eq!((limits.max_messages, limits.max_bytes), (50, 262_144));
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn any_role() -> impl Strategy<Value = Role> {
        prop_oneof![
            Just(Role::System),
            Just(Role::User),
            Just(Role::Assistant),
            Just(Role::Tool)
        ]
    }

    fn any_message() -> impl Strategy<Value = Message> {
        (
            any_role(),
            any::<String>(),
            proptest::collection::vec(("\\PC{0,8}", "[a-z_\\-]{0,70}", any::<i64>()), 0..3),
            proptest::option::of("\\PC{0,8}"),
        )
            .prop_map(|(role, content, calls, tool_call_id)| Message {
                role,
                content,
                tool_calls: calls
                    .into_iter()
                    .map(|(id, name, number)| call(&id, &name, json!({ "n": number })))
                    .collect(),
                tool_call_id,
            })
    }

    proptest! {
        /// Any history, NUL bytes, empty and odd strings included, is accepted or refused
        /// with a pointer into a message that exists; never a panic.
        #[test]
        fn every_history_is_accepted_or_refused_at_a_message_it_has(
            history in proptest::collection::vec(any_message(), 0..8),
        ) {
            match defaults(&history) {
                Ok(()) => {
                    prop_assert!(history.iter().all(|message| message.role != Role::System));
                    prop_assert!(history.iter().all(|message| !message.content.contains('\0')));
                }
                Err(problem) => {
                    prop_assert!(problem.index < history.len());
                    prop_assert!(problem.field.is_empty() || problem.field.starts_with('/'));
                    prop_assert!(!problem.message.is_empty());
                }
            }
        }

        /// A history of plain user turns within the limits is accepted whatever its text,
        /// unless the text is blank or carries a NUL.
        #[test]
        fn plain_user_text_is_refused_only_when_blank_or_holding_a_nul(text in any::<String>()) {
            let outcome = defaults(&[user(&text)]);
            let expected_ok = !text.trim().is_empty() && !text.contains('\0');
            prop_assert_eq!(outcome.is_ok(), expected_ok);
        }

        /// A single huge message past the byte limit is refused by size, before anything else.
        #[test]
        fn a_message_past_the_byte_limit_is_refused_by_size(extra in 1usize..4096) {
            let text = "x".repeat(HistorySettings::DEFAULT_MAX_BYTES as usize + extra);
            let problem = defaults(&[user(&text)]).unwrap_err();
            prop_assert_eq!(problem.index, 0);
            prop_assert!(problem.message.contains("max_bytes"));
        }
    }
}
