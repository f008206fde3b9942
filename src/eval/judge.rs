//! The judge: a `judge` assertion asks a judge feature (a prompt of our own, versioned like
//! any feature's) to grade an answer against a rubric, through the structured-output path.

use crate::Engine;
use crate::client::Completion;

use super::{Assertion, Grade};

/// Grades `completion` with the judge model `assertion` names; returns the grade and what the
/// judge's call cost (USD).
pub(crate) fn grade(
    _engine: &Engine,
    _assertion: &Assertion,
    _completion: &Completion,
) -> (Grade, f64) {
    // Replaced by the judge work (issue 14, helper H2) before this lands in a release.
    (Grade::skipped("the judge is not wired yet"), 0.0)
}
