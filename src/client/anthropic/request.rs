//! The Messages request body (API reference, "Create a Message",
//! <https://docs.claude.com/en/api/messages>): system messages lifted to the top-level `system`
//! field, history's tool calls as `tool_use` blocks and tool results as `tool_result` blocks of a
//! user turn, the version's tools and `tool_choice`, and the output schema, asked for natively
//! or through one forced tool.
//!
//! Native or forced tool: a model in [`NATIVE_STRUCTURED_OUTPUT_MODELS`] gets the schema as
//! `output_config: {"format": {"type": "json_schema", "schema"}}` (Structured outputs,
//! <https://docs.claude.com/en/docs/build-with-claude/structured-outputs>; generally available,
//! no beta header: the beta's top-level `output_format` and its header
//! `structured-outputs-2025-11-13` are only accepted for a transition period) and answers with
//! JSON text. Any other model gets one more tool, named as the schema, whose `input_schema` is
//! the schema, and a `tool_choice` forcing it; the answer is that tool's input, read back as
//! text (`anthropic.rs`, `stream.rs`), so the caller never sees which way was used.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

use crate::client::endpoint::{Sampling, tool_ids};
use crate::client::types::ProviderRequest;
use crate::output::{OutputSchema, ToolChoice, ToolDefinition};
use crate::prompt::{Message, Role};

/// The API requires `max_tokens`; this is sent when the parameters leave it out.
const DEFAULT_MAX_TOKENS: u32 = 1024;

/// The models that take the output schema natively (`output_config.format`), matched as a
/// prefix of the model name followed by nothing or `-` (so `claude-sonnet-4-5-20250929` is
/// one). From the Structured outputs page's list of models where the feature is generally
/// available on the Claude API: Opus 4.7, Opus 4.6, Sonnet 4.6, Sonnet 4.5, Opus 4.5,
/// Haiku 4.5. Every other model (Opus 4.1, Sonnet 4, 3.x) gets the forced tool.
pub(crate) const NATIVE_STRUCTURED_OUTPUT_MODELS: [&str; 6] = [
    "claude-opus-4-7",
    "claude-opus-4-6",
    "claude-sonnet-4-6",
    "claude-sonnet-4-5",
    "claude-opus-4-5",
    "claude-haiku-4-5",
];

/// The description of the forced output tool: the model reads it.
pub(super) const OUTPUT_TOOL_DESCRIPTION: &str =
    "Give your final answer by calling this tool: its input is the answer, matching the schema.";

/// Whether `model` takes the output schema natively (see [`NATIVE_STRUCTURED_OUTPUT_MODELS`]).
pub(crate) fn supports_native_output(model: &str) -> bool {
    NATIVE_STRUCTURED_OUTPUT_MODELS.iter().any(|prefix| {
        model
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
    })
}

/// How a request asks for its output schema.
#[derive(Clone, Copy)]
pub(super) enum OutputMode<'a> {
    /// No output schema.
    Free,
    /// `output_config.format`: the answer is JSON text.
    Native(&'a OutputSchema),
    /// One forced tool named as the schema: the answer is that tool's input.
    ForcedTool(&'a OutputSchema),
}

impl<'a> OutputMode<'a> {
    pub(super) fn of(request: &ProviderRequest<'a>) -> OutputMode<'a> {
        match request.output {
            None => OutputMode::Free,
            Some(output) if supports_native_output(request.model) => OutputMode::Native(output),
            Some(output) => OutputMode::ForcedTool(output),
        }
    }

    /// The name of the forced output tool, when there is one.
    pub(super) fn output_tool(self) -> Option<&'a str> {
        match self {
            OutputMode::ForcedTool(output) => Some(output.name()),
            _ => None,
        }
    }
}

/// The Messages request body; absent parameters are left out, not sent as null.
#[derive(Serialize)]
pub(super) struct MessagesRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<TurnMessage<'a>>,
    #[serde(flatten)]
    sampling: Sampling,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Choice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_config: Option<OutputConfig<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(super) stream: bool,
}

impl<'a> MessagesRequest<'a> {
    pub(super) fn from_request(request: &ProviderRequest<'a>) -> MessagesRequest<'a> {
        let parameters = request.parameters;
        // The Messages API has no system role inside `messages`; instructions go top-level.
        let system_parts: Vec<&str> = request
            .messages
            .iter()
            .filter(|message| message.role == Role::System)
            .map(|message| message.content.as_str())
            .collect();
        let mode = OutputMode::of(request);
        let mut tools: Vec<Tool<'a>> = request.tools.iter().map(Tool::from).collect();
        let declared = !tools.is_empty();
        let tool_choice = match mode {
            OutputMode::ForcedTool(output) => {
                tools.push(Tool {
                    name: output.name(),
                    description: Some(OUTPUT_TOOL_DESCRIPTION),
                    input_schema: output.schema(),
                });
                Some(forced_choice(output.name(), declared, request.tool_choice))
            }
            _ => declared.then(|| Choice::from(request.tool_choice)),
        };
        MessagesRequest {
            model: request.model,
            max_tokens: parameters.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            system: (!system_parts.is_empty()).then(|| system_parts.join("\n\n")),
            messages: turns(request.messages),
            sampling: Sampling::from(parameters),
            stop_sequences: Some(parameters.stop.as_slice()).filter(|stop| !stop.is_empty()),
            tools,
            tool_choice,
            output_config: match mode {
                OutputMode::Native(output) => Some(OutputConfig {
                    format: OutputFormat {
                        format_type: "json_schema",
                        // Anthropic's native format refuses `minItems` above 1 and `maxItems`;
                        // every answer is still validated against the full schema.
                        schema: output.portable_schema(),
                    },
                }),
                _ => None,
            },
            stream: false,
        }
    }
}

/// The `tool_choice` beside a forced output tool: alone, the output tool is forced; with the
/// version's tools, `auto` and `required` become `any` (the model calls one of its tools or
/// answers through the output tool), `none` forces the output tool, and a named tool stays
/// forced.
fn forced_choice<'a>(output_tool: &'a str, declared: bool, choice: &'a ToolChoice) -> Choice<'a> {
    match choice {
        _ if !declared => Choice::named(output_tool),
        ToolChoice::None => Choice::named(output_tool),
        ToolChoice::Tool(name) => Choice::named(name),
        _ => Choice::mode("any"),
    }
}

/// `{"name", "description", "input_schema"}` (Tool use, "Specifying client tools",
/// <https://docs.claude.com/en/docs/agents-and-tools/tool-use/implement-tool-use>).
#[derive(Serialize)]
struct Tool<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: &'a Value,
}

impl<'a> From<&'a ToolDefinition> for Tool<'a> {
    fn from(tool: &'a ToolDefinition) -> Tool<'a> {
        Tool {
            name: tool.name(),
            description: tool.description(),
            input_schema: tool.parameters(),
        }
    }
}

/// `{"type": "auto" | "any" | "none"}` or `{"type": "tool", "name"}`.
#[derive(Serialize)]
struct Choice<'a> {
    #[serde(rename = "type")]
    choice_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

impl<'a> Choice<'a> {
    fn mode(choice_type: &'static str) -> Choice<'a> {
        Choice {
            choice_type,
            name: None,
        }
    }

    fn named(name: &'a str) -> Choice<'a> {
        Choice {
            choice_type: "tool",
            name: Some(name),
        }
    }
}

impl<'a> From<&'a ToolChoice> for Choice<'a> {
    fn from(choice: &'a ToolChoice) -> Choice<'a> {
        match choice {
            ToolChoice::Auto => Choice::mode("auto"),
            ToolChoice::Required => Choice::mode("any"),
            ToolChoice::None => Choice::mode("none"),
            ToolChoice::Tool(name) => Choice::named(name),
        }
    }
}

/// `{"format": {"type": "json_schema", "schema"}}`.
#[derive(Serialize)]
struct OutputConfig<'a> {
    format: OutputFormat<'a>,
}

#[derive(Serialize)]
struct OutputFormat<'a> {
    #[serde(rename = "type")]
    format_type: &'static str,
    schema: &'a Value,
}

/// One turn: `{"role", "content"}`, the content a string, or blocks when the turn carries tool
/// calls, tool results, or several messages merged.
#[derive(Serialize)]
struct TurnMessage<'a> {
    role: &'static str,
    content: Content<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Content<'a> {
    Text(&'a str),
    Blocks(Vec<Block<'a>>),
}

impl<'a> Content<'a> {
    fn into_blocks(self) -> Vec<Block<'a>> {
        match self {
            // The API rejects empty text blocks.
            Content::Text("") => Vec::new(),
            Content::Text(text) => vec![Block::Text { text }],
            Content::Blocks(blocks) => blocks,
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text {
        text: &'a str,
    },
    ToolUse {
        id: Cow<'a, str>,
        name: &'a str,
        input: &'a Value,
    },
    ToolResult {
        tool_use_id: Cow<'a, str>,
        content: &'a str,
    },
}

/// The non-system messages as Messages turns: a `tool` message becomes a `tool_result` block of
/// a user turn, an assistant message with tool calls its text (if any) then `tool_use` blocks,
/// and adjacent turns of the same role are merged into one (the API wants roles to alternate,
/// and the results of one assistant turn's calls all in the next user turn, before any text).
fn turns(messages: &[Message]) -> Vec<TurnMessage<'_>> {
    let mut turns: Vec<TurnMessage<'_>> = Vec::new();
    for message in messages
        .iter()
        .filter(|message| message.role != Role::System)
    {
        let role = match message.role {
            Role::Assistant => "assistant",
            _ => "user",
        };
        let content = content_of(message);
        match turns.last_mut() {
            Some(last) if last.role == role => {
                let earlier = std::mem::replace(&mut last.content, Content::Blocks(Vec::new()));
                let mut blocks = earlier.into_blocks();
                blocks.extend(content.into_blocks());
                last.content = Content::Blocks(blocks);
            }
            _ => turns.push(TurnMessage { role, content }),
        }
    }
    turns
}

fn content_of(message: &Message) -> Content<'_> {
    match message.role {
        Role::Tool => Content::Blocks(vec![Block::ToolResult {
            tool_use_id: tool_ids::portable(message.tool_call_id.as_deref().unwrap_or("")),
            content: &message.content,
        }]),
        Role::Assistant if !message.tool_calls.is_empty() => {
            let mut blocks = Content::Text(&message.content).into_blocks();
            blocks.extend(message.tool_calls.iter().map(|call| Block::ToolUse {
                id: tool_ids::portable(&call.id),
                name: &call.name,
                input: &call.arguments,
            }));
            Content::Blocks(blocks)
        }
        _ => Content::Text(&message.content),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dated_names_of_a_listed_model_are_native() {
        assert!(supports_native_output("claude-sonnet-4-5-20250929"));
        assert!(supports_native_output("claude-haiku-4-5"));
    }

    #[test]
    fn other_models_and_longer_version_numbers_are_not() {
        assert!(!supports_native_output("claude-opus-4-1-20250805"));
        assert!(!supports_native_output("claude-sonnet-4-50"));
        assert!(!supports_native_output("claude-3-5-haiku-latest"));
    }
}
