//! The per-request input of a resolve: who the subject is, what we know about them, the
//! template variables, and an optional pinned version.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The subject and inputs of one resolve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ContextFields", into = "ContextFields")]
pub struct Context {
    subject_id: String,
    attributes: Map<String, Value>,
    /// Always an object; kept as a `Value` so validation and rendering need no copy.
    variables: Value,
    version: Option<String>,
}

/// The wire shape shared by the CLI's `--json`, the C ABI and the gem.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContextFields {
    user_id: Value,
    #[serde(default)]
    attributes: Map<String, Value>,
    #[serde(default)]
    variables: Map<String, Value>,
    #[serde(default)]
    version: Option<String>,
}

impl TryFrom<ContextFields> for Context {
    type Error = String;

    fn try_from(fields: ContextFields) -> Result<Self, Self::Error> {
        let subject_id = match fields.user_id {
            Value::String(text) => text,
            Value::Number(number) => number.to_string(),
            other => {
                return Err(format!(
                    "user_id must be a string or an integer, not {other}"
                ));
            }
        };
        let mut context = Context::new(subject_id)
            .with_attributes(fields.attributes)
            .with_variables(fields.variables);
        context.version = fields.version;
        Ok(context)
    }
}

impl From<Context> for ContextFields {
    fn from(context: Context) -> Self {
        let variables = match context.variables {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        ContextFields {
            user_id: Value::String(context.subject_id),
            attributes: context.attributes,
            variables,
            version: context.version,
        }
    }
}

impl Context {
    /// A context for `subject_id` (usually the user id) with no attributes or variables.
    pub fn new(subject_id: impl Into<String>) -> Self {
        Context {
            subject_id: subject_id.into(),
            attributes: Map::new(),
            variables: Value::Object(Map::new()),
            version: None,
        }
    }

    /// Adds one targeting attribute (sector, degree, experience level, ...).
    pub fn attribute(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// Replaces all attributes.
    pub fn with_attributes(mut self, attributes: Map<String, Value>) -> Self {
        self.attributes = attributes;
        self
    }

    /// Adds one template variable.
    pub fn variable(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        if let Value::Object(map) = &mut self.variables {
            map.insert(name.into(), value.into());
        }
        self
    }

    /// Replaces all template variables.
    pub fn with_variables(mut self, variables: Map<String, Value>) -> Self {
        self.variables = Value::Object(variables);
        self
    }

    /// Pins a version, bypassing experiments, rules and rollouts (drafts included).
    pub fn pin_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// The subject id hashed for assignment.
    pub fn subject_id(&self) -> &str {
        &self.subject_id
    }

    /// The targeting attributes.
    pub fn attributes(&self) -> &Map<String, Value> {
        &self.attributes
    }

    /// The template variables as a JSON object.
    pub fn variables_value(&self) -> &Value {
        &self.variables
    }

    /// The pinned version, if any.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }
}
