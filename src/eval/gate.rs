//! The release gate: whether an evaluation lets a version be released. `prompt-config release
//! --require-eval` asks it after evaluating the version, and releases only on `Ok`; a binding
//! that offers the same gate runs [`Engine::evaluate`](crate::Engine::evaluate), asks
//! [`EvalReport::release_gate`] and then `prompt_config::edit::release_version`, so the rule
//! (every case of that version passes its pass rate, and the version its minimum) is one rule.

use crate::error::EvalError;

use super::EvalReport;

impl EvalReport {
    /// `Ok` when the report ran `version` and that version passed; otherwise
    /// `EvalError::Failed` (kind `evaluation_failed`) naming the cases that missed their pass
    /// rate, out of how many ran. A version the report did not run fails with no case named.
    pub fn release_gate(&self, version: &str) -> Result<(), EvalError> {
        let ran = self
            .versions
            .iter()
            .find(|result| result.version == version);
        match ran {
            Some(result) if result.passed => Ok(()),
            _ => Err(EvalError::Failed {
                feature: self.feature.clone(),
                version: version.to_string(),
                failed_cases: ran
                    .map(|result| {
                        result
                            .cases
                            .iter()
                            .filter(|case| !case.passed)
                            .map(|case| case.id.clone())
                            .collect()
                    })
                    .unwrap_or_default(),
                total_cases: ran.map_or(0, |result| result.cases_total),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::GradeOutcome;
    use super::super::test_reports::{assertion, case, report, run};
    use crate::error::EvalError;

    #[test]
    fn a_passing_version_opens_the_gate() {
        let report = report(vec![case("a", vec![run(1, true, vec![])])]);
        assert_eq!(report.release_gate("2.0.0"), Ok(()));
    }

    #[test]
    fn a_failing_version_is_refused_naming_its_failing_cases() {
        let failing = vec![assertion(0, GradeOutcome::Fail, "did not find \"paths\"")];
        let report = report(vec![
            case("a", vec![run(1, true, vec![])]),
            case("b", vec![run(1, false, failing)]),
        ]);
        let Err(EvalError::Failed {
            version,
            failed_cases,
            total_cases,
            ..
        }) = report.release_gate("2.0.0")
        else {
            panic!("the gate stays shut");
        };
        assert_eq!((version.as_str(), total_cases), ("2.0.0", 2));
        assert_eq!(failed_cases, ["b"]);
    }

    #[test]
    fn a_version_the_report_did_not_run_is_refused() {
        let report = report(vec![case("a", vec![run(1, true, vec![])])]);
        let refused = report.release_gate("3.1.0").unwrap_err();
        assert_eq!(refused.kind(), crate::ErrorKind::EvaluationFailed);
    }
}
