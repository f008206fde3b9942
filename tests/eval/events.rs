//! The telemetry of an evaluation: one `eval.case` line per case and version and one `eval.run`
//! line per version in the engine's telemetry file, stamped by the engine's clock, joined to
//! their runs' `llm.request` lines by request id, with ids, counts and rates but no answer
//! text; and `stats` (the library and the CLI) reporting them apart from the requests.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use prompt_config::client::ManualClock;
use prompt_config::eval::{Assertion, AssertionKind, Case, Dataset, EvalOptions, EvalReport};
use prompt_config::telemetry::stats::{StatsOptions, analyze};
use prompt_config::{Context, Engine};
use serde_json::Value;

use crate::support::cli::{run_in, stdout};
use crate::support::eval::{fast_mock_fixture, mock_options};
use crate::support::fixture::{Fixture, profile};

fn contains(text: &str) -> Assertion {
    Assertion::new(AssertionKind::Contains {
        value: text.to_string(),
        case_sensitive: true,
    })
}

/// Three cases: two pass on every version, one (`never`) fails everywhere.
fn dataset() -> Dataset {
    let case = |id: &str, assertion: Assertion| {
        Case::new(
            id,
            Context::new(id).with_variables(profile()),
            vec![assertion],
        )
    };
    Dataset::new(
        "events",
        vec![
            case("first", contains("paths")),
            case("second", contains("suggested")),
            case("never", contains("text no mock answer contains")),
        ],
    )
}

/// An engine over the fast mock writing telemetry to `path`, its clock fixed at noon.
fn engine(fixture: &Fixture, path: &Path) -> Engine {
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap(),
    ));
    Engine::open(mock_options(fixture).with_clock(clock).with_telemetry(path)).unwrap()
}

/// Evaluates 2.0.0 and 2.1.0, twice per case, and closes the engine (every line written).
fn evaluate_into(fixture: &Fixture, path: &Path) -> EvalReport {
    let engine = engine(fixture, path);
    let report = engine
        .evaluate(
            "career_path_navigator",
            &dataset(),
            &EvalOptions::default()
                .versions(["2.0.0", "2.1.0"])
                .repeat(2)
                .min_pass_rate(0.6),
        )
        .unwrap();
    engine.close();
    report
}

fn log(fixture: &Fixture) -> PathBuf {
    fixture.root.join("telemetry.jsonl")
}

fn lines(path: &Path) -> Vec<Value> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("every line is JSON"))
        .collect()
}

fn events<'a>(lines: &'a [Value], event: &str) -> Vec<&'a Value> {
    lines.iter().filter(|line| line["event"] == event).collect()
}

#[test]
fn an_evaluation_writes_a_case_line_per_case_and_version_and_a_run_line_per_version() {
    let fixture = fast_mock_fixture();
    let path = log(&fixture);
    evaluate_into(&fixture, &path);
    let lines = lines(&path);
    // 3 cases x 2 versions; 2 versions; 3 cases x 2 versions x 2 repeats calls.
    assert_eq!(events(&lines, "eval.case").len(), 6);
    assert_eq!(events(&lines, "eval.run").len(), 2);
    assert_eq!(events(&lines, "llm.request").len(), 12);
}

#[test]
fn a_case_line_carries_its_counts_and_the_request_ids_of_its_runs() {
    let fixture = fast_mock_fixture();
    let path = log(&fixture);
    let report = evaluate_into(&fixture, &path);
    let lines = lines(&path);
    let cases = events(&lines, "eval.case");
    let never = cases
        .iter()
        .find(|line| {
            line["prompt_config.eval.case_id"] == "never"
                && line["gen_ai.prompt.version"] == "2.1.0"
        })
        .expect("a line for case never on 2.1.0");
    assert_eq!(never["schema_version"], 1);
    assert_eq!(never["request_id"], "");
    assert_eq!(never["prompt_config.eval.run_id"], report.run_id.as_str());
    assert_eq!(never["gen_ai.prompt.name"], "career_path_navigator");
    assert_eq!(never["prompt_config.eval.dataset"], "events");
    assert_eq!(never["prompt_config.eval.repeats"], 2);
    assert_eq!(never["prompt_config.eval.passes"], 0);
    assert_eq!(never["prompt_config.eval.pass_rate"], 0.0);
    assert_eq!(never["prompt_config.eval.required_pass_rate"], 1.0);
    assert_eq!(never["prompt_config.eval.passed"], false);
    assert_eq!(never["prompt_config.eval.judged"], false);
    assert_eq!(never["prompt_config.eval.mean_score"], 0.0);
    assert_eq!(never["prompt_config.eval.errors"], 0);
    let expected = &report.versions[1].cases[2];
    let cost: f64 = expected.runs.iter().map(|run| run.cost_usd).sum();
    assert_eq!(never["prompt_config.eval.cost_usd"], cost);
    assert_eq!(never["prompt_config.eval.judge_cost_usd"], 0.0);
    let ids: Vec<&str> = never["prompt_config.eval.request_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    for id in ids {
        let request = events(&lines, "llm.request")
            .into_iter()
            .find(|line| line["request_id"] == id)
            .unwrap_or_else(|| panic!("no llm.request line {id}"));
        assert_eq!(request["gen_ai.prompt.version"], "2.1.0");
        assert_eq!(request["prompt_config.source"], "pinned");
    }
}

#[test]
fn every_request_and_resolve_line_of_an_evaluation_carries_its_run_id() {
    let fixture = fast_mock_fixture();
    let path = log(&fixture);
    let report = evaluate_into(&fixture, &path);
    let lines = lines(&path);
    let marked: Vec<&Value> = lines
        .iter()
        .filter(|line| line["event"] == "llm.request" || line["event"] == "prompt.resolve")
        .collect();
    assert!(!marked.is_empty());
    for line in marked {
        assert_eq!(
            line["prompt_config.eval.run_id"],
            report.run_id.as_str(),
            "{line}"
        );
    }
}

#[test]
fn a_users_request_carries_no_evaluation_run_id() {
    let fixture = fast_mock_fixture();
    let path = log(&fixture);
    let engine = engine(&fixture, &path);
    engine
        .complete(
            "career_path_navigator",
            &crate::support::fixture::context("u1"),
        )
        .unwrap();
    engine.close();
    let lines = lines(&path);
    let request = events(&lines, "llm.request")[0];
    assert!(
        request.get("prompt_config.eval.run_id").is_none(),
        "{request}"
    );
}

#[test]
fn every_run_id_of_the_case_lines_names_a_distinct_request() {
    let fixture = fast_mock_fixture();
    let path = log(&fixture);
    evaluate_into(&fixture, &path);
    let lines = lines(&path);
    let requests: HashSet<&str> = events(&lines, "llm.request")
        .iter()
        .map(|line| line["request_id"].as_str().unwrap())
        .collect();
    let joined: Vec<&str> = events(&lines, "eval.case")
        .iter()
        .flat_map(|line| line["prompt_config.eval.request_ids"].as_array().unwrap())
        .map(|id| id.as_str().unwrap())
        .collect();
    assert_eq!(joined.len(), 12);
    assert_eq!(joined.iter().copied().collect::<HashSet<_>>(), requests);
}

#[test]
fn a_run_line_carries_the_version_figures_and_after_the_first_its_comparison() {
    let fixture = fast_mock_fixture();
    let path = log(&fixture);
    let report = evaluate_into(&fixture, &path);
    let lines = lines(&path);
    let runs = events(&lines, "eval.run");
    let (first, second) = (runs[0], runs[1]);
    assert_eq!(first["gen_ai.prompt.version"], "2.0.0");
    assert_eq!(second["gen_ai.prompt.version"], "2.1.0");
    for line in [first, second] {
        assert_eq!(line["prompt_config.eval.run_id"], report.run_id.as_str());
        assert_eq!(line["gen_ai.prompt.name"], "career_path_navigator");
        assert_eq!(line["prompt_config.eval.dataset"], "events");
        assert_eq!(line["gen_ai.provider.name"], "openai");
        assert_eq!(line["gen_ai.request.model"], "gpt-4o-mini");
        assert_eq!(line["prompt_config.eval.model_override"], false);
        assert_eq!(line["prompt_config.eval.mock"], true);
        assert_eq!(line["prompt_config.eval.repeat"], 2);
        assert_eq!(line["prompt_config.eval.cases_total"], 3);
        assert_eq!(line["prompt_config.eval.cases_passed"], 2);
        assert_eq!(line["prompt_config.eval.pass_rate"], 2.0 / 3.0);
        assert_eq!(line["prompt_config.eval.min_pass_rate"], 0.6);
        assert_eq!(line["prompt_config.eval.passed"], true);
        assert_eq!(line["prompt_config.eval.invalid_output_rate"], 0.0);
        assert_eq!(line["prompt_config.eval.errors"], 0);
        assert!(line["prompt_config.eval.latency_p50_ms"].is_number());
        assert!(line["prompt_config.eval.latency_p95_ms"].is_number());
    }
    assert_eq!(
        first["prompt_config.eval.cost_usd"],
        report.versions[0].cost_usd
    );
    assert!(first.get("prompt_config.eval.baseline_version").is_none());
    assert!(first.get("prompt_config.eval.p_value").is_none());
    assert_eq!(second["prompt_config.eval.baseline_version"], "2.0.0");
    assert_eq!(second["prompt_config.eval.p_value"], 1.0);
    assert_eq!(
        second["prompt_config.eval.verdict"],
        "no_significant_difference"
    );
    assert_eq!(second["prompt_config.eval.pass_rate_difference"], 0.0);
    assert_eq!(second["prompt_config.eval.baseline_only"], 0);
    assert_eq!(second["prompt_config.eval.candidate_only"], 0);
}

#[test]
fn evaluation_lines_are_stamped_by_the_engine_clock() {
    let fixture = fast_mock_fixture();
    let path = log(&fixture);
    evaluate_into(&fixture, &path);
    let lines = lines(&path);
    for line in events(&lines, "eval.case")
        .into_iter()
        .chain(events(&lines, "eval.run"))
    {
        assert_eq!(line["timestamp"], "2026-11-30T12:00:00.000Z");
    }
}

#[test]
fn evaluation_lines_carry_no_answer_text() {
    let fixture = fast_mock_fixture();
    let path = log(&fixture);
    let report = evaluate_into(&fixture, &path);
    let answer = report.versions[0].cases[0].runs[0].output.clone().unwrap();
    let text = fs::read_to_string(&path).unwrap();
    for line in text.lines().filter(|line| line.contains("\"eval.")) {
        assert!(!line.contains("[mock"), "{line}");
        assert!(!line.contains(&answer), "{line}");
        assert!(!line.contains("Registered Nurse"), "{line}");
        assert!(!line.contains("gen_ai.output.messages"), "{line}");
    }
}

#[test]
fn stats_reports_the_latest_evaluation_of_each_version_apart_from_requests() {
    let fixture = fast_mock_fixture();
    let path = log(&fixture);
    evaluate_into(&fixture, &path);
    let latest = evaluate_into(&fixture, &path);
    let report = analyze(std::slice::from_ref(&path), &StatsOptions::default()).unwrap();
    // The 24 calls are the evaluations' own requests, counted apart from users' requests;
    // the 16 evaluation lines are read but neither requests nor skipped.
    assert_eq!(report.requests, 0);
    assert_eq!(report.evaluation_requests, 24);
    assert_eq!(report.lines_skipped, 0);
    assert_eq!(report.evaluations.len(), 2);
    let candidate = report
        .evaluation("career_path_navigator", "2.1.0")
        .expect("2.1.0 was evaluated");
    assert_eq!(candidate.runs, 2);
    assert_eq!(candidate.run_id, latest.run_id);
    assert_eq!(candidate.dataset, "events");
    assert_eq!((candidate.cases_passed, candidate.cases_total), (2, 3));
    assert_eq!(candidate.pass_rate, 2.0 / 3.0);
    assert!(candidate.passed);
    assert!(candidate.mock);
    assert_eq!(candidate.cost_usd, latest.versions[1].cost_usd);
    assert_eq!(candidate.baseline_version.as_deref(), Some("2.0.0"));
    assert_eq!(candidate.p_value, Some(1.0));
    assert_eq!(
        candidate.verdict.as_deref(),
        Some("no_significant_difference")
    );
    let baseline = report.evaluation("career_path_navigator", "2.0.0").unwrap();
    assert_eq!(baseline.baseline_version, None);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["evaluations"][1]["version"], "2.1.0");
    assert_eq!(json["evaluations"][1]["runs"], 2);
}

#[test]
fn stats_without_evaluations_has_no_evaluations_field() {
    let fixture = fast_mock_fixture();
    let path = log(&fixture);
    let engine = engine(&fixture, &path);
    engine
        .complete(
            "career_path_navigator",
            &Context::new("u").with_variables(profile()),
        )
        .unwrap();
    engine.close();
    let report = analyze(&[path], &StatsOptions::default()).unwrap();
    assert!(report.evaluations.is_empty());
    assert!(
        serde_json::to_value(&report)
            .unwrap()
            .get("evaluations")
            .is_none()
    );
    assert!(!report.to_string().contains("evaluations"));
}

#[test]
fn the_stats_command_prints_an_evaluations_table() {
    let fixture = fast_mock_fixture();
    let path = log(&fixture);
    let report = evaluate_into(&fixture, &path);
    let output = run_in(&fixture.root, &["stats", path.to_str().unwrap()]);
    assert!(output.status.success(), "{output:?}");
    let text = stdout(&output);
    let section = text
        .split("evaluations (latest run per feature and version")
        .nth(1)
        .unwrap_or_else(|| panic!("no evaluations section in:\n{text}"));
    let row = section
        .lines()
        .find(|line| line.contains("2.1.0"))
        .unwrap_or_else(|| panic!("no 2.1.0 row in:\n{section}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cells[..9],
        [
            "career_path_navigator",
            "2.1.0",
            "events",
            "1",
            "3",
            "2",
            "66.7%",
            "60.0%",
            "pass"
        ],
        "{row}"
    );
    assert!(row.contains("2.0.0") && row.contains("p = 1.000"), "{row}");
    assert!(row.contains("no significant difference"), "{row}");
    assert!(report.versions[1].passed);
}
