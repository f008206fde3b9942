//! The demo's structured-output step: requests pinned to the JSON version of the feature (the
//! one whose output schema the client validates every answer against), one parsed answer shown
//! through `Completion::parse`, and the invalid-output and repair rates the run measured. The
//! mock providers make a share of their answers invalid (`mock.invalid_output_share` in
//! `providers.json`), so the repairs are real ones the client made.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::{Demo, FEATURE, INDENT, demo_context};
use crate::cli::Failure;
use prompt_config::client::{Attempt, AttemptOutcome, Completion};

/// The version of the feature that answers JSON (`career_paths`: `paths`, three of them).
pub(super) const JSON_VERSION: &str = "2.2.0";

/// The widest line the demo prints.
const WIDTH: usize = 100;

/// The shape of the JSON version's answer (`output.schema.json` of 2.2.0), as a Rails model
/// would read it.
#[derive(Debug, Deserialize)]
struct CareerPaths {
    paths: Vec<CareerPath>,
}

#[derive(Debug, Deserialize)]
struct CareerPath {
    role: String,
    #[serde(default)]
    skills_to_add: Vec<String>,
    #[serde(default)]
    first_step: String,
}

/// What the step counts.
#[derive(Default)]
pub(super) struct Tally {
    requests: u64,
    answered: u64,
    answers: u64,
    invalid: u64,
    repairs: u64,
    failed_invalid: u64,
    example: Option<Completion>,
}

impl Tally {
    fn count_attempts(&mut self, attempts: &[Attempt]) {
        for attempt in attempts {
            match attempt.outcome {
                AttemptOutcome::Success => self.answers += 1,
                AttemptOutcome::InvalidOutput => {
                    self.answers += 1;
                    self.invalid += 1;
                }
                _ => {}
            }
        }
    }
}

impl Demo {
    /// Step 6: `count` requests of the JSON version, when the configuration has one with an
    /// output schema (nothing is printed otherwise).
    pub(super) fn structured(&mut self, count: usize) -> Result<(), Failure> {
        let probe = demo_context(self.sent).pin_version(JSON_VERSION);
        let Ok(resolution) = self.engine.resolve(FEATURE, &probe) else {
            return Ok(());
        };
        let Some(schema) = resolution.output.as_ref() else {
            return Ok(());
        };
        tell!(
            self,
            "\n6. structured output: version {JSON_VERSION} answers JSON that the client checks \
             against\n{INDENT}its schema ({}); the mocks make some answers invalid and the \
             client repairs them",
            schema.name()
        );
        let mut tally = Tally::default();
        for _ in 0..count {
            let context = demo_context(self.sent).pin_version(JSON_VERSION);
            self.sent += 1;
            tally.requests += 1;
            match self.engine.complete(FEATURE, &context) {
                Ok(completion) => {
                    tally.answered += 1;
                    tally.count_attempts(&completion.attempts);
                    tally.repairs += u64::from(completion.repairs);
                    self.record(&completion);
                    if tally.example.is_none() && completion.data.is_some() {
                        tally.example = Some(completion);
                    }
                }
                Err(prompt_config::Error::Complete(failure)) => {
                    self.failed += 1;
                    tally.count_attempts(failure.attempts());
                    tally.repairs += repairs_in(failure.attempts());
                    if failure.kind() == prompt_config::ErrorKind::InvalidOutput {
                        tally.failed_invalid += 1;
                    }
                    self.record_attempts(failure.attempts(), None, None);
                }
                Err(error) => return Err(error.into()),
            }
            self.clock.advance(Duration::from_millis(250));
        }
        self.progress();
        self.print_example(&tally);
        for line in rates(&tally) {
            tell!(self, "{INDENT}{line}");
        }
        Ok(())
    }

    fn print_example(&self, tally: &Tally) {
        let Some(completion) = &tally.example else {
            tell!(self, "{INDENT}no answer carried parsed data");
            return;
        };
        tell!(
            self,
            "{INDENT}a parsed answer ({}, {}/{}, {} repair{}):",
            completion.resolution.request_id,
            completion.provider,
            completion.model,
            completion.repairs,
            if completion.repairs == 1 { "" } else { "s" }
        );
        match completion.parse::<CareerPaths>() {
            Ok(parsed) => {
                for (index, path) in parsed.paths.iter().enumerate() {
                    let line = format!(
                        "{INDENT}{}. {}: first step {}; add {}",
                        index + 1,
                        path.role,
                        path.first_step,
                        path.skills_to_add.join(", ")
                    );
                    tell!(self, "{}", clip(&line));
                }
            }
            // Another shape than career paths: its leaves, one per line.
            Err(_) => {
                let mut leaves = Vec::new();
                if let Some(data) = &completion.data {
                    collect_leaves(data, String::new(), &mut leaves);
                }
                for (pointer, value) in leaves.iter().take(8) {
                    tell!(self, "{}", clip(&format!("{INDENT}{pointer} = {value}")));
                }
            }
        }
    }
}

/// Repairs among a failed call's attempts: an attempt on the same model right after an
/// invalid answer.
fn repairs_in(attempts: &[Attempt]) -> u64 {
    attempts
        .windows(2)
        .filter(|pair| {
            pair[0].outcome == AttemptOutcome::InvalidOutput
                && pair[0].provider == pair[1].provider
                && pair[0].model == pair[1].model
        })
        .count() as u64
}

/// Two lines: the answers that were invalid and the repairs made; how the requests ended.
fn rates(tally: &Tally) -> [String; 2] {
    let percent = |part: u64, whole: u64| {
        if whole == 0 {
            0.0
        } else {
            100.0 * part as f64 / whole as f64
        }
    };
    [
        format!(
            "answers: {} of {} invalid ({:.1}%), {} repaired on the same model ({:.1}% of requests)",
            tally.invalid,
            tally.answers,
            percent(tally.invalid, tally.answers),
            tally.repairs,
            percent(tally.repairs, tally.requests),
        ),
        format!(
            "requests: {} of {} answered with valid JSON, {} failed on invalid output",
            tally.answered, tally.requests, tally.failed_invalid
        ),
    ]
}

/// Every scalar of `value` with its JSON pointer, in document order.
fn collect_leaves(value: &Value, pointer: String, leaves: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                collect_leaves(child, format!("{pointer}/{key}"), leaves);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                collect_leaves(child, format!("{pointer}/{index}"), leaves);
            }
        }
        scalar => leaves.push((pointer, scalar.to_string())),
    }
}

/// `line` cut to the demo's width, with an ellipsis when cut.
fn clip(line: &str) -> String {
    if line.chars().count() <= WIDTH {
        return line.to_string();
    }
    let mut clipped: String = line.chars().take(WIDTH - 1).collect();
    clipped.push('…');
    clipped
}
