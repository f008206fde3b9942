//! Datasets: JSONL files of cases, one per line (`config/evals/<feature>/*.jsonl`, or a path
//! given on the command line), checked against `config/schema/eval_dataset_schema.json` and
//! compiled (regexes, JSON paths, schemas) once, with every problem reported as
//! `file:line: /pointer: message`.

use crate::resolve::Context;

use super::Assertion;

/// The cases of one or more dataset files, in file then line order.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Dataset {
    /// What the dataset is called in reports: the file stem (`smoke`), or the stems joined
    /// with `+` when several files were loaded together.
    pub name: String,
    /// The cases; ids are unique across the dataset.
    pub cases: Vec<Case>,
}

/// One case: who asks what, and what the answer must satisfy.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Case {
    /// The case's id, unique within the dataset (`tech-bsc-3-skills`).
    pub id: String,
    /// What the case is about, for reports.
    pub description: Option<String>,
    /// Where the case was read (`config/evals/career_path_navigator/smoke.jsonl`, line 4).
    pub file: String,
    /// The 1-based line.
    pub line: usize,
    /// The context sent (subject, attributes, variables, history); never a pinned version:
    /// the evaluation pins each version it runs.
    pub context: Context,
    /// What the answer must satisfy.
    pub assertions: Vec<Assertion>,
    /// The share of repeats that must pass for the case to pass (0..=1); `None` takes the
    /// options' rate, else [`DEFAULT_CASE_PASS_RATE`](super::DEFAULT_CASE_PASS_RATE) or, with
    /// a judge assertion, [`DEFAULT_JUDGED_CASE_PASS_RATE`](super::DEFAULT_JUDGED_CASE_PASS_RATE).
    pub pass_rate: Option<f64>,
    /// With a threshold, a repeat passes when the weighted mean score of its assertions reaches
    /// it (0..=1); without one, when every assertion of non-zero weight passes.
    pub threshold: Option<f64>,
    /// Free labels (`edge`, `healthcare`) for reports and filters.
    pub tags: Vec<String>,
}

impl Dataset {
    /// A dataset of cases built in code.
    pub fn new(name: impl Into<String>, cases: Vec<Case>) -> Dataset {
        Dataset {
            name: name.into(),
            cases,
        }
    }
}

impl Case {
    /// A case built in code (no file; line 0), with no pass rate, threshold or tags.
    pub fn new(id: impl Into<String>, context: Context, assertions: Vec<Assertion>) -> Case {
        Case {
            id: id.into(),
            description: None,
            file: String::new(),
            line: 0,
            context,
            assertions,
            pass_rate: None,
            threshold: None,
            tags: Vec::new(),
        }
    }

    /// Whether any assertion of this case that applies to `version` is a judge.
    pub fn is_judged(&self, version: &str) -> bool {
        self.assertions
            .iter()
            .any(|assertion| assertion.applies_to(version) && assertion.is_judge())
    }
}
