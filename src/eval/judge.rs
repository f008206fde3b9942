//! The judge: a `judge` assertion asks a judge feature (a prompt of our own, versioned like
//! any feature's; [`DEFAULT_JUDGE_FEATURE`] unless the assertion names another) to grade an
//! answer against a rubric. The call is an ordinary [`Engine::complete`] of that feature, so
//! the judge's model chain, failover, budgets, telemetry and the structured-output path apply:
//! its answer arrives as `Completion::data` already validated against the verdict schema (an
//! invalid verdict was sent back once for repair, or failed over), and this module only turns
//! `{reason, score, pass}` into a [`Grade`].
//!
//! It also owns the upfront check ([`check`]) that every judge assertion of a dataset names a
//! judge feature that exists and answers a structured verdict, and a model `providers.json`
//! lists, so a misspelt judge stops the evaluation before any call instead of failing every
//! run of the case.

use serde_json::Value;

use crate::Engine;
use crate::client::Completion;
use crate::error::{DatasetProblem, EvalError};
use crate::prompt::Message;
use crate::resolve::Context;

use super::run::split_model;
use super::{Assertion, AssertionKind, DEFAULT_JUDGE_FEATURE, Dataset, Grade};

/// The judge's variables, as the shipped judge declares them: the rubric, the request the
/// judged feature was sent, and its answer.
const RUBRIC: &str = "rubric";
const INPUT: &str = "input";
const OUTPUT: &str = "output";

/// Grades `completion` by asking the judge feature of `assertion` (with the assertion's model
/// in place of the judge's chain when it names one); returns the grade and what the judge's
/// call cost in USD (also when the call failed but was still charged, or was made under the
/// mock provider).
///
/// The grade is the verdict's: pass or fail as the judge said, score clamped to 0..=1, reason
/// the judge's. The assertion's threshold is applied afterwards by the runner. A judge call
/// that fails (an outage past every fallback, a budget, a verdict still invalid after its
/// repair) is a failure whose reason names the error kind.
///
/// Under the mock provider (mock mode, or a provider of kind `mock` answering) the call is
/// still made (it exercises the judge's prompt, schema and model chain, and its cost counts),
/// but the grade is `skipped`: the mock generates values from a seed taken from the prompt, so
/// its `pass` and `score` are coin flips that never read the answer, and counting them would
/// make a deterministic evaluation pass or fail by chance.
pub(crate) fn grade(
    engine: &Engine,
    assertion: &Assertion,
    completion: &Completion,
    run_id: &std::sync::Arc<str>,
) -> (Grade, f64) {
    let AssertionKind::Judge {
        rubric,
        feature,
        model,
    } = &assertion.kind
    else {
        // The runner sends only judge assertions here.
        return (assertion.grade(&super::Observation::of(completion)), 0.0);
    };
    let feature = feature.as_deref().unwrap_or(DEFAULT_JUDGE_FEATURE);
    // The subject is the judged answer's request id (the shipped judge records it in clear),
    // so that the judge's telemetry joins the run it graded.
    let mut context = Context::new(completion.request_id.as_str())
        .with_evaluation_run(run_id.clone())
        .variable(RUBRIC, rubric.as_str())
        .variable(INPUT, input_text(&completion.resolution.messages))
        .variable(OUTPUT, output_text(completion));
    if let Some(model) = model {
        match split_model(model) {
            Ok((provider, name)) => context = context.with_model(provider, name),
            // `check` refused this before any run; kept as a failure for direct callers.
            Err(error) => return (Grade::fail(format!("judge model: {error}")), 0.0),
        }
    }
    match engine.complete(feature, &context) {
        Ok(judged) if answered_by_mock(engine, &judged) => (
            Grade::skipped(format!(
                "not judged: under the mock provider the {feature} verdict is generated from a \
                 seed of the prompt, not from reading the answer, so it counts neither way"
            )),
            judged.cost_usd,
        ),
        Ok(judged) => (verdict_grade(feature, &judged), judged.cost_usd),
        Err(error) => {
            let charged = match &error {
                crate::Error::Complete(complete) => complete.charged().map_or(0.0, |(usd, _)| usd),
                _ => 0.0,
            };
            let message = error.to_string();
            // The first line: a failed call's message goes on to list every attempt.
            let summary = message.lines().next().unwrap_or_default();
            let reason = format!(
                "the judge {feature} failed ({}): {summary}",
                error.kind().as_str()
            );
            (Grade::fail(reason), charged)
        }
    }
}

/// Whether a mock made the verdict up: the engine runs in mock mode (every provider routed to
/// the mock), or the provider that answered is of kind `mock` in `providers.json` (a judge
/// pointed at `mock/mock-small`, say).
fn answered_by_mock(engine: &Engine, judged: &Completion) -> bool {
    engine.options().mock
        || engine
            .snapshot()
            .providers()
            .providers
            .get(&judged.provider)
            .is_some_and(|provider| provider.kind == "mock")
}

/// The grade a judge's answer gives: its verdict, or a failure saying why there is none.
fn verdict_grade(feature: &str, judged: &Completion) -> Grade {
    match &judged.data {
        Some(data) => verdict(data).unwrap_or_else(|problem| {
            Grade::fail(format!(
                "the judge {feature} {} answered no verdict: {problem}",
                judged.resolution.version
            ))
        }),
        None => Grade::fail(format!(
            "the judge {feature} {} declares no output schema, so it answered no verdict",
            judged.resolution.version
        )),
    }
}

/// `{"pass": bool, "score": number, "reason": string}` (other members ignored: a judge of
/// one's own may say more) as a grade, score clamped to 0..=1; or what is missing.
fn verdict(data: &Value) -> Result<Grade, String> {
    let pass = data
        .get("pass")
        .and_then(Value::as_bool)
        .ok_or("\"pass\" is not a boolean")?;
    let score = data
        .get("score")
        .and_then(Value::as_f64)
        .ok_or("\"score\" is not a number")?;
    let reason = data
        .get("reason")
        .and_then(Value::as_str)
        .ok_or("\"reason\" is not a string")?;
    Ok(Grade {
        outcome: if pass {
            super::GradeOutcome::Pass
        } else {
            super::GradeOutcome::Fail
        },
        // JSON numbers are finite; the schema can only describe the range (numeric bounds are
        // outside the providers' subset), so a judge saying 5 or -1 is clamped here.
        score: score.clamp(0.0, 1.0),
        reason: reason.to_string(),
    })
}

/// The judged request as the judge reads it: each message as `role: content`, blank lines
/// between, tool calls and tool results marked with their ids.
fn input_text(messages: &[Message]) -> String {
    messages
        .iter()
        .map(|message| {
            let mut text = match &message.tool_call_id {
                Some(id) => format!("{} ({id}): {}", message.role.as_str(), message.content),
                None => format!("{}: {}", message.role.as_str(), message.content),
            };
            for call in &message.tool_calls {
                text.push_str(&format!(
                    "\n(tool call {}: {} {})",
                    call.id, call.name, call.arguments
                ));
            }
            text
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The judged answer: the parsed data of a structured answer as indented JSON (the valid
/// answer, after any repair), else the text; tool calls the model asked for follow as JSON.
fn output_text(completion: &Completion) -> String {
    let mut text = match &completion.data {
        Some(data) => serde_json::to_string_pretty(data).unwrap_or_else(|_| data.to_string()),
        None => completion.text.clone(),
    };
    for call in &completion.tool_calls {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!(
            "(tool call {}: {} {})",
            call.id, call.name, call.arguments
        ));
    }
    text
}

/// Checks, before any call, every judge assertion of `dataset` that applies to one of
/// `versions`: its judge feature exists and its active version declares an output schema (a
/// verdict), and its model, if any, is written `provider/name` and listed in `providers.json`.
///
/// Errors: `invalid_dataset`, one problem per assertion at fault (a judge feature missing or
/// without a verdict, a model not written `provider/name`: `file:line: /assertions/2/feature:
/// ...`; for a case built in code, the dataset's name and the case id); else `unknown_model`
/// for the first model `providers.json` does not list, as for `EvalOptions::model`.
pub(crate) fn check(engine: &Engine, dataset: &Dataset, versions: &[String]) -> crate::Result<()> {
    let snapshot = engine.snapshot();
    let models = snapshot.model_names();
    let mut problems = Vec::new();
    let mut unknown_model = None;
    for case in &dataset.cases {
        let applied =
            case.assertions.iter().enumerate().filter(|(_, assertion)| {
                versions.iter().any(|version| assertion.applies_to(version))
            });
        for (index, assertion) in applied {
            let AssertionKind::Judge { feature, model, .. } = &assertion.kind else {
                continue;
            };
            let mut problem = |field: &str, message: String| {
                let (file, message) = if case.file.is_empty() {
                    (
                        dataset.name.clone(),
                        format!("case {:?}: {message}", case.id),
                    )
                } else {
                    (case.file.clone(), message)
                };
                problems.push(DatasetProblem {
                    file,
                    line: case.line,
                    pointer: format!("/assertions/{index}{field}"),
                    message,
                });
            };
            let (name, field) = match feature {
                Some(name) => (name.as_str(), "/feature"),
                None => (DEFAULT_JUDGE_FEATURE, ""),
            };
            match snapshot.features.get(name) {
                None => {
                    let configured = snapshot.feature_names().join(", ");
                    let default = if feature.is_none() {
                        " (the default judge: copy config/features/eval_judge.json and \
                         prompts/eval_judge/ into the configuration, or name a judge with \
                         \"feature\")"
                    } else {
                        ""
                    };
                    problem(
                        field,
                        format!(
                            "judge feature {name:?} is not configured{default} (configured: \
                             {configured})"
                        ),
                    );
                }
                Some(compiled) if compiled.active.prompt.output.is_none() => problem(
                    field,
                    format!(
                        "judge feature {name:?} {} declares no output schema: a judge answers a \
                         structured verdict {{pass, score, reason}}",
                        compiled.active.version
                    ),
                ),
                Some(_) => {}
            }
            if let Some(model) = model {
                match split_model(model) {
                    Err(error) => problem("/model", error.to_string()),
                    Ok(_) if !models.iter().any(|listed| listed == model) => {
                        unknown_model.get_or_insert_with(|| model.clone());
                    }
                    Ok(_) => {}
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(EvalError::InvalidDataset { problems }.into());
    }
    match unknown_model {
        Some(model) => Err(crate::resolve::ResolveError::UnknownModel {
            model,
            known: models,
        }
        .into()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::prompt::Role;

    #[test]
    fn a_verdict_becomes_a_grade_with_the_judges_reason() {
        let grade = verdict(&json!({"reason": "names three paths", "score": 0.9, "pass": true}));
        assert_eq!(
            grade,
            Ok(Grade {
                outcome: super::super::GradeOutcome::Pass,
                score: 0.9,
                reason: "names three paths".into()
            })
        );
        let failed = verdict(&json!({"reason": "one path", "score": 0.2, "pass": false})).unwrap();
        assert_eq!(failed.outcome, super::super::GradeOutcome::Fail);
        assert_eq!(failed.score, 0.2);
    }

    #[test]
    fn a_score_outside_0_to_1_is_clamped() {
        let high = verdict(&json!({"reason": "", "score": 5, "pass": true})).unwrap();
        let low = verdict(&json!({"reason": "", "score": -0.5, "pass": false})).unwrap();
        assert_eq!((high.score, low.score), (1.0, 0.0));
    }

    #[test]
    fn a_verdict_missing_a_member_says_which() {
        assert_eq!(
            verdict(&json!({"reason": "x", "score": "high", "pass": true})),
            Err("\"score\" is not a number".to_string())
        );
        assert_eq!(
            verdict(&json!({"score": 1, "pass": true})),
            Err("\"reason\" is not a string".to_string())
        );
        assert_eq!(
            verdict(&json!(["pass"])),
            Err("\"pass\" is not a boolean".to_string())
        );
    }

    #[test]
    fn the_input_lists_every_message_with_its_role_and_tool_calls() {
        let mut assistant = Message::new(Role::Assistant, "");
        assistant.tool_calls = vec![crate::output::ToolCall {
            id: "call_1".into(),
            name: "salary".into(),
            arguments: json!({"role": "nurse"}),
        }];
        let messages = vec![
            Message::new(Role::System, "Be kind."),
            Message::new(Role::User, "Paths?"),
            assistant,
            Message::tool_result("call_1", "42000"),
        ];
        assert_eq!(
            input_text(&messages),
            "system: Be kind.\n\nuser: Paths?\n\nassistant: \n(tool call call_1: salary \
             {\"role\":\"nurse\"})\n\ntool (call_1): 42000"
        );
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<f64>().prop_map(|number| json!(number)),
            any::<i64>().prop_map(|number| json!(number)),
            ".*".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::hash_map("pass|score|reason|.*", inner, 0..4)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever a judge answers, the verdict reader neither panics nor gives a score
        /// outside 0..=1.
        #[test]
        fn any_json_reads_as_a_grade_in_range_or_a_problem(data in json_value()) {
            if let Ok(grade) = verdict(&data) {
                prop_assert!((0.0..=1.0).contains(&grade.score));
            }
        }

        #[test]
        fn any_score_and_reason_keep_the_reason_and_a_score_in_range(
            score in any::<f64>().prop_filter("JSON numbers are finite", |s| s.is_finite()),
            reason in "(?s).{0,200}",
            pass in any::<bool>(),
        ) {
            let grade = verdict(&json!({"reason": reason, "score": score, "pass": pass})).unwrap();
            prop_assert!((0.0..=1.0).contains(&grade.score));
            prop_assert_eq!(grade.reason, reason);
        }
    }
}
