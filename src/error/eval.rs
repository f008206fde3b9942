//! The errors of evaluation (`crate::eval`): a dataset that cannot be used, options that make
//! no sense, and a release refused because its evaluation failed. They live here, beside the
//! crate's `Error` that wraps them, because `eval` sits above the engine and `Error` below it.

use serde_json::{Value, json};

/// One problem of a dataset file: `file:line: /pointer: message` (line 0 for the file as a
/// whole, an empty pointer for the line as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetProblem {
    /// The dataset file as given (or the dataset's name when it was parsed from memory).
    pub file: String,
    /// The 1-based line of the case at fault; 0 when the problem is the file's.
    pub line: usize,
    /// A JSON pointer into the case on that line (`/assertions/2/value`); empty for the line.
    pub pointer: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl std::fmt::Display for DatasetProblem {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(formatter, "{}: ", self.file)?;
        } else {
            write!(formatter, "{}:{}: ", self.file, self.line)?;
        }
        if !self.pointer.is_empty() {
            write!(formatter, "{}: ", self.pointer)?;
        }
        formatter.write_str(&self.message)
    }
}

/// Why an evaluation could not run, or a release that required one was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// The dataset has problems; every one is listed (`invalid_dataset`). Displayed as
    /// `N problems:` and then each problem on a line of its own, indented two spaces (as a
    /// configuration's problems are): messages may hold `; ` themselves, so one line per
    /// problem is what keeps a list a person or a script can split.
    #[error("{}", list(.problems))]
    InvalidDataset {
        /// Each problem, `file:line: /pointer: message`.
        problems: Vec<DatasetProblem>,
    },
    /// An option of the evaluation cannot be used (`invalid_argument`): `repeat` 0,
    /// `concurrency` 0, a pass rate outside 0..=1, a model not written `provider/name`.
    #[error("{argument}: {reason}")]
    InvalidOption {
        /// The option at fault (`repeat`, `concurrency`, `model`, ...).
        argument: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A release that requires a passing evaluation was refused (`evaluation_failed`).
    #[error(
        "{feature} {version} failed its evaluation ({} of {total_cases} cases failed: {}); the release was not made",
        .failed_cases.len(),
        .failed_cases.join(", ")
    )]
    Failed {
        /// The feature.
        feature: String,
        /// The version that was to be released.
        version: String,
        /// The ids of the cases that missed their pass rate.
        failed_cases: Vec<String>,
        /// How many cases ran.
        total_cases: usize,
    },
}

fn list(problems: &[DatasetProblem]) -> String {
    let mut text = format!(
        "{} problem{}:",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for problem in problems {
        text.push_str("\n  ");
        text.push_str(&problem.to_string());
    }
    text
}

impl EvalError {
    /// `invalid_dataset`, `invalid_argument` or `evaluation_failed`.
    pub fn kind(&self) -> super::ErrorKind {
        match self {
            EvalError::InvalidDataset { .. } => super::ErrorKind::InvalidDataset,
            EvalError::InvalidOption { .. } => super::ErrorKind::InvalidArgument,
            EvalError::Failed { .. } => super::ErrorKind::EvaluationFailed,
        }
    }

    /// The problems, the argument, or the failing cases, as JSON.
    pub fn details(&self) -> Value {
        match self {
            EvalError::InvalidDataset { problems } => json!({
                "problems": problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }),
            EvalError::InvalidOption { argument, reason } => {
                json!({ "argument": argument, "reason": reason })
            }
            EvalError::Failed {
                feature,
                version,
                failed_cases,
                total_cases,
            } => json!({
                "feature": feature,
                "version": version,
                "failed_cases": failed_cases,
                "total_cases": total_cases,
            }),
        }
    }
}
