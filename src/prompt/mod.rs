//! Prompt templates: the versioned files under `prompts/<feature>/<version>/`, compiled once at
//! load with MiniJinja (strict undefined, no auto-escaping), checked against the variables each
//! version declares and, for released versions, against their recorded SHA-256 hashes. At resolve
//! time it validates the caller's variables and renders the messages. Variable values are data:
//! a value containing `{{ x }}` is printed as it is, never evaluated.

mod load;
mod paths;

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub(crate) use load::{PromptTable, compile_prompts};
pub use paths::safe_version_file;

/// The role of one chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Role {
    /// Instructions to the model.
    System,
    /// The end user's turn.
    User,
    /// A prior model turn (few-shot examples, or conversation history), possibly with the
    /// tool calls it asked for.
    Assistant,
    /// The result of a tool call, answering an assistant turn's call by its `tool_call_id`
    /// (conversation history only: templates cannot declare it).
    Tool,
}

impl Role {
    /// The role as the providers spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }

    fn parse(role: &str) -> Option<Role> {
        match role {
            "system" => Some(Role::System),
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            _ => None,
        }
    }
}

/// One chat message: rendered from a template, or a turn of the conversation history the
/// caller passed (`Context::with_messages`). The wire shape (C context JSON, Ruby `messages:`,
/// the CLI) is `{"role", "content", "tool_calls"?, "tool_call_id"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// The text (for a `tool` message, the tool's result as the caller wrote it).
    #[serde(default)]
    pub content: String,
    /// For an `assistant` turn of the history: the tool calls it asked for, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<crate::output::ToolCall>,
    /// For a `tool` message: the `id` of the tool call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A plain message of `role` with `content`, without tool calls.
    pub fn new(role: Role, content: impl Into<String>) -> Message {
        Message {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// A `tool` message: the result `content` of the tool call `tool_call_id`.
    pub fn tool_result(tool_call_id: impl Into<String>, content: impl Into<String>) -> Message {
        Message {
            tool_call_id: Some(tool_call_id.into()),
            ..Message::new(Role::Tool, content)
        }
    }
}

/// A variable that failed its declared schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvalidVariable {
    /// JSON pointer into the variables object, such as `/skills/0`.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

/// Errors of validating variables and rendering a prompt version.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PromptError {
    /// Some declared variables are missing or do not match their schema.
    #[error("{feature} {version}: {}", describe_variables(.missing, .invalid))]
    Variables {
        /// The feature resolved.
        feature: String,
        /// The version whose declaration was violated.
        version: String,
        /// Required variables that were not supplied.
        missing: Vec<String>,
        /// Supplied variables that do not match their declared schema.
        invalid: Vec<InvalidVariable>,
    },
    /// The template failed while rendering.
    #[error("{template}: {message}")]
    Render {
        /// The template file.
        template: String,
        /// MiniJinja's description, with the line.
        message: String,
        /// True when the failure was an undefined variable.
        undefined: bool,
    },
}

fn describe_variables(missing: &[String], invalid: &[InvalidVariable]) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!(
            "missing variable{} {}",
            plural(missing.len()),
            missing.join(", ")
        ));
    }
    if !invalid.is_empty() {
        let listed: Vec<String> = invalid
            .iter()
            .map(|item| format!("{} {}", item.path, item.message))
            .collect();
        parts.push(format!(
            "invalid variable{} {}",
            plural(invalid.len()),
            listed.join("; ")
        ));
    }
    parts.join("; ")
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

impl PromptError {
    /// `missing_variable`, `invalid_variable` or `render_failed`.
    pub fn kind(&self) -> crate::ErrorKind {
        match self {
            PromptError::Variables { missing, .. } if !missing.is_empty() => {
                crate::ErrorKind::MissingVariable
            }
            PromptError::Variables { .. } => crate::ErrorKind::InvalidVariable,
            PromptError::Render {
                undefined: true, ..
            } => crate::ErrorKind::MissingVariable,
            PromptError::Render { .. } => crate::ErrorKind::RenderFailed,
        }
    }

    /// The variables or template at fault, as JSON.
    pub fn details(&self) -> Value {
        match self {
            PromptError::Variables {
                feature,
                version,
                missing,
                invalid,
            } => serde_json::json!({
                "feature": feature, "version": version, "missing": missing, "invalid": invalid,
            }),
            PromptError::Render { template, .. } => serde_json::json!({ "template": template }),
        }
    }
}

/// One message of a compiled version: pre-rendered when it uses no variables (the text shared
/// by every message whose template has the same text).
#[derive(Debug)]
enum MessageBody {
    Static(Arc<str>),
    Template { name: String },
}

#[derive(Debug)]
struct CompiledMessage {
    role: Role,
    body: MessageBody,
}

/// One prompt version, ready to render.
pub(crate) struct CompiledPrompt {
    feature: String,
    version: String,
    messages: Vec<CompiledMessage>,
    /// Shared with every version whose variables schema is the same text.
    variables: Arc<jsonschema::Validator>,
    environment: Arc<minijinja::Environment<'static>>,
    /// The version's output schema, if it declares one.
    pub(crate) output: Option<crate::output::OutputSchema>,
    /// The version's tools.
    pub(crate) tools: Vec<crate::output::ToolDefinition>,
    /// Whether the model must call a tool.
    pub(crate) tool_choice: crate::output::ToolChoice,
}

impl std::fmt::Debug for CompiledPrompt {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CompiledPrompt")
            .field("feature", &self.feature)
            .field("version", &self.version)
            .field("messages", &self.messages)
            .finish_non_exhaustive()
    }
}

impl CompiledPrompt {
    /// Validates `variables` against the version's declaration and renders every message.
    pub(crate) fn render(&self, variables: &Arc<Value>) -> Result<Vec<Message>, PromptError> {
        if !self.variables.is_valid(variables) {
            return Err(self.variable_errors(variables));
        }
        let context = minijinja::Value::from_object(TemplateVariables(Arc::clone(variables)));
        self.messages
            .iter()
            .map(|message| {
                let content = match &message.body {
                    MessageBody::Static(text) => text.to_string(),
                    MessageBody::Template { name } => self.render_template(name, &context)?,
                };
                Ok(Message::new(message.role, content))
            })
            .collect()
    }

    fn render_template(
        &self,
        name: &str,
        context: &minijinja::Value,
    ) -> Result<String, PromptError> {
        let render_error = |error: minijinja::Error| PromptError::Render {
            template: name.to_string(),
            undefined: error.kind() == minijinja::ErrorKind::UndefinedError,
            message: format!("{error:#}"),
        };
        self.environment
            .get_template(name)
            .map_err(render_error)?
            .render(context)
            .map_err(render_error)
    }

    fn variable_errors(&self, variables: &Value) -> PromptError {
        let mut missing = Vec::new();
        let mut invalid = Vec::new();
        for error in self.variables.iter_errors(variables) {
            match error.kind() {
                jsonschema::error::ValidationErrorKind::Required { property } => {
                    missing.push(
                        property
                            .as_str()
                            .map_or_else(|| property.to_string(), str::to_string),
                    );
                }
                _ => invalid.push(InvalidVariable {
                    path: error.instance_path().as_str().to_string(),
                    message: error.to_string(),
                }),
            }
        }
        PromptError::Variables {
            feature: self.feature.clone(),
            version: self.version.clone(),
            missing,
            invalid,
        }
    }
}

/// The template context: the caller's variables object, read in place. Converting the whole
/// object to MiniJinja values up front cost a deep copy per resolve (a map, every string, every
/// array); a template reads a few names, and each is converted when it is looked up, with the
/// same conversion (`value::Serde`), so rendering prints the same text.
#[derive(Debug)]
struct TemplateVariables(Arc<Value>);

impl TemplateVariables {
    fn map(&self) -> Option<&serde_json::Map<String, Value>> {
        self.0.as_object()
    }
}

impl minijinja::value::Object for TemplateVariables {
    fn get_value(self: &Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &Arc<Self>, key: &str) -> Option<minijinja::Value> {
        self.map()?.get(key).map(template_value)
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        // In name order, as the converted map (a BTreeMap in MiniJinja's build) listed them.
        let mut names: Vec<minijinja::Value> = self
            .map()
            .into_iter()
            .flat_map(|map| map.keys())
            .map(|name| minijinja::Value::from(name.as_str()))
            .collect();
        names.sort();
        minijinja::value::Enumerator::Values(names)
    }
}

/// `value` as MiniJinja's serde conversion makes it (`value::Serde`), built directly for
/// scalars and arrays: JSON integers that fit `u64` become `U64` and the other (negative)
/// ones `I64`, as serde_json serializes them; arrays become a sequence object of their items.
/// Objects, rare in variables, still take the serde route.
fn template_value(value: &Value) -> minijinja::Value {
    match value {
        Value::Null => minijinja::Value::from(()),
        Value::Bool(flag) => minijinja::Value::from(*flag),
        Value::String(text) => minijinja::Value::from(text.as_str()),
        Value::Number(number) => match (number.as_u64(), number.as_i64()) {
            (Some(unsigned), _) => minijinja::Value::from(unsigned),
            (None, Some(signed)) => minijinja::Value::from(signed),
            (None, None) => minijinja::Value::from(number.as_f64().unwrap_or(f64::NAN)),
        },
        Value::Array(items) => {
            minijinja::Value::from_object(items.iter().map(template_value).collect::<Vec<_>>())
        }
        Value::Object(_) => minijinja::Value::from(minijinja::value::Serde(value)),
    }
}

/// SHA-256 of `bytes` as lower-case hex, the form recorded in feature configs.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// A stable SHA-256 of rendered messages, for caching and for telling prompts apart in telemetry.
pub fn prompt_hash(messages: &[Message]) -> String {
    let mut hasher = Sha256::new();
    for message in messages {
        hasher.update(message.role.as_str().as_bytes());
        hasher.update([0]);
        hasher.update(message.content.as_bytes());
        hasher.update([0]);
        // Only present in history turns; plain messages hash as they always have, so stored
        // cache entries keep their keys.
        if !message.tool_calls.is_empty() {
            let calls = serde_json::to_vec(&message.tool_calls).unwrap_or_default();
            hasher.update(b"tool_calls");
            hasher.update(&calls);
            hasher.update([0]);
        }
        if let Some(id) = &message.tool_call_id {
            hasher.update(b"tool_call_id");
            hasher.update(id.as_bytes());
            hasher.update([0]);
        }
    }
    hex(&hasher.finalize())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(DIGITS[usize::from(byte >> 4)] as char);
        text.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use minijinja::{Environment, UndefinedBehavior};
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::TemplateVariables;

    /// Renders `template` with `variables` read in place and converted up front (the former
    /// context), strict undefined as in serving; both results, errors as their text.
    fn both_ways(template: &str, variables: Value) -> (Result<String, String>, Result<String, String>) {
        let mut environment = Environment::new();
        environment.set_undefined_behavior(UndefinedBehavior::Strict);
        environment.add_template("t", template).unwrap();
        let template = environment.get_template("t").unwrap();
        let shared = Arc::new(variables);
        let in_place = minijinja::Value::from_object(TemplateVariables(Arc::clone(&shared)));
        let converted = minijinja::Value::from(minijinja::value::Serde(&*shared));
        let render = |context| template.render(context).map_err(|error| format!("{error:#}"));
        (render(in_place), render(converted))
    }

    #[test]
    fn variables_read_in_place_render_as_the_converted_object_did() {
        let (in_place, converted) = both_ways(
            "{{ role }}|{{ skills | join(', ') }}|{% if years is defined %}{{ years }}{% endif %}\
             |{{ nested.a[1] }}|{{ ratio }}|{{ flag }}|{{ nothing }}|{{ skills | length }}",
            json!({
                "role": "Data {{ Analyst }}", "skills": ["SQL", "Excel"], "years": 4,
                "nested": { "a": [1, 2.5] }, "ratio": 0.1, "flag": true, "nothing": null,
            }),
        );
        assert_eq!(in_place.unwrap(), converted.unwrap());
    }

    #[test]
    fn an_undefined_variable_fails_with_the_same_error_as_before() {
        let (in_place, converted) = both_ways("line one\n{{ missing }}", json!({ "present": 1 }));
        assert_eq!(in_place.unwrap_err(), converted.unwrap_err());
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e9f64..1e9).prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_variable_value_renders_as_the_converted_object_did(
            value in json_value(),
            other in json_value(),
        ) {
            let (in_place, converted) = both_ways(
                "{{ v }}|{{ v | length if v is iterable else 0 }}|{% for x in w %}{{ x }};{% endfor %}",
                json!({ "v": value, "w": [other] }),
            );
            prop_assert_eq!(in_place, converted);
        }
    }
}
