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
