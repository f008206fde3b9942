//! The mock provider's structured answers: JSON valid against any schema of the subset (a
//! property test over generated schemas), deterministic on the prompt; a configured share of
//! deliberately invalid answers; tool calls with valid arguments (first or named tool, none
//! after a tool result or with `tool_choice: none`); and both streamed piece by piece.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use prompt_config::client::{
    FinishReason, ManualClock, MockProvider, Provider, ProviderRequest, ProviderResponse,
    SeededRandom, StreamChunk, StreamTimeouts,
};
use prompt_config::config::MockSettings;
use prompt_config::output::{
    OutputSchema, RawToolCall, ToolChoice, ToolDefinition, normalise_tool_calls,
};
use prompt_config::{Message, ModelParameters, Role};
use proptest::prelude::*;
use serde_json::{Value, json};

fn mock(invalid_output_share: f64, seed: u64) -> MockProvider {
    let settings = MockSettings {
        invalid_output_share,
        stream_chunk_chars: 5,
        ..MockSettings::default()
    };
    MockProvider::new(
        "mock",
        settings,
        Arc::new(ManualClock::new(Utc::now())),
        Arc::new(SeededRandom::new(seed)),
    )
}

fn messages(user: &str) -> Vec<Message> {
    vec![
        Message::new(Role::System, "You suggest career paths as JSON."),
        Message::new(Role::User, user),
    ]
}

/// One call of `mock` with the given schema, tools and choice.
fn call(
    mock: &MockProvider,
    messages: &[Message],
    output: Option<&OutputSchema>,
    tools: &[ToolDefinition],
    tool_choice: &ToolChoice,
) -> ProviderResponse {
    let parameters = ModelParameters::default();
    let request = ProviderRequest {
        model: "mock-small",
        messages,
        parameters: &parameters,
        request_id: "req_mock",
        timeout: Duration::from_secs(10),
        output,
        tools,
        tool_choice,
        traceparent: None,
    };
    mock.call(&request).expect("the mock answers")
}

fn career_paths() -> OutputSchema {
    let schema = json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["career_paths"],
        "properties": {
            "career_paths": {
                "type": "array",
                "minItems": 3,
                "maxItems": 3,
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["title", "why", "skills_to_add", "first_step", "change"],
                    "properties": {
                        "title": {"type": "string", "minLength": 1},
                        "why": {"type": "string"},
                        "skills_to_add": {"type": "array", "items": {"type": "string"}},
                        "first_step": {"type": "string"},
                        "change": {"enum": ["small", "medium", "large"]},
                        "years": {"type": "integer", "minimum": 0, "maximum": 5}
                    }
                }
            }
        }
    });
    OutputSchema::compile("career_paths", schema, true).expect("a valid schema")
}

fn lookup_tool() -> ToolDefinition {
    ToolDefinition::compile(
        "lookup_salary",
        Some("Median salary of a role in a sector.".to_string()),
        json!({
            "type": "object",
            "required": ["role", "sector"],
            "additionalProperties": false,
            "properties": {
                "role": {"type": "string", "minLength": 1},
                "sector": {"enum": ["technology", "finance", "healthcare"]},
                "years": {"type": "integer", "minimum": 0}
            }
        }),
    )
    .expect("a valid tool")
}

fn other_tool() -> ToolDefinition {
    ToolDefinition::compile(
        "list_courses",
        None,
        json!({"type": "object", "required": ["topic"], "properties": {"topic": {"type": "string"}}}),
    )
    .expect("a valid tool")
}

#[test]
fn an_answer_to_a_schema_is_json_valid_against_it_made_of_the_prompts_words() {
    let schema = career_paths();
    let response = call(
        &mock(0.0, 1),
        &messages("Analyst moving into healthcare analytics"),
        Some(&schema),
        &[],
        &ToolChoice::Auto,
    );
    let data = schema.validate(&response.text).expect("a valid answer");
    assert_eq!(data["career_paths"].as_array().map(Vec::len), Some(3));
    let title = data["career_paths"][0]["title"]
        .as_str()
        .unwrap_or_default();
    let words = ["Analyst", "moving", "into", "healthcare", "analytics"];
    assert!(
        title.split(' ').all(|word| words.contains(&word)),
        "{title}"
    );
    assert_eq!(response.finish_reason, Some(FinishReason::Stop));
}

#[test]
fn the_same_prompt_gets_the_same_structured_answer() {
    let schema = career_paths();
    let first = call(
        &mock(0.0, 1),
        &messages("Nurse"),
        Some(&schema),
        &[],
        &ToolChoice::Auto,
    );
    let again = call(
        &mock(0.0, 9),
        &messages("Nurse"),
        Some(&schema),
        &[],
        &ToolChoice::Auto,
    );
    assert_eq!(first.text, again.text);
}

#[test]
fn a_request_without_schema_or_tools_still_gets_the_prose_answer() {
    let response = call(
        &mock(1.0, 1),
        &messages("Nurse"),
        None,
        &[],
        &ToolChoice::Auto,
    );
    assert!(
        response.text.starts_with("[mock mock/mock-small]"),
        "{}",
        response.text
    );
    assert!(response.tool_calls.is_empty());
}

#[test]
fn with_a_share_of_one_every_answer_is_invalid_alternating_kinds() {
    let schema = career_paths();
    let mock = mock(1.0, 3);
    let mut not_json = 0;
    for index in 0..20 {
        let response = call(
            &mock,
            &messages(&format!("profile {index}")),
            Some(&schema),
            &[],
            &ToolChoice::Auto,
        );
        let invalid = schema
            .validate(&response.text)
            .expect_err("an invalid answer");
        if serde_json::from_str::<Value>(&response.text).is_err() {
            not_json += 1;
        }
        assert!(!invalid.violations.is_empty());
    }
    assert!(
        (1..20).contains(&not_json),
        "{not_json} of 20 were not JSON"
    );
}

#[test]
fn the_invalid_share_is_honoured_on_the_engines_random() {
    let schema = career_paths();
    let mock = mock(0.25, 11);
    let invalid = (0..400)
        .filter(|index| {
            let response = call(
                &mock,
                &messages(&format!("profile {index}")),
                Some(&schema),
                &[],
                &ToolChoice::Auto,
            );
            schema.validate(&response.text).is_err()
        })
        .count();
    assert!((70..=130).contains(&invalid), "{invalid} of 400 invalid");
}

#[test]
fn with_tools_the_mock_calls_the_first_with_valid_arguments() {
    let tools = [lookup_tool(), other_tool()];
    let response = call(
        &mock(0.0, 1),
        &messages("Analyst"),
        None,
        &tools,
        &ToolChoice::Auto,
    );
    assert_eq!(response.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(response.text, "");
    let calls = normalise_tool_calls(&tools, response.tool_calls).expect("valid arguments");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].name, "lookup_salary");
    assert!(calls[0].arguments["role"].is_string());
}

#[test]
fn a_named_tool_choice_is_the_tool_called() {
    let tools = [lookup_tool(), other_tool()];
    let choice = ToolChoice::Tool("list_courses".to_string());
    let response = call(&mock(0.0, 1), &messages("Analyst"), None, &tools, &choice);
    let calls = normalise_tool_calls(&tools, response.tool_calls).expect("valid arguments");
    assert_eq!(calls[0].name, "list_courses");
}

#[test]
fn after_a_tool_result_the_mock_answers_instead_of_calling_again() {
    let schema = career_paths();
    let tools = [lookup_tool()];
    let mut history = messages("Analyst");
    history.push(Message::tool_result("call_mock_1", "{\"median\": 52000}"));
    let response = call(
        &mock(0.0, 1),
        &history,
        Some(&schema),
        &tools,
        &ToolChoice::Auto,
    );
    assert!(response.tool_calls.is_empty());
    assert!(schema.validate(&response.text).is_ok());
}

#[test]
fn the_repair_of_an_answer_after_a_tool_result_is_an_answer_not_a_tool_call() {
    let schema = career_paths();
    let tools = [lookup_tool()];
    let mut history = messages("Analyst");
    history.push(Message::tool_result("call_mock_1", "{\"median\": 52000}"));
    // The repair conversation: the invalid answer, then the instruction in a user turn.
    history.push(Message::new(Role::Assistant, "not JSON"));
    history.push(Message::new(
        Role::User,
        "Your previous answer was invalid.",
    ));
    let response = call(
        &mock(0.0, 1),
        &history,
        Some(&schema),
        &tools,
        &ToolChoice::Auto,
    );
    assert!(response.tool_calls.is_empty());
    assert!(schema.validate(&response.text).is_ok());
}

#[test]
fn tool_choice_none_gets_an_answer_not_a_call() {
    let response = call(
        &mock(0.0, 1),
        &messages("Analyst"),
        None,
        &[lookup_tool()],
        &ToolChoice::None,
    );
    assert!(response.tool_calls.is_empty());
    assert_eq!(response.finish_reason, Some(FinishReason::Stop));
}

#[test]
fn invalid_tool_arguments_fail_normalisation() {
    let tools = [lookup_tool()];
    let mock = mock(1.0, 5);
    for index in 0..10 {
        let response = call(
            &mock,
            &messages(&format!("profile {index}")),
            None,
            &tools,
            &ToolChoice::Auto,
        );
        assert!(normalise_tool_calls(&tools, response.tool_calls).is_err());
    }
}

/// Every chunk of a mock stream for the request, up to its `Done`.
fn stream(
    messages: &[Message],
    output: Option<&OutputSchema>,
    tools: &[ToolDefinition],
) -> Vec<StreamChunk> {
    let mock = mock(0.0, 1);
    let parameters = ModelParameters::default();
    let request = ProviderRequest {
        model: "mock-small",
        messages,
        parameters: &parameters,
        request_id: "req_mock",
        timeout: Duration::from_secs(10),
        output,
        tools,
        tool_choice: &ToolChoice::Auto,
        traceparent: None,
    };
    let timeouts = StreamTimeouts {
        first_token: Duration::from_secs(10),
        stall: Duration::from_secs(10),
    };
    let mut stream = mock.stream(&request, timeouts).expect("a stream");
    let mut chunks = Vec::new();
    loop {
        let chunk = stream.next_chunk().expect("a chunk");
        let done = matches!(chunk, StreamChunk::Done(_));
        chunks.push(chunk);
        if done {
            return chunks;
        }
    }
}

#[test]
fn a_streamed_json_answer_arrives_as_deltas_that_join_to_the_valid_text() {
    let schema = career_paths();
    let chunks = stream(&messages("Analyst"), Some(&schema), &[]);
    let joined: String = chunks
        .iter()
        .filter_map(|chunk| match chunk {
            StreamChunk::Delta(text) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(chunks.len() > 2);
    assert!(schema.validate(&joined).is_ok());
}

#[test]
fn a_streamed_tool_call_arrives_as_pieces_naming_it_first() {
    let tools = [lookup_tool()];
    let chunks = stream(&messages("Analyst"), None, &tools);
    let mut pieces = Vec::new();
    let mut final_calls: Vec<RawToolCall> = Vec::new();
    for chunk in chunks {
        match chunk {
            StreamChunk::ToolCallDelta {
                index,
                id,
                name,
                arguments,
            } => pieces.push((index, id, name, arguments)),
            StreamChunk::Done(response) => final_calls = response.tool_calls,
            _ => {}
        }
    }
    assert!(pieces.len() > 1);
    assert_eq!(pieces[0].2.as_deref(), Some("lookup_salary"));
    assert!(
        pieces[1..]
            .iter()
            .all(|piece| piece.1.is_none() && piece.2.is_none())
    );
    let arguments: String = pieces.iter().map(|piece| piece.3.as_str()).collect();
    assert_eq!(final_calls.len(), 1);
    assert_eq!(arguments, final_calls[0].arguments);
    assert_eq!(pieces[0].1.as_deref(), Some(final_calls[0].id.as_str()));
}

/// A schema of the subset: scalars with bounds, enums, nullable types, nested objects with
/// every property and arrays with item counts.
fn subset_schema() -> impl Strategy<Value = Value> {
    let name = "[a-z_]{1,8}";
    let leaf = prop_oneof![
        (0u64..6, 0u64..20).prop_map(|(min, extra)| {
            json!({"type": "string", "minLength": min, "maxLength": min + extra})
        }),
        (-50i64..50, 0i64..100).prop_map(|(min, span)| {
            json!({"type": "integer", "minimum": min, "maximum": min + span})
        }),
        (-50i64..50, 1i64..100).prop_map(|(min, span)| {
            json!({"type": "integer", "exclusiveMinimum": min, "exclusiveMaximum": min + span + 1})
        }),
        (-5.0f64..5.0, 0.5f64..10.0).prop_map(|(min, span)| {
            json!({"type": "number", "exclusiveMinimum": min, "maximum": min + span})
        }),
        Just(json!({"type": "boolean"})),
        Just(json!({"type": ["string", "null"]})),
        Just(json!({"type": "null"})),
        prop::collection::vec("[a-z ]{0,6}", 1..4).prop_map(|options| json!({"enum": options})),
        "[a-z]{0,5}".prop_map(|constant| json!({"const": constant})),
        Just(json!({"type": "string", "format": "date"})),
    ];
    leaf.prop_recursive(4, 24, 5, move |inner| {
        prop_oneof![
            (
                prop::collection::btree_map(name, inner.clone(), 0..5),
                any::<bool>()
            )
                .prop_map(|(properties, all_required)| {
                    let required: Vec<&String> = if all_required {
                        properties.keys().collect()
                    } else {
                        properties.keys().take(1).collect()
                    };
                    json!({
                        "type": "object",
                        "additionalProperties": false,
                        "required": required,
                        "properties": properties,
                    })
                }),
            (inner, 0u64..4, 0u64..3).prop_map(|(items, min, extra)| {
                json!({"type": "array", "items": items, "minItems": min, "maxItems": min + extra})
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn every_answer_to_a_subset_schema_validates(
        properties in prop::collection::btree_map("[a-z_]{1,8}", subset_schema(), 0..6),
        prompt in "\\PC{0,60}",
    ) {
        let required: Vec<&String> = properties.keys().collect();
        let schema = json!({
            "type": "object",
            "additionalProperties": false,
            "required": required,
            "properties": properties,
            "$defs": {"unused": {"type": "string"}},
        });
        let output = OutputSchema::compile("generated", schema, true).expect("a valid schema");
        let response = call(&mock(0.0, 1), &messages(&prompt), Some(&output), &[], &ToolChoice::Auto);
        prop_assert!(output.validate(&response.text).is_ok(), "{}", response.text);
    }

    #[test]
    fn every_tool_call_to_a_subset_schema_has_valid_arguments(
        parameters in prop::collection::btree_map("[a-z_]{1,8}", subset_schema(), 0..6),
        prompt in "\\PC{0,60}",
    ) {
        let tool = ToolDefinition::compile(
            "generated",
            None,
            json!({"type": "object", "properties": parameters}),
        )
        .expect("a valid tool");
        let tools = [tool];
        let response = call(&mock(0.0, 1), &messages(&prompt), None, &tools, &ToolChoice::Required);
        prop_assert!(normalise_tool_calls(&tools, response.tool_calls).is_ok());
    }
}
