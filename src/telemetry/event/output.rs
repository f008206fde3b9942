//! The structured-output fields of `llm.request` and `llm.attempt` lines (`prompt_config.output.*`):
//! on a request of a version with an output schema or tools, whether the schema exists, whether
//! the answer was valid, how many answers were invalid and how many repairs were made, how many
//! tool calls came back, and (only under the feature's `telemetry.record_text`) the parsed data;
//! on an `invalid_output` attempt, why, how many violations and the first one's JSON pointer,
//! never the violation messages (they quote the answer). Written by the `Serialize` impls and,
//! byte for byte the same, by [`write_request_output`] and [`write_attempt_output`] for the
//! hand-written lines.

use serde::Serialize;
use serde_json::Value;

use crate::telemetry::writer::json::JsonObject;

/// `prompt_config.output.*` of an `llm.request` line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestOutputFields {
    /// The version declares an output schema; absent when it does not (it has tools only).
    #[serde(
        rename = "prompt_config.output.schema",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub schema: bool,
    /// With an output schema: whether the call ended with a valid answer (`false` when it
    /// failed with `invalid_output`); absent when the call ended before any answer (an outage).
    #[serde(
        rename = "prompt_config.output.valid",
        skip_serializing_if = "Option::is_none"
    )]
    pub valid: Option<bool>,
    /// Repair attempts made: an invalid answer sent back to the same model with its
    /// validation errors.
    #[serde(rename = "prompt_config.output.repairs")]
    pub repairs: u32,
    /// Attempts whose answer (or tool call) was invalid.
    #[serde(rename = "prompt_config.output.invalid_outputs")]
    pub invalid_outputs: u32,
    /// Tool calls in the answer, when the version declares tools.
    #[serde(
        rename = "prompt_config.output.tool_calls",
        skip_serializing_if = "Option::is_none"
    )]
    pub tool_calls: Option<u32>,
    /// The parsed answer, only when the feature's `telemetry.record_text` is on.
    #[serde(
        rename = "prompt_config.output.data",
        skip_serializing_if = "Option::is_none"
    )]
    pub data: Option<Value>,
}

/// `prompt_config.output.*` of an `llm.attempt` line whose outcome is `invalid_output`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptOutputFields {
    /// `not_json`, `schema` or `unknown_tool`.
    #[serde(rename = "prompt_config.output.invalid_reason")]
    pub reason: &'static str,
    /// The declared tool whose arguments were invalid; absent for the answer itself and for
    /// an unknown tool (its name is the model's words).
    #[serde(
        rename = "prompt_config.output.tool",
        skip_serializing_if = "Option::is_none"
    )]
    pub tool: Option<String>,
    /// How many violations the validation found.
    #[serde(rename = "prompt_config.output.violations")]
    pub violations: u32,
    /// The JSON pointer into the answer (or the arguments) of the first violation; empty for
    /// the root.
    #[serde(rename = "prompt_config.output.pointer")]
    pub pointer: String,
}

/// [`RequestOutputFields`] in its `Serialize` order.
pub(super) fn write_request_output(
    object: &mut JsonObject<'_>,
    fields: Option<&RequestOutputFields>,
) -> serde_json::Result<()> {
    let Some(fields) = fields else {
        return Ok(());
    };
    if fields.schema {
        object.raw("prompt_config.output.schema", b"true");
    }
    if let Some(valid) = fields.valid {
        object.raw(
            "prompt_config.output.valid",
            if valid { b"true" } else { b"false" },
        );
    }
    object.value("prompt_config.output.repairs", &fields.repairs)?;
    object.value("prompt_config.output.invalid_outputs", &fields.invalid_outputs)?;
    if let Some(calls) = &fields.tool_calls {
        object.value("prompt_config.output.tool_calls", calls)?;
    }
    if let Some(data) = &fields.data {
        object.value("prompt_config.output.data", data)?;
    }
    Ok(())
}

/// [`AttemptOutputFields`] in its `Serialize` order.
pub(super) fn write_attempt_output(
    object: &mut JsonObject<'_>,
    fields: Option<&AttemptOutputFields>,
) -> serde_json::Result<()> {
    let Some(fields) = fields else {
        return Ok(());
    };
    object.str("prompt_config.output.invalid_reason", fields.reason);
    object.opt_str("prompt_config.output.tool", fields.tool.as_deref());
    object.value("prompt_config.output.violations", &fields.violations)?;
    object.str("prompt_config.output.pointer", &fields.pointer);
    Ok(())
}
