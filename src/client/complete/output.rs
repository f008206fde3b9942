//! What the walk does with an answer of a structured-output or tool request: it judges the
//! answer (a refusal, a structured answer cut at the output limit, an answer that breaks the
//! version's output schema or a tool's argument schema, or a valid one with its parsed data and
//! tool calls), writes the repair conversation sent back to the same model, and adds up what
//! the unusable answers cost (they were paid for: the call's cost and budget settlement count
//! them). The schema and the validation itself are `crate::output`'s.

use serde_json::Value;

use crate::client::cost::{CallCost, EstimatedPart};
use crate::client::request::CallRequest;
use crate::client::types::{FinishReason, ProviderResponse, Usage};
use crate::output::{InvalidOutput, ToolCall, normalise_tool_calls, repair_instruction};
use crate::prompt::{Message, Role};

/// What an answer is worth to the caller.
pub(super) enum Judged {
    /// Usable: `data` parsed and valid when the version declares an output schema, `tool_calls`
    /// normalised and valid.
    Valid {
        data: Option<Value>,
        tool_calls: Vec<ToolCall>,
    },
    /// It broke the output schema or a tool's argument schema.
    Invalid(InvalidOutput),
    /// The model refused a structured-output or tool request.
    Refused,
    /// A structured answer (or a tool call's arguments) was cut at the output token limit.
    Truncated,
}

/// Judges `response`, an answer to `request`. A request without an output schema or tools, and
/// an answer without tool calls to a request without an output schema, is always valid (prose).
///
/// An answer with tool calls carries no data to validate: the model asked for tools, and the
/// data comes on a later turn of the tool loop.
pub(super) fn judge(request: &CallRequest<'_>, response: &ProviderResponse) -> Judged {
    let structured = request.output.is_some() || !request.tools.is_empty();
    if !structured && response.tool_calls.is_empty() {
        return Judged::Valid {
            data: None,
            tool_calls: Vec::new(),
        };
    }
    let refused =
        response.finish_reason == Some(FinishReason::Refusal) || response.refusal.is_some();
    if refused && structured {
        return Judged::Refused;
    }
    let cut = response.finish_reason == Some(FinishReason::Length);
    if cut && (request.output.is_some() || !response.tool_calls.is_empty()) {
        return Judged::Truncated;
    }
    let tool_calls = match normalise_tool_calls(request.tools, response.tool_calls.clone()) {
        Ok(tool_calls) => tool_calls,
        Err(invalid) => return Judged::Invalid(invalid),
    };
    let data = match request.output {
        Some(schema) if tool_calls.is_empty() => match schema.validate(&response.text) {
            Ok(data) => Some(data),
            Err(invalid) => return Judged::Invalid(invalid),
        },
        _ => None,
    };
    Judged::Valid { data, tool_calls }
}

/// Whether an invalid answer to `request` earns a repair attempt: the output schema's `repair`
/// flag (`output.repair` in the version config, default on); a version with tools and no
/// output schema always repairs its tool calls.
pub(super) fn repairs(request: &CallRequest<'_>) -> bool {
    request.output.is_none_or(|schema| schema.repair())
}

/// The conversation of a repair attempt: the request's messages, the invalid answer as the
/// assistant's turn, then the validation errors.
///
/// An invalid text answer is followed by a user turn with
/// [`repair_instruction`](crate::output::repair_instruction). An answer with tool calls is
/// followed instead by one `tool` message per call carrying the instruction: both providers
/// reject an assistant turn whose tool calls are not each answered (OpenAI answers 400 when an
/// assistant message with `tool_calls` is not followed by a `tool` message for every
/// `tool_call_id`; Anthropic needs a `tool_result` for every `tool_use` in the next user turn).
/// Arguments that are not a JSON object are sent back as `{}`: the instruction names
/// what was wrong with them.
pub(super) fn repair_messages(
    messages: &[Message],
    response: &ProviderResponse,
    invalid: &InvalidOutput,
) -> Vec<Message> {
    let instruction = repair_instruction(invalid);
    let mut repaired = Vec::with_capacity(messages.len() + 1 + response.tool_calls.len().max(1));
    repaired.extend_from_slice(messages);
    let mut answer = Message::new(Role::Assistant, response.text.clone());
    answer.tool_calls = response
        .tool_calls
        .iter()
        .map(|call| ToolCall {
            id: call.id.clone(),
            name: call.name.clone(),
            arguments: serde_json::from_str::<Value>(&call.arguments)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| Value::Object(serde_json::Map::new())),
        })
        .collect();
    let tool_ids: Vec<String> = answer
        .tool_calls
        .iter()
        .map(|call| call.id.clone())
        .collect();
    repaired.push(answer);
    if tool_ids.is_empty() {
        repaired.push(Message::new(Role::User, instruction));
    } else {
        for id in tool_ids {
            repaired.push(Message::tool_result(id, instruction.clone()));
        }
    }
    repaired
}

/// What the answers a call could not use cost: each was a full answer the provider billed.
#[derive(Debug, Default)]
pub(super) struct Charged {
    /// In USD.
    pub(super) cost_usd: f64,
    /// The token counts charged.
    pub(super) usage: Usage,
    /// What of it was estimated (the provider did not report a count, or the model has no price).
    pub(super) estimated: Vec<EstimatedPart>,
}

impl Charged {
    /// Adds one answer's cost.
    pub(super) fn add(&mut self, cost: &CallCost) {
        self.cost_usd += cost.cost_usd;
        add_usage(&mut self.usage, &cost.usage);
        for part in &cost.estimated {
            if !self.estimated.contains(part) {
                self.estimated.push(*part);
            }
        }
    }
}

/// `total += more`, count by count.
pub(super) fn add_usage(total: &mut Usage, more: &Usage) {
    total.input_tokens += more.input_tokens;
    total.output_tokens += more.output_tokens;
    total.cache_read_input_tokens += more.cache_read_input_tokens;
    total.cache_creation_input_tokens += more.cache_creation_input_tokens;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::client::types::UsageReported;
    use crate::config::{ModelParameters, ModelSpec};
    use crate::output::{InvalidReason, OutputSchema, RawToolCall, ToolChoice, ToolDefinition};

    fn schema(repair: bool) -> OutputSchema {
        let schema = json!({
            "type": "object",
            "properties": {"title": {"type": "string"}},
            "required": ["title"],
            "additionalProperties": false
        });
        OutputSchema::compile("career_path", schema, repair).unwrap()
    }

    fn tool() -> ToolDefinition {
        let parameters = json!({
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": false
        });
        ToolDefinition::compile("get_weather", None, parameters).unwrap()
    }

    fn model() -> ModelSpec {
        ModelSpec {
            provider: "openai".into(),
            name: "gpt-test".into(),
            parameters: ModelParameters::default(),
        }
    }

    /// Judges `response` as an answer to a request with `output` and `tools`.
    fn judged(
        output: Option<&OutputSchema>,
        tools: &[ToolDefinition],
        response: &ProviderResponse,
    ) -> Judged {
        let model = model();
        let messages = [Message::new(Role::User, "hi")];
        let request = CallRequest {
            feature: "f",
            version: "1.0.0",
            messages: &messages,
            model: &model,
            fallbacks: &[],
            request_id: "req_1",
            deadline: Duration::from_secs(1),
            output,
            tools,
            tool_choice: &ToolChoice::Auto,
            trace: None,
        };
        judge(&request, response)
    }

    fn response(text: &str, finish_reason: FinishReason) -> ProviderResponse {
        ProviderResponse {
            text: text.into(),
            finish_reason: Some(finish_reason),
            raw_finish_reason: None,
            refusal: None,
            response_id: None,
            response_model: None,
            usage: Usage::default(),
            usage_reported: UsageReported::ALL,
            tool_calls: Vec::new(),
        }
    }

    fn with_call(mut response: ProviderResponse, name: &str, arguments: &str) -> ProviderResponse {
        response.tool_calls.push(RawToolCall {
            id: "call_1".into(),
            name: name.into(),
            arguments: arguments.into(),
        });
        response
    }

    #[test]
    fn a_prose_request_is_never_judged_even_when_refused_or_cut() {
        let mut refused = response("", FinishReason::Refusal);
        refused.refusal = Some("no".into());
        for answer in [refused, response("half a sent", FinishReason::Length)] {
            assert!(matches!(
                judged(None, &[], &answer),
                Judged::Valid { data: None, .. }
            ));
        }
    }

    #[test]
    fn a_refusal_of_a_structured_or_tool_request_is_refused_whatever_its_text() {
        let mut refused = response(r#"{"title":"x"}"#, FinishReason::Stop);
        refused.refusal = Some("I can't.".into());
        assert!(matches!(
            judged(Some(&schema(true)), &[], &refused),
            Judged::Refused
        ));
        let by_reason = response("", FinishReason::Refusal);
        assert!(matches!(
            judged(None, &[tool()], &by_reason),
            Judged::Refused
        ));
    }

    #[test]
    fn length_cuts_a_structured_answer_or_tool_calls_but_not_a_tools_requests_prose() {
        let cut = response(r#"{"title":"Da"#, FinishReason::Length);
        assert!(matches!(
            judged(Some(&schema(true)), &[], &cut),
            Judged::Truncated
        ));
        let cut_call = with_call(response("", FinishReason::Length), "get_weather", "{\"ci");
        assert!(matches!(
            judged(None, &[tool()], &cut_call),
            Judged::Truncated
        ));
        let prose = response("It is sunny in", FinishReason::Length);
        assert!(matches!(
            judged(None, &[tool()], &prose),
            Judged::Valid { data: None, .. }
        ));
    }

    #[test]
    fn an_answer_with_tool_calls_has_no_data_to_validate() {
        let answer = with_call(
            response("", FinishReason::ToolCalls),
            "get_weather",
            r#"{"city":"Lyon"}"#,
        );
        match judged(Some(&schema(true)), &[tool()], &answer) {
            Judged::Valid { data, tool_calls } => {
                assert_eq!(data, None);
                assert_eq!(tool_calls[0].arguments, json!({"city": "Lyon"}));
            }
            _ => panic!("expected a valid answer"),
        }
    }

    #[test]
    fn tool_calls_on_a_version_without_tools_are_unknown_tools() {
        let answer = with_call(response("", FinishReason::ToolCalls), "rm", "{}");
        match judged(None, &[], &answer) {
            Judged::Invalid(invalid) => assert_eq!(invalid.reason, InvalidReason::UnknownTool),
            _ => panic!("expected an invalid answer"),
        }
    }

    #[test]
    fn repair_follows_the_schemas_flag_and_is_on_for_tools_alone() {
        let model = model();
        let off = schema(false);
        let request = |output| CallRequest {
            feature: "f",
            version: "1.0.0",
            messages: &[],
            model: &model,
            fallbacks: &[],
            request_id: "req_1",
            deadline: Duration::from_secs(1),
            output,
            tools: &[],
            tool_choice: &ToolChoice::Auto,
            trace: None,
        };
        assert!(!repairs(&request(Some(&off))));
        assert!(repairs(&request(None)));
    }

    #[test]
    fn a_repair_of_tool_calls_answers_every_call_and_sends_unparsable_arguments_as_an_object() {
        let mut answer = with_call(
            response("", FinishReason::ToolCalls),
            "get_weather",
            "{\"ci",
        );
        answer.tool_calls.push(RawToolCall {
            id: "call_2".into(),
            name: "get_weather".into(),
            arguments: r#"{"city":"Lyon"}"#.into(),
        });
        let Judged::Invalid(invalid) = judged(None, &[tool()], &answer) else {
            panic!("expected an invalid answer");
        };
        let original = [Message::new(Role::User, "Weather?")];
        let repaired = repair_messages(&original, &answer, &invalid);
        assert_eq!(repaired.len(), 4);
        assert_eq!(repaired[1].tool_calls[0].arguments, json!({}));
        assert_eq!(repaired[1].tool_calls[1].arguments, json!({"city": "Lyon"}));
        let answered: Vec<_> = repaired[2..]
            .iter()
            .map(|message| (message.role, message.tool_call_id.as_deref()))
            .collect();
        assert_eq!(
            answered,
            [(Role::Tool, Some("call_1")), (Role::Tool, Some("call_2"))]
        );
    }

    proptest! {
        /// Whatever a provider sends as text or as tool arguments (empty, NUL bytes, huge), the
        /// judgement is a verdict, never a panic, and only JSON valid against the schema is
        /// data.
        #[test]
        fn any_answer_text_is_judged_without_panicking(
            text in prop_oneof![
                Just(String::new()),
                Just("\0".to_string()),
                Just(format!("{{\"title\":\"{}\"}}", "x".repeat(1 << 20))),
                any::<String>(),
            ],
            arguments in any::<String>(),
        ) {
            let output = schema(true);
            match judged(Some(&output), &[], &response(&text, FinishReason::Stop)) {
                Judged::Valid { data, .. } => {
                    prop_assert!(output.validate(&text).is_ok());
                    prop_assert!(data.is_some());
                }
                Judged::Invalid(invalid) => prop_assert!(!invalid.violations.is_empty()),
                Judged::Refused | Judged::Truncated => prop_assert!(false, "stop is neither"),
            }
            let call = with_call(response("", FinishReason::ToolCalls), "get_weather", &arguments);
            match judged(None, &[tool()], &call) {
                Judged::Valid { tool_calls, .. } => prop_assert!(tool_calls[0].arguments.is_object()),
                Judged::Invalid(invalid) => {
                    let repaired = repair_messages(&[], &call, &invalid);
                    prop_assert!(repaired[0].tool_calls[0].arguments.is_object());
                }
                Judged::Refused | Judged::Truncated => prop_assert!(false, "stop is neither"),
            }
        }
    }
}
