//! The mock's answers to a request that wants structure: with tools declared (and
//! `tool_choice` not `none`, and no tool result in the conversation yet) it calls the named tool, or
//! the first one, with arguments generated from the tool's schema (finish reason `tool_calls`);
//! with an output schema it answers JSON generated from the schema. Both are deterministic on
//! the prompt. A share of them (`MockSettings::invalid_output_share`, drawn by the caller on the
//! engine's `Random`) is deliberately invalid, alternating between text that is not JSON and
//! JSON that breaks the schema, so the client's repair and failover can be watched offline.

use serde_json::Value;

use super::generate::{Generator, break_value};
use crate::client::types::{FinishReason, ProviderRequest};
use crate::output::{RawToolCall, ToolChoice, ToolDefinition, normalise_tool_calls};
use crate::prompt::Role;

/// A structured answer: JSON text, or tool calls.
#[derive(Debug)]
pub(super) struct Structured {
    /// The JSON answer (empty with tool calls).
    pub text: String,
    /// The tool calls, arguments as JSON text.
    pub tool_calls: Vec<RawToolCall>,
    /// `tool_calls` or `stop`.
    pub finish_reason: FinishReason,
}

/// The structured answer to `request`, or `None` when it wants prose. `seed` is the prompt's
/// fingerprint; `invalid` says whether this answer is to be invalid (asked once per answer).
pub(super) fn answer(
    request: &ProviderRequest<'_>,
    seed: u64,
    call_number: u64,
    invalid: impl FnOnce() -> bool,
) -> Option<Structured> {
    let words = prompt_words(request);
    if let Some(tool) = tool_to_call(request) {
        let parameters = tool.parameters();
        let arguments = Generator::new(parameters, &words, seed).value(parameters);
        let mut text = arguments.to_string();
        if invalid() {
            text = invalid_arguments(tool, &arguments, &text, seed ^ call_number);
        }
        return Some(Structured {
            text: String::new(),
            tool_calls: vec![RawToolCall {
                id: format!("call_mock_{call_number}"),
                name: tool.name().to_string(),
                arguments: text,
            }],
            finish_reason: FinishReason::ToolCalls,
        });
    }
    let output = request.output?;
    let schema = output.schema();
    let value = Generator::new(schema, &words, seed).value(schema);
    let mut text = value.to_string();
    if invalid() {
        let broken = (seed ^ call_number).is_multiple_of(2);
        text = match break_value(schema, &value).map(|value| value.to_string()) {
            Some(broken_text) if broken && output.validate(&broken_text).is_err() => broken_text,
            _ => not_json(&text),
        };
    }
    Some(Structured {
        text,
        tool_calls: Vec::new(),
        finish_reason: FinishReason::Stop,
    })
}

/// The tool the mock calls: none without tools, with `tool_choice: none`, or once the
/// conversation holds a tool result (one round of tools, then the model answers: a repair of
/// that answer, which ends on the repair instruction, must not turn into a tool call); else the
/// named tool, or the first.
fn tool_to_call<'r>(request: &ProviderRequest<'r>) -> Option<&'r ToolDefinition> {
    let first = request.tools.first()?;
    if request
        .messages
        .iter()
        .any(|message| message.role == Role::Tool)
    {
        return None;
    }
    match request.tool_choice {
        ToolChoice::None => None,
        ToolChoice::Tool(name) => Some(
            request
                .tools
                .iter()
                .find(|tool| tool.name() == name)
                .unwrap_or(first),
        ),
        _ => Some(first),
    }
}

/// The words strings are made of: those of the conversation (system instructions left out,
/// unless they are all there is).
fn prompt_words(request: &ProviderRequest<'_>) -> String {
    let spoken: Vec<&str> = request
        .messages
        .iter()
        .filter(|message| message.role != Role::System)
        .map(|message| message.content.as_str())
        .collect();
    if spoken.iter().all(|content| content.trim().is_empty()) {
        return request
            .messages
            .iter()
            .map(|message| message.content.as_str())
            .collect::<Vec<_>>()
            .join(" ");
    }
    spoken.join(" ")
}

/// Arguments that `tool` rejects: the schema broken when `choice` is even and that breaks it,
/// else text that is not JSON.
fn invalid_arguments(tool: &ToolDefinition, arguments: &Value, text: &str, choice: u64) -> String {
    if choice.is_multiple_of(2)
        && let Some(broken) = break_value(tool.parameters(), arguments)
    {
        let broken_text = broken.to_string();
        let call = RawToolCall {
            id: String::new(),
            name: tool.name().to_string(),
            arguments: broken_text.clone(),
        };
        if normalise_tool_calls(std::slice::from_ref(tool), vec![call]).is_err() {
            return broken_text;
        }
    }
    not_json(text)
}

/// The first half of a JSON text, cut: never JSON, since a JSON object or array is only
/// complete with its closing bracket, and never empty (an empty argument string is `{}`).
fn not_json(text: &str) -> String {
    let half = text.chars().count() / 2;
    let cut: String = text.chars().take(half).collect();
    if cut.trim().is_empty() || serde_json::from_str::<Value>(&cut).is_ok() {
        return "{\"cut".to_string();
    }
    cut
}
