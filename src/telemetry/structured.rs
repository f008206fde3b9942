//! Structured output in telemetry: the `prompt_config.output.*` fields of a call and of an
//! `invalid_output` attempt, and the invalid-output, repair and validated-answer counters, all
//! derived from the completion (or the failure) and its attempts. Text (the parsed data, the
//! tool-call arguments) only under the feature's `telemetry.record_text`.

use serde_json::{Value, json};

use super::event::{AttemptOutputFields, RequestOutputFields};
use super::metrics::{Metrics, OutputLabels};
use crate::client::{Attempt, AttemptOutcome, Completion};
use crate::output::{InvalidOutput, InvalidReason};
use crate::resolve::Resolution;

/// Whether the version's answers are validated: it declares an output schema or tools.
pub(super) fn is_structured(resolution: &Resolution) -> bool {
    resolution.output.is_some() || !resolution.tools.is_empty()
}

/// Attempts whose answer was invalid.
fn invalid_outputs(attempts: &[Attempt]) -> u32 {
    attempts
        .iter()
        .filter(|attempt| attempt.outcome == AttemptOutcome::InvalidOutput)
        .count() as u32
}

/// Whether `attempts[index]` repaired the one before it: that one was invalid, on the same
/// provider and model (an invalid answer without repair moves to the next model).
fn is_repair(attempts: &[Attempt], index: usize) -> bool {
    let Some(previous) = index.checked_sub(1).and_then(|before| attempts.get(before)) else {
        return false;
    };
    let Some(attempt) = attempts.get(index) else {
        return false;
    };
    previous.outcome == AttemptOutcome::InvalidOutput
        && previous.provider == attempt.provider
        && previous.model == attempt.model
}

/// Repair attempts among `attempts`.
pub(super) fn repairs(attempts: &[Attempt]) -> u32 {
    (0..attempts.len())
        .filter(|index| is_repair(attempts, *index))
        .count() as u32
}

/// The output fields of a successful call, `None` for a prose version without tools.
pub(super) fn completed_fields(
    completion: &Completion,
    record_text: bool,
) -> Option<RequestOutputFields> {
    let resolution = &completion.resolution;
    if !is_structured(resolution) && completion.data.is_none() && completion.tool_calls.is_empty() {
        return None;
    }
    let schema = resolution.output.is_some();
    Some(RequestOutputFields {
        schema,
        // A tool-call answer carries no data: it is valid when its calls are.
        valid: schema.then_some(completion.data.is_some() || !completion.tool_calls.is_empty()),
        repairs: completion.repairs,
        invalid_outputs: invalid_outputs(&completion.attempts),
        tool_calls: (!resolution.tools.is_empty() || !completion.tool_calls.is_empty())
            .then_some(completion.tool_calls.len() as u32),
        // Cloned only under the opt-in: a feature that does not record text pays nothing.
        data: if record_text {
            completion.data.clone()
        } else {
            None
        },
    })
}

/// The output fields of a failed call, `None` for a prose version without tools. `valid` is
/// `false` when it failed because of invalid answers, absent when no answer arrived at all.
pub(super) fn failed_fields(
    resolution: &Resolution,
    attempts: &[Attempt],
    failed_on_invalid_output: bool,
) -> Option<RequestOutputFields> {
    if !is_structured(resolution) {
        return None;
    }
    let invalid = invalid_outputs(attempts);
    let schema = resolution.output.is_some();
    Some(RequestOutputFields {
        schema,
        valid: (schema && (failed_on_invalid_output || invalid > 0)).then_some(false),
        repairs: repairs(attempts),
        invalid_outputs: invalid,
        tool_calls: (!resolution.tools.is_empty()).then_some(0),
        data: None,
    })
}

/// The fields of an `invalid_output` attempt: reason, violation count, first pointer; the tool
/// only when it is a declared one.
pub(super) fn attempt_fields(attempt: &Attempt) -> Option<AttemptOutputFields> {
    if attempt.outcome != AttemptOutcome::InvalidOutput {
        return None;
    }
    let invalid: Option<&InvalidOutput> = attempt.invalid_output.as_ref();
    Some(AttemptOutputFields {
        reason: invalid.map_or("schema", |invalid| invalid.reason.as_str()),
        tool: invalid
            .filter(|invalid| invalid.reason != InvalidReason::UnknownTool)
            .and_then(|invalid| invalid.tool.clone()),
        violations: invalid.map_or(0, |invalid| invalid.violations.len() as u32),
        pointer: invalid
            .and_then(|invalid| invalid.violations.first())
            .map(|violation| violation.pointer.clone())
            .unwrap_or_default(),
    })
}

/// `gen_ai.output.messages` under the text opt-in: the answer's text, its refusal and its
/// tool calls with their arguments.
pub(super) fn output_messages(completion: &Completion) -> Value {
    let mut message = json!({ "role": "assistant", "content": completion.text });
    if let Some(refusal) = &completion.refusal {
        message["refusal"] = json!(refusal);
    }
    if !completion.tool_calls.is_empty() {
        message["tool_calls"] = json!(completion.tool_calls);
    }
    json!([message])
}

/// Counts the validated answers, invalid outputs and repairs of a structured call's attempts,
/// each under the attempt's own provider and model.
pub(super) fn record_metrics(metrics: &Metrics, resolution: &Resolution, attempts: &[Attempt]) {
    if !is_structured(resolution) {
        return;
    }
    for (index, attempt) in attempts.iter().enumerate() {
        let answered = matches!(
            attempt.outcome,
            AttemptOutcome::Success | AttemptOutcome::InvalidOutput
        );
        if !answered {
            continue;
        }
        let labels = OutputLabels {
            feature: &resolution.feature,
            version: &resolution.version,
            provider: &attempt.provider,
            model: &attempt.model,
        };
        metrics.record_output(
            &labels,
            attempt.outcome == AttemptOutcome::InvalidOutput,
            is_repair(attempts, index),
        );
    }
}
