//! The shipped dataset, `config/evals/career_path_navigator/`: it loads, covers what the issue
//! asks (at least 20 cases; sectors, degrees, edge cases; prose and JSON versions), and passes
//! on the mock provider, with the fast test mocks and with the shipped mock settings (whose
//! invalid answers are repaired).

use std::collections::BTreeSet;
use std::sync::Arc;

use prompt_config::Engine;
use prompt_config::client::{ManualClock, SeededRandom};
use prompt_config::eval::{Dataset, EvalOptions, EvalReport, GradeOutcome};

use crate::support::eval::{fast_mock_fixture, mock_engine, mock_options};
use crate::support::fixture::{Fixture, project_root};

const FEATURE: &str = "career_path_navigator";
const PROSE: [&str; 2] = ["2.0.0", "2.1.0"];
const JSON: &str = "2.2.0";

fn shipped() -> Dataset {
    let files = Dataset::feature_files(&project_root().join("config"), FEATURE).unwrap();
    Dataset::load_all(&files).unwrap()
}

/// Every failing run of the report, with its case, version and failed assertions, for a
/// readable assertion message.
fn failures(report: &EvalReport) -> Vec<String> {
    let mut found = Vec::new();
    for version in &report.versions {
        for case in version.cases.iter().filter(|case| !case.passed) {
            for run in case.runs.iter().filter(|run| !run.passed) {
                let failed: Vec<String> = run
                    .assertions
                    .iter()
                    .filter(|result| result.outcome == GradeOutcome::Fail)
                    .map(|result| format!("#{} {}: {}", result.index, result.kind, result.reason))
                    .collect();
                found.push(format!(
                    "{} {} repeat {}: {:?} {failed:?}",
                    version.version, case.id, run.repeat, run.error
                ));
            }
        }
    }
    found
}

#[test]
fn the_shipped_dataset_has_at_least_twenty_cases_across_sectors_and_degrees() {
    let dataset = shipped();
    assert_eq!(dataset.name, "smoke");
    assert!(dataset.cases.len() >= 20, "{} cases", dataset.cases.len());
    let attribute = |name: &str| -> BTreeSet<String> {
        dataset
            .cases
            .iter()
            .filter_map(|case| case.context.attributes().get(name))
            .filter_map(|value| value.as_str().map(str::to_string))
            .collect()
    };
    assert!(attribute("sector").len() >= 10, "{:?}", attribute("sector"));
    assert!(attribute("degree").len() >= 10, "{:?}", attribute("degree"));
}

#[test]
fn the_shipped_dataset_has_the_edge_cases_the_issue_names() {
    let dataset = shipped();
    let variables = |case: &prompt_config::eval::Case| case.context.variables_value().clone();
    assert!(
        dataset.cases.iter().any(|case| variables(case)["skills"]
            .as_array()
            .is_some_and(Vec::is_empty)),
        "a case with no skills"
    );
    assert!(
        dataset.cases.iter().any(|case| variables(case)["goals"]
            .as_str()
            .is_some_and(|goal| goal.chars().count() > 2000)),
        "a very long goal"
    );
    assert!(
        dataset
            .cases
            .iter()
            .any(|case| !variables(case)["current_role"]
                .as_str()
                .unwrap_or("")
                .is_ascii()),
        "a non-ASCII profile"
    );
    assert!(
        dataset
            .cases
            .iter()
            .any(|case| !case.context.messages().is_empty()),
        "a case with history"
    );
    assert!(
        dataset
            .cases
            .iter()
            .any(|case| variables(case).get("years_experience").is_none()),
        "a case without the optional years_experience"
    );
}

#[test]
fn every_shipped_case_asserts_on_the_prose_and_the_json_versions() {
    for case in &shipped().cases {
        let only = |version: &str| {
            case.assertions.iter().any(|assertion| {
                assertion.applies_to(version)
                    && !assertion.versions.is_empty()
                    && !assertion.is_judge()
            })
        };
        assert!(
            PROSE.iter().all(|version| only(version)),
            "{}: prose",
            case.id
        );
        let json_kinds: BTreeSet<&str> = case
            .assertions
            .iter()
            .filter(|assertion| assertion.versions == [JSON])
            .map(|assertion| assertion.type_name())
            .collect();
        assert!(
            json_kinds.contains("json_schema") && json_kinds.contains("json_path"),
            "{}: {json_kinds:?}",
            case.id
        );
    }
}

#[test]
fn the_shipped_dataset_passes_on_the_mock_for_prose_and_json_versions() {
    let fixture = fast_mock_fixture();
    let engine = mock_engine(&fixture);
    let options = EvalOptions::default()
        .versions(["2.0.0", "2.1.0", JSON])
        .concurrency(4);
    let report = engine.evaluate(FEATURE, &shipped(), &options).unwrap();
    assert!(report.passed, "{:#?}", failures(&report));
    for version in &report.versions {
        assert_eq!(
            version.cases_passed, version.cases_total,
            "{}",
            version.version
        );
        assert_eq!(version.errors, 0);
        // Only the one judged case's verdict is skipped (the mock provider makes it up).
        assert_eq!(version.skipped_assertions, 1, "{}", version.version);
    }
}

#[test]
fn the_shipped_dataset_passes_with_the_shipped_mock_settings_and_their_repairs() {
    // The configuration as shipped: mock latencies and one structured answer in ten invalid,
    // on a manual clock (no real sleeping) and a seeded random (the same repairs every run).
    let fixture = Fixture::new();
    let options = mock_options(&fixture)
        .with_clock(Arc::new(ManualClock::new(chrono::Utc::now())))
        .with_random(Arc::new(SeededRandom::new(14)));
    let engine = Engine::open(options).unwrap();
    let evaluation = EvalOptions::default()
        .versions(["2.0.0", JSON])
        .repeat(3)
        .concurrency(1);
    let report = engine.evaluate(FEATURE, &shipped(), &evaluation).unwrap();
    assert!(report.passed, "{:#?}", failures(&report));
    let json = report
        .versions
        .iter()
        .find(|version| version.version == JSON)
        .unwrap();
    let repaired = json
        .cases
        .iter()
        .flat_map(|case| &case.runs)
        .filter(|run| run.repairs > 0)
        .count();
    assert!(
        repaired > 0,
        "no answer needed a repair: the test proves nothing"
    );
    assert!(json.invalid_output_rate > 0.0);
}
