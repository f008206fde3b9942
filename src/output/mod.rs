//! Structured output and tool calls: a prompt version's output JSON Schema and tool
//! definitions, compiled once at load; the validation of every answer (parsed JSON checked with
//! `jsonschema`) and of every tool call's arguments; the repair instruction sent when an answer
//! is invalid. Providers encode the schema and tools in their own request shapes (`client/`);
//! this module knows no provider.

mod subset;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use subset::{
    LARGE_ENUM, MAX_DEPTH, MAX_ENUM_VALUES, MAX_LARGE_ENUM_LENGTH, MAX_PROPERTIES,
    MAX_STRING_LENGTH, MAX_UNIONS, check_name, check_subset, portable_schema,
};

/// A prompt version's output schema, compiled: every answer of a version that declares one is
/// parsed as JSON and validated against it.
#[derive(Clone)]
pub struct OutputSchema {
    name: String,
    schema: Arc<Value>,
    portable: Arc<Value>,
    validator: Arc<jsonschema::Validator>,
    repair: bool,
}

impl std::fmt::Debug for OutputSchema {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("OutputSchema")
            .field("name", &self.name)
            .field("schema", &self.schema)
            .field("repair", &self.repair)
            .finish()
    }
}

impl PartialEq for OutputSchema {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.schema == other.schema && self.repair == other.repair
    }
}

impl Serialize for OutputSchema {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serde_json::json!({ "name": self.name, "schema": &*self.schema, "repair": self.repair })
            .serialize(serializer)
    }
}

impl OutputSchema {
    /// Compiles `schema` (a JSON Schema whose root is `{"type": "object"}`) under `name` (the
    /// name OpenAI's `json_schema.name` and Anthropic's forced tool carry: letters, digits, `_`
    /// and `-`, at most 64 characters). `repair`: whether an invalid answer is retried once on the
    /// same model with the validation errors as a repair instruction.
    ///
    /// Compiling checks the name and that `schema` is a JSON Schema `jsonschema` compiles; the
    /// provider subset ([`check_subset`]) is checked by the configuration loader, which
    /// reports its problems with pointers into the feature or schema file.
    ///
    /// Errors: every problem found, each with the JSON pointer into `schema` at fault (a bad
    /// name: pointer `""`, the message starting "the name").
    pub fn compile(
        name: impl Into<String>,
        schema: Value,
        repair: bool,
    ) -> Result<OutputSchema, Vec<SchemaProblem>> {
        let name = name.into();
        checked_name(&name)?;
        let validator = compile_validator(&schema)?;
        Ok(OutputSchema {
            name,
            portable: Arc::new(portable_schema(&schema)),
            schema: Arc::new(schema),
            validator: Arc::new(validator),
            repair,
        })
    }

    /// The schema's name (`career_paths`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The JSON Schema, as declared: what answers are validated against, and what OpenAI's
    /// strict `json_schema` and Anthropic's forced tool (`input_schema`) take.
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// The schema as [`portable_schema`] gives it: without the array bounds Anthropic's native
    /// structured output refuses (`minItems` above 1, `maxItems`), for `output_config.format`.
    /// Answers are still validated against [`OutputSchema::schema`].
    pub fn portable_schema(&self) -> &Value {
        &self.portable
    }

    /// Whether an invalid answer is retried once on the same model with a repair instruction.
    pub fn repair(&self) -> bool {
        self.repair
    }

    /// Parses `text` as JSON and validates it against the schema.
    ///
    /// Errors: [`InvalidOutput`] with reason `not_json` (one violation at the root saying where
    /// parsing failed) or `schema` (every violation, each with its JSON pointer into the answer).
    pub fn validate(&self, text: &str) -> Result<Value, InvalidOutput> {
        let value = parse_json(text)?;
        check(&self.validator, &value, InvalidReason::Schema, None)?;
        Ok(value)
    }
}

/// One tool a prompt version declares, compiled.
#[derive(Clone)]
pub struct ToolDefinition {
    name: String,
    description: Option<String>,
    parameters: Arc<Value>,
    portable: Arc<Value>,
    validator: Arc<jsonschema::Validator>,
}

impl std::fmt::Debug for ToolDefinition {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ToolDefinition")
            .field("name", &self.name)
            .field("description", &self.description)
            .field("parameters", &self.parameters)
            .finish()
    }
}

impl PartialEq for ToolDefinition {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.description == other.description
            && self.parameters == other.parameters
    }
}

impl Serialize for ToolDefinition {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serde_json::json!({
            "name": self.name,
            "description": self.description,
            "parameters": &*self.parameters,
        })
        .serialize(serializer)
    }
}

impl ToolDefinition {
    /// Compiles a tool: its `name` (letters, digits, `_` and `-`, at most 64 characters, as both
    /// providers require), an optional `description` the model reads, and `parameters`, the JSON
    /// Schema (root `{"type": "object"}`) of its arguments.
    ///
    /// As for [`OutputSchema::compile`], the provider subset of `parameters` (the same as an
    /// output schema's: OpenAI strict function calling, Anthropic strict tools) is checked by the
    /// configuration loader with [`check_subset`].
    ///
    /// Errors: every problem found, each with the JSON pointer into `parameters` at fault (a bad
    /// name: pointer `""`, the message starting "the name").
    pub fn compile(
        name: impl Into<String>,
        description: Option<String>,
        parameters: Value,
    ) -> Result<ToolDefinition, Vec<SchemaProblem>> {
        let name = name.into();
        checked_name(&name)?;
        let validator = compile_validator(&parameters)?;
        Ok(ToolDefinition {
            name,
            description,
            portable: Arc::new(portable_schema(&parameters)),
            parameters: Arc::new(parameters),
            validator: Arc::new(validator),
        })
    }

    /// The tool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the tool does, for the model.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The JSON Schema of the tool's arguments (OpenAI `parameters`, Anthropic `input_schema`).
    pub fn parameters(&self) -> &Value {
        &self.parameters
    }

    /// The parameters as [`portable_schema`] gives them, for Anthropic strict tools (no
    /// `minItems` above 1, no `maxItems`); calls are still validated against
    /// [`ToolDefinition::parameters`].
    pub fn portable_parameters(&self) -> &Value {
        &self.portable
    }
}

/// A tool call as a provider returned it, before validation: OpenAI's `arguments` string, or
/// Anthropic's `input` object written as JSON text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawToolCall {
    /// The provider's id of the call (OpenAI `call_...`, Anthropic `toolu_...`).
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments as JSON text.
    pub arguments: String,
}

/// A tool call the model asked for, normalised across providers: its arguments parsed and
/// validated against the tool's schema. In history (`Message::tool_calls`) it is what an
/// assistant turn asked for; the caller answers it with a `role: tool` message whose
/// `tool_call_id` is this `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    /// The provider's id of the call, echoed in the tool result's `tool_call_id`.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments, a JSON object valid against the tool's `parameters`.
    pub arguments: Value,
}

/// Why an answer or a tool call was invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum InvalidReason {
    /// The text is not JSON (or is empty).
    NotJson,
    /// The JSON does not match the schema.
    Schema,
    /// A tool call names a tool the version does not declare.
    UnknownTool,
}

impl InvalidReason {
    /// The snake_case name, matching the serde name.
    pub fn as_str(self) -> &'static str {
        match self {
            InvalidReason::NotJson => "not_json",
            InvalidReason::Schema => "schema",
            InvalidReason::UnknownTool => "unknown_tool",
        }
    }
}

/// One way an answer breaks its schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// JSON pointer into the answer (or the tool call's arguments) at fault; empty for the root.
    pub pointer: String,
    /// What is wrong there.
    pub message: String,
}

/// An answer (or a tool call) that failed validation: the attempt outcome `invalid_output`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{}", describe(self))]
pub struct InvalidOutput {
    /// Why.
    pub reason: InvalidReason,
    /// The tool call at fault, when it was a tool call's arguments.
    pub tool: Option<String>,
    /// Every violation found, at least one.
    pub violations: Vec<Violation>,
}

fn describe(invalid: &InvalidOutput) -> String {
    let subject = match &invalid.tool {
        Some(tool) => format!("the arguments of tool call {tool}"),
        None => "the answer".to_string(),
    };
    let details: Vec<String> = invalid
        .violations
        .iter()
        .map(|violation| {
            let pointer = if violation.pointer.is_empty() {
                "(root)"
            } else {
                violation.pointer.as_str()
            };
            format!("{pointer}: {}", violation.message)
        })
        .collect();
    format!(
        "{subject} is invalid ({}): {}",
        invalid.reason.as_str(),
        details.join("; ")
    )
}

/// A problem of a declared schema: the JSON pointer into the schema and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaProblem {
    /// JSON pointer into the schema (`/properties/paths/items`); empty for the root.
    pub pointer: String,
    /// What is wrong.
    pub message: String,
}

fn checked_name(name: &str) -> Result<(), Vec<SchemaProblem>> {
    check_name(name).map_err(|message| {
        vec![SchemaProblem {
            pointer: String::new(),
            message,
        }]
    })
}

fn compile_validator(schema: &Value) -> Result<jsonschema::Validator, Vec<SchemaProblem>> {
    jsonschema::validator_for(schema).map_err(|error| {
        vec![SchemaProblem {
            pointer: error.schema_path().as_str().to_string(),
            message: format!("not a valid JSON Schema: {error}"),
        }]
    })
}

fn parse_json(text: &str) -> Result<Value, InvalidOutput> {
    serde_json::from_str(text).map_err(|error| InvalidOutput {
        reason: InvalidReason::NotJson,
        tool: None,
        violations: vec![Violation {
            pointer: String::new(),
            message: if text.trim().is_empty() {
                "the text is empty, not JSON".to_string()
            } else {
                format!("not JSON: {error}")
            },
        }],
    })
}

fn check(
    validator: &jsonschema::Validator,
    value: &Value,
    reason: InvalidReason,
    tool: Option<&str>,
) -> Result<(), InvalidOutput> {
    let violations: Vec<Violation> = validator
        .iter_errors(value)
        .map(|error| Violation {
            pointer: error.instance_path().as_str().to_string(),
            message: error.to_string(),
        })
        .collect();
    if violations.is_empty() {
        Ok(())
    } else {
        Err(InvalidOutput {
            reason,
            tool: tool.map(str::to_string),
            violations,
        })
    }
}

/// The tool calls of an answer, normalised: each names a declared tool and its arguments parse
/// and match that tool's schema.
///
/// Errors: the first invalid call, as [`InvalidOutput`] (`unknown_tool`, `not_json` or `schema`)
/// naming the tool call.
pub fn normalise_tool_calls(
    tools: &[ToolDefinition],
    calls: Vec<RawToolCall>,
) -> Result<Vec<ToolCall>, InvalidOutput> {
    calls
        .into_iter()
        .map(|call| {
            let Some(tool) = tools.iter().find(|tool| tool.name == call.name) else {
                return Err(InvalidOutput {
                    reason: InvalidReason::UnknownTool,
                    tool: Some(call.name.clone()),
                    violations: vec![Violation {
                        pointer: String::new(),
                        message: format!(
                            "no tool is named {:?} (declared: {})",
                            call.name,
                            tools
                                .iter()
                                .map(|tool| tool.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }],
                });
            };
            let arguments = if call.arguments.trim().is_empty() {
                // OpenAI sends "" for a tool without parameters; Anthropic `{}`.
                Value::Object(serde_json::Map::new())
            } else {
                parse_json(&call.arguments).map_err(|mut invalid| {
                    invalid.tool = Some(call.name.clone());
                    invalid
                })?
            };
            check(
                &tool.validator,
                &arguments,
                InvalidReason::Schema,
                Some(&call.name),
            )?;
            Ok(ToolCall {
                id: call.id,
                name: call.name,
                arguments,
            })
        })
        .collect()
}

/// The user turn sent with a repair attempt, after the invalid answer: it lists every
/// violation (pointer and message) and asks for an answer that matches the schema, JSON only.
pub fn repair_instruction(invalid: &InvalidOutput) -> String {
    format!(
        "Your previous answer was invalid: {invalid}. Answer again with JSON only, matching the \
         required schema exactly."
    )
}

/// Whether the model must call a tool (OpenAI `tool_choice`; Anthropic `tool_choice.type`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ToolChoice {
    /// The model decides (OpenAI `auto`, Anthropic `auto`): the default.
    #[default]
    Auto,
    /// The model must call some tool (OpenAI `required`, Anthropic `any`).
    Required,
    /// The model must not call a tool (OpenAI `none`, Anthropic `none`).
    None,
    /// The model must call this tool (OpenAI `{"type": "function", "function": {"name"}}`,
    /// Anthropic `{"type": "tool", "name"}`).
    Tool(String),
}
