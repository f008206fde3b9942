//! The Chat Completions request body (API reference, "Create chat completion",
//! <https://platform.openai.com/docs/api-reference/chat/create>): the messages with history's
//! tool calls and tool results, the output schema as `response_format`, the version's tools and
//! `tool_choice`. Absent parameters are left out, not sent as null.

use serde::Serialize;
use serde_json::Value;

use crate::client::endpoint::{Sampling, tool_ids};
use crate::client::types::ProviderRequest;
use crate::output::{OutputSchema, ToolCall, ToolChoice, ToolDefinition};
use crate::prompt::{Message, Role};

/// The Chat Completions request body.
#[derive(Serialize)]
pub(super) struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<ChatMessage<'a>>,
    #[serde(flatten)]
    sampling: Sampling,
    // `max_tokens` rather than `max_completion_tokens`: chat models still accept it, and
    // OpenAI-compatible gateways often know only this name.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormat<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ChatTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<ChatToolChoice<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(super) stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) stream_options: Option<StreamOptions>,
}

/// `stream_options` of a streamed request.
#[derive(Serialize)]
pub(super) struct StreamOptions {
    pub(super) include_usage: bool,
}

impl<'a> ChatRequest<'a> {
    pub(super) fn from_request(request: &ProviderRequest<'a>) -> ChatRequest<'a> {
        let parameters = request.parameters;
        let tools: Vec<ChatTool<'a>> = request.tools.iter().map(ChatTool::from).collect();
        ChatRequest {
            model: request.model,
            messages: request.messages.iter().map(ChatMessage::from).collect(),
            sampling: Sampling::from(parameters),
            max_tokens: parameters.max_tokens,
            stop: Some(parameters.stop.as_slice()).filter(|stop| !stop.is_empty()),
            response_format: request.output.map(ResponseFormat::from),
            // `tool_choice` means nothing without tools, and OpenAI rejects it then.
            tool_choice: (!tools.is_empty()).then(|| ChatToolChoice::from(request.tool_choice)),
            tools,
            stream: false,
            stream_options: None,
        }
    }
}

/// One message: `{"role", "content"}`; an assistant turn of history adds its `tool_calls`
/// (then `content` is null when it has no text), a `tool` message its `tool_call_id`.
#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ChatToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<std::borrow::Cow<'a, str>>,
}

impl<'a> From<&'a Message> for ChatMessage<'a> {
    fn from(message: &'a Message) -> ChatMessage<'a> {
        let tool_calls: Vec<ChatToolCall<'a>> = if message.role == Role::Assistant {
            message.tool_calls.iter().map(ChatToolCall::from).collect()
        } else {
            Vec::new()
        };
        let content = if !tool_calls.is_empty() && message.content.is_empty() {
            None
        } else {
            Some(message.content.as_str())
        };
        ChatMessage {
            role: message.role.as_str(),
            content,
            tool_calls,
            tool_call_id: match message.role {
                Role::Tool => message.tool_call_id.as_deref().map(tool_ids::portable),
                _ => None,
            },
        }
    }
}

/// `{"id", "type": "function", "function": {"name", "arguments"}}`, the arguments as JSON text.
#[derive(Serialize)]
struct ChatToolCall<'a> {
    id: std::borrow::Cow<'a, str>,
    #[serde(rename = "type")]
    call_type: &'static str,
    function: CalledFunction<'a>,
}

#[derive(Serialize)]
struct CalledFunction<'a> {
    name: &'a str,
    arguments: String,
}

impl<'a> From<&'a ToolCall> for ChatToolCall<'a> {
    fn from(call: &'a ToolCall) -> ChatToolCall<'a> {
        ChatToolCall {
            id: tool_ids::portable(&call.id),
            call_type: "function",
            function: CalledFunction {
                name: &call.name,
                // Chat Completions takes the arguments as a string of JSON, as it returns them.
                arguments: call.arguments.to_string(),
            },
        }
    }
}

/// `{"type": "json_schema", "json_schema": {"name", "schema", "strict": true}}` (Structured
/// Outputs guide, <https://platform.openai.com/docs/guides/structured-outputs>).
#[derive(Serialize)]
struct ResponseFormat<'a> {
    #[serde(rename = "type")]
    format_type: &'static str,
    json_schema: JsonSchemaFormat<'a>,
}

#[derive(Serialize)]
struct JsonSchemaFormat<'a> {
    name: &'a str,
    schema: &'a Value,
    strict: bool,
}

impl<'a> From<&'a OutputSchema> for ResponseFormat<'a> {
    fn from(output: &'a OutputSchema) -> ResponseFormat<'a> {
        ResponseFormat {
            format_type: "json_schema",
            json_schema: JsonSchemaFormat {
                name: output.name(),
                schema: output.schema(),
                strict: true,
            },
        }
    }
}

/// `{"type": "function", "function": {"name", "description", "parameters", "strict": true}}`
/// (Function calling guide, <https://platform.openai.com/docs/guides/function-calling>).
#[derive(Serialize)]
struct ChatTool<'a> {
    #[serde(rename = "type")]
    tool_type: &'static str,
    function: FunctionDefinition<'a>,
}

#[derive(Serialize)]
struct FunctionDefinition<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters: &'a Value,
    strict: bool,
}

impl<'a> From<&'a ToolDefinition> for ChatTool<'a> {
    fn from(tool: &'a ToolDefinition) -> ChatTool<'a> {
        ChatTool {
            tool_type: "function",
            function: FunctionDefinition {
                name: tool.name(),
                description: tool.description(),
                parameters: tool.parameters(),
                strict: true,
            },
        }
    }
}

/// `"auto"`, `"required"`, `"none"`, or `{"type": "function", "function": {"name"}}`.
#[derive(Serialize)]
#[serde(untagged)]
enum ChatToolChoice<'a> {
    Mode(&'static str),
    Named {
        #[serde(rename = "type")]
        choice_type: &'static str,
        function: NamedFunction<'a>,
    },
}

#[derive(Serialize)]
struct NamedFunction<'a> {
    name: &'a str,
}

impl<'a> From<&'a ToolChoice> for ChatToolChoice<'a> {
    fn from(choice: &'a ToolChoice) -> ChatToolChoice<'a> {
        match choice {
            ToolChoice::Auto => ChatToolChoice::Mode("auto"),
            ToolChoice::Required => ChatToolChoice::Mode("required"),
            ToolChoice::None => ChatToolChoice::Mode("none"),
            ToolChoice::Tool(name) => ChatToolChoice::Named {
                choice_type: "function",
                function: NamedFunction { name },
            },
        }
    }
}
