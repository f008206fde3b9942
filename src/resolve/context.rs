//! The per-request input of a resolve: who the subject is, what we know about them, the
//! template variables, an optional pinned version, and the conversation so far.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::trace::TraceContext;
use crate::prompt::Message;

/// The subject and inputs of one resolve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ContextFields", into = "ContextFields")]
pub struct Context {
    subject_id: String,
    attributes: Map<String, Value>,
    /// Always an object; kept as a shared `Value` so validation needs no copy and rendering
    /// reads it in place (the template context holds a reference, not a converted copy).
    variables: Arc<Value>,
    version: Option<String>,
    /// The conversation history, appended after the rendered template messages.
    messages: Vec<Message>,
    /// A model that replaces the resolved chain (`provider`, `name`); not part of the wire
    /// shape, set only through [`Context::with_model`].
    model: Option<(String, String)>,
    /// The evaluation run this request belongs to, if any: its telemetry lines carry the run
    /// id, so `stats` and `dataset from-telemetry` can tell evaluation traffic from users'.
    evaluation_run: Option<Arc<str>>,
    /// The caller's trace (W3C `traceparent`), so the request's spans join it.
    trace: Option<TraceContext>,
}

/// The wire shape shared by the CLI's `--json`, the C ABI and the gem:
/// `{"user_id", "attributes"?, "variables"?, "version"?, "messages"?, "traceparent"?}`,
/// `messages` an array of `{"role", "content", "tool_calls"?: [{"id", "name", "arguments"}],
/// "tool_call_id"?}`, `traceparent` a W3C Trace Context header value.
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
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "messages_by_index"
    )]
    messages: Vec<Message>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "traceparent_field",
        serialize_with = "traceparent_text"
    )]
    traceparent: Option<TraceContext>,
}

/// The caller's `traceparent`, refused (naming the field) when it is not W3C Trace Context.
fn traceparent_field<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<TraceContext>, D::Error> {
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    TraceContext::parse_traceparent(&text)
        .map(Some)
        .map_err(|error| serde::de::Error::custom(format!("{error} (/traceparent)")))
}

/// The caller's trace written back as the `traceparent` it came from, so a serialized context
/// reads back (a context only carries a trace with a parent span: see `From<Context>`).
fn traceparent_text<S: serde::Serializer>(
    trace: &Option<TraceContext>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let header = trace
        .as_ref()
        .and_then(|trace| trace.parent_span_id.map(|parent| trace.traceparent(parent)));
    match header {
        Some(header) => serializer.serialize_str(&header),
        None => serializer.serialize_none(),
    }
}

/// The history, each message read on its own so a message of the wrong shape is named by its
/// index (`messages[1] (/messages/1): unknown variant ...`), as the CLI and the gem name it.
fn messages_by_index<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Message>, D::Error> {
    let items = Vec::<Value>::deserialize(deserializer)?;
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            serde_json::from_value(item).map_err(|error| {
                serde::de::Error::custom(format!("messages[{index}] (/messages/{index}): {error}"))
            })
        })
        .collect()
}

impl TryFrom<ContextFields> for Context {
    type Error = InvalidSubjectId;

    fn try_from(fields: ContextFields) -> Result<Self, Self::Error> {
        let mut context = Context::new(canonical_subject_id(&fields.user_id)?)
            .with_attributes(fields.attributes)
            .with_variables(fields.variables);
        context.version = fields.version;
        context.messages = fields.messages;
        context.trace = fields.traceparent;
        Ok(context)
    }
}

/// The subject id as the text that is hashed, from the JSON value a caller gave: a string as
/// given (no trimming, no case folding), an integer in decimal (`2` is `"2"`, `-7` is `"-7"`).
/// Everything else is refused, floats included: `2.0`, `2e0` and `2.5` are JSON numbers
/// that are not integers (JSON readers, serde_json among them, keep them as floats), and
/// guessing their text would bucket them apart from `2` or lose digits past 2^53. Integers
/// beyond 64 bits read as floats too, so they are refused; send such ids as strings.
///
/// This is the one rule for every door: Rust (`Context` deserialization), the C ABI (which
/// deserializes a `Context`), the Ruby gem (which converts its argument to JSON and calls this),
/// and the CLI (whose `--user` is a string, passed as given).
pub fn canonical_subject_id(value: &Value) -> Result<String, InvalidSubjectId> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) if number.is_i64() || number.is_u64() => Ok(number.to_string()),
        other => Err(InvalidSubjectId {
            found: describe(other),
        }),
    }
}

/// A subject id that is neither a string nor an integer. Its kind is `invalid_argument`, the
/// kind the C ABI reports bad arguments with (`PC_INVALID_ARGUMENT`); the gem raises `TypeError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("user_id must be a string or an integer, not {found}")]
pub struct InvalidSubjectId {
    /// What was given, described for a person (`the number 2.0`, `a boolean`, ...).
    pub found: String,
}

impl InvalidSubjectId {
    /// `invalid_argument`.
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::InvalidArgument
    }

    /// The argument at fault and what it was, as JSON.
    pub fn details(&self) -> Value {
        serde_json::json!({ "argument": "user_id", "found": self.found })
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(number) => {
            // Only floats get here: serde_json reads `2.0`, `2e0` and integers past 64 bits so.
            let float = number.as_f64().unwrap_or(f64::NAN);
            let hint = if float.fract() != 0.0 {
                String::new()
            } else if float.abs() < 9_007_199_254_740_992.0 {
                let integer = float as i64;
                format!(" (write {integer} or \"{integer}\")")
            } else {
                " (send ids past 64 bits as strings)".to_string()
            };
            format!("the number {number}, which is not an integer in JSON{hint}")
        }
        Value::String(_) => "a string".into(),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

impl From<Context> for ContextFields {
    fn from(context: Context) -> Self {
        let variables = match Arc::unwrap_or_clone(context.variables) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        ContextFields {
            user_id: Value::String(context.subject_id),
            attributes: context.attributes,
            variables,
            version: context.version,
            messages: context.messages,
            // A trace without a parent span (a root made in code) has no `traceparent` form.
            traceparent: context.trace.filter(|trace| trace.parent_span_id.is_some()),
        }
    }
}

impl Context {
    /// A context for `subject_id` (usually the user id) with no attributes or variables.
    pub fn new(subject_id: impl Into<String>) -> Self {
        Context {
            subject_id: subject_id.into(),
            attributes: Map::new(),
            variables: Arc::new(Value::Object(Map::new())),
            version: None,
            messages: Vec::new(),
            model: None,
            evaluation_run: None,
            trace: None,
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
        if let Value::Object(map) = Arc::make_mut(&mut self.variables) {
            map.insert(name.into(), value.into());
        }
        self
    }

    /// Replaces all template variables.
    pub fn with_variables(mut self, variables: Map<String, Value>) -> Self {
        self.variables = Arc::new(Value::Object(variables));
        self
    }

    /// Pins a version, bypassing experiments, rules and rollouts (drafts included).
    pub fn pin_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Replaces the conversation history: prior `user`, `assistant` (with the `tool_calls` it
    /// asked for) and `tool` turns (`Message::tool_result`), oldest first, appended after the
    /// rendered template messages. Checked at resolve (roles, tool results answering calls,
    /// the feature's `history` limits); a history that breaks a rule fails with
    /// `invalid_messages`.
    pub fn with_messages(mut self, messages: Vec<Message>) -> Self {
        self.messages = messages;
        self
    }

    /// Replaces the resolved model chain with one model of `providers.json` (`provider`,
    /// `name`), sent with the chain's primary sampling parameters and no fallbacks: what an
    /// evaluation's `--model` and a judge assertion's `model` do. The version, rendering and
    /// everything else resolve as usual. A model `providers.json` does not list fails the
    /// resolve with `unknown_model`. Not part of the context JSON of the bindings.
    pub fn with_model(mut self, provider: impl Into<String>, name: impl Into<String>) -> Self {
        self.model = Some((provider.into(), name.into()));
        self
    }

    /// Marks the request as a run of evaluation `run_id` (`eval-...`): its `prompt.resolve` and
    /// `llm.request` lines carry `prompt_config.eval.run_id`. Set by `Engine::evaluate` (and
    /// the judge's calls); not part of the context JSON.
    pub(crate) fn with_evaluation_run(mut self, run_id: Arc<str>) -> Self {
        self.evaluation_run = Some(run_id);
        self
    }

    /// The evaluation run this request belongs to, if any.
    pub(crate) fn evaluation_run(&self) -> Option<&str> {
        self.evaluation_run.as_deref()
    }

    /// Joins the caller's trace: the request's spans become children of the span `trace`
    /// names, and attempts send the provider a `traceparent` in the same trace. Parse a header
    /// with [`TraceContext::parse_traceparent`]; the context JSON takes it as `traceparent`.
    pub fn with_trace_context(mut self, trace: TraceContext) -> Self {
        self.trace = Some(trace);
        self
    }

    /// The caller's trace, if it gave one.
    pub fn trace_context(&self) -> Option<&TraceContext> {
        self.trace.as_ref()
    }

    /// The model override, as (`provider`, `name`), if any.
    pub fn model_override(&self) -> Option<(&str, &str)> {
        self.model
            .as_ref()
            .map(|(provider, name)| (provider.as_str(), name.as_str()))
    }

    /// Adds one message to the end of the conversation history (see [`Context::with_messages`]).
    pub fn message(mut self, message: Message) -> Self {
        self.messages.push(message);
        self
    }

    /// The conversation history, oldest first.
    pub fn messages(&self) -> &[Message] {
        &self.messages
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

    /// The template variables, shared (a reference count, no copy).
    pub(crate) fn variables_shared(&self) -> &Arc<Value> {
        &self.variables
    }

    /// The pinned version, if any.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::{Context, Message, canonical_subject_id};
    use serde_json::{Value, json};

    fn id(text: &str) -> Result<String, String> {
        let value: Value = serde_json::from_str(text).unwrap();
        canonical_subject_id(&value).map_err(|error| error.to_string())
    }

    #[test]
    fn a_history_message_of_the_wrong_shape_is_named_by_its_index() {
        let error = serde_json::from_value::<Context>(json!({"user_id": "u", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "robot", "content": "beep"}
        ]}))
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("messages[1] (/messages/1): unknown variant `robot`"),
            "{error}"
        );
    }

    #[test]
    fn integer_and_its_decimal_string_are_the_same_subject() {
        assert_eq!(id("2").unwrap(), "2");
        assert_eq!(id("\"2\"").unwrap(), "2");
        assert_eq!(id("-7").unwrap(), "-7");
        assert_eq!(id("18446744073709551615").unwrap(), "18446744073709551615");
    }

    #[test]
    fn strings_are_taken_as_given() {
        assert_eq!(id("\" 2.0 \"").unwrap(), " 2.0 ");
        assert_eq!(id("\"\"").unwrap(), "");
    }

    #[test]
    fn float_spellings_of_an_integer_are_refused_naming_user_id() {
        for text in ["2.0", "2e0", "2E+0", "-0", "2.5", "18446744073709551616"] {
            let message = id(text).unwrap_err();
            assert!(
                message.starts_with("user_id must be a string or an integer"),
                "{message}"
            );
            assert!(message.contains("not an integer"), "{text}: {message}");
        }
    }

    #[test]
    fn other_json_values_are_refused_with_what_they_are() {
        assert!(id("2.0").unwrap_err().ends_with(r#"(write 2 or "2")"#));
        assert!(id("true").unwrap_err().ends_with("not a boolean"));
        assert!(id("null").unwrap_err().ends_with("not null"));
        assert!(id("[2]").unwrap_err().ends_with("not an array"));
        assert!(id("{}").unwrap_err().ends_with("not an object"));
    }

    #[test]
    fn context_deserialization_uses_the_same_rule() {
        let parse =
            |user_id: Value| serde_json::from_value::<Context>(json!({ "user_id": user_id }));
        assert_eq!(parse(json!(2)).unwrap(), parse(json!("2")).unwrap());
        let error = parse(json!(2.0)).unwrap_err().to_string();
        assert!(
            error.contains("user_id must be a string or an integer"),
            "{error}"
        );
    }

    #[test]
    fn the_context_json_carries_the_history_as_messages() {
        let context: Context = serde_json::from_value(json!({
            "user_id": "u1",
            "messages": [
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": "", "tool_calls": [
                    {"id": "call_1", "name": "weather", "arguments": {"city": "Paris"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "18C"}
            ]
        }))
        .unwrap();
        let expected = Context::new("u1")
            .message(Message::new(crate::Role::User, "Weather?"))
            .message(Message {
                tool_calls: vec![crate::output::ToolCall {
                    id: "call_1".into(),
                    name: "weather".into(),
                    arguments: json!({"city": "Paris"}),
                }],
                ..Message::new(crate::Role::Assistant, "")
            })
            .message(Message::tool_result("call_1", "18C"));
        assert_eq!(context, expected);
        assert_eq!(context.messages().len(), 3);
        let back: Context =
            serde_json::from_value(serde_json::to_value(&context).unwrap()).unwrap();
        assert_eq!(back, context);
    }

    #[test]
    fn a_context_without_history_serializes_without_messages() {
        let value = serde_json::to_value(Context::new("u1")).unwrap();
        assert!(value.get("messages").is_none(), "{value}");
    }

    #[test]
    fn unknown_message_fields_and_roles_are_refused_by_the_context_json() {
        let parse = |message: Value| {
            serde_json::from_value::<Context>(json!({"user_id": "u", "messages": [message]}))
                .map(|_| ())
                .map_err(|error| error.to_string())
        };
        let error = parse(json!({"role": "user", "content": "hi", "name": "x"})).unwrap_err();
        assert!(error.contains("unknown field `name`"), "{error}");
        let error = parse(json!({"role": "developer", "content": "hi"})).unwrap_err();
        assert!(error.contains("developer"), "{error}");
        let error = parse(json!({"content": "hi"})).unwrap_err();
        assert!(error.contains("missing field `role`"), "{error}");
    }

    #[test]
    fn invalid_subject_id_is_an_invalid_argument_naming_user_id() {
        let error = canonical_subject_id(&json!(2.5)).unwrap_err();
        assert_eq!(error.kind(), "invalid_argument");
        assert_eq!(error.details()["argument"], "user_id");
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::canonical_subject_id;

    proptest! {
        #[test]
        fn every_integer_is_the_same_subject_as_its_decimal_string(number in any::<i64>()) {
            let from_number = canonical_subject_id(&json!(number)).unwrap();
            prop_assert_eq!(&from_number, &number.to_string());
            prop_assert_eq!(canonical_subject_id(&json!(number.to_string())).unwrap(), from_number);
        }

        #[test]
        fn every_string_is_taken_as_given(text in ".*") {
            prop_assert_eq!(canonical_subject_id(&Value::String(text.clone())).unwrap(), text);
        }

        #[test]
        fn every_float_spelling_is_refused(number in any::<i32>(), exponent in 0u8..3) {
            // `N.0` and `Ne0`-style texts are floats to every JSON reader, integral or not.
            for text in [format!("{number}.0"), format!("{number}e{exponent}")] {
                let value: Value = serde_json::from_str(&text).unwrap();
                prop_assert!(canonical_subject_id(&value).is_err(), "{}", text);
            }
        }
    }
}
