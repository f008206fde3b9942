//! `prompt-config eval` and `release --require-eval` as a user runs them, on the fast mock:
//! exit codes 0/1/2, the text report, `--json`, JUnit parsed by a real XML parser, the release
//! gate leaving a refused feature file byte for byte as it was, and bad input named.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::cli::{run, run_in, stderr, stdout};
use crate::support::eval::fast_mock_fixture;
use crate::support::fixture::{Fixture, profile};

const FEATURE: &str = "career_path_navigator";

/// A case whose answer must contain `text` (the mock's prose answers say "paths").
fn case(id: &str, text: &str) -> Value {
    json!({
        "id": id,
        "context": {"user_id": id, "variables": profile()},
        "assertions": [{"type": "contains", "value": text}],
    })
}

fn write_dataset(folder: &Path, name: &str, cases: &[Value]) -> PathBuf {
    let path = folder.join(name);
    let lines: String = cases.iter().map(|case| format!("{case}\n")).collect();
    fs::write(&path, lines).unwrap();
    path
}

fn passing(fixture: &Fixture) -> PathBuf {
    write_dataset(
        &fixture.root,
        "passing.jsonl",
        &[case("nurse-a", "paths"), case("nurse-b", "paths")],
    )
}

fn failing(fixture: &Fixture) -> PathBuf {
    write_dataset(
        &fixture.root,
        "failing.jsonl",
        &[
            case("nurse-a", "paths"),
            case("never", "this text is never in a mock answer"),
        ],
    )
}

fn eval(fixture: &Fixture, dataset: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "eval",
        FEATURE,
        "--mock",
        "--dataset",
        dataset.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(fixture, &args)
}

#[test]
fn a_passing_evaluation_exits_0_and_lists_every_case() {
    let fixture = fast_mock_fixture();
    let output = eval(&fixture, &passing(&fixture), &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("version 2.0.0: passed (2 of 2 cases)"),
        "{text}"
    );
    assert!(
        text.contains("nurse-a") && text.contains("nurse-b"),
        "{text}"
    );
    assert!(text.contains("result: passed"), "{text}");
}

#[test]
fn a_failing_case_exits_1_and_the_report_names_its_failing_assertion() {
    let fixture = fast_mock_fixture();
    let output = eval(&fixture, &failing(&fixture), &[]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(text.contains("FAIL  never"), "{text}");
    assert!(
        text.contains("run 1: /assertions/0 contains:"),
        "the failing assertion is named: {text}"
    );
    assert!(
        text.contains("result: FAILED (1 case failing: 2.0.0/never)"),
        "{text}"
    );
    assert!(
        stderr(&output).contains("error [evaluation_failed]"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn json_is_one_document_on_stdout_saying_whether_it_passed() {
    let fixture = fast_mock_fixture();
    let output = eval(&fixture, &failing(&fixture), &["--json", "--repeat", "2"]);
    assert_eq!(output.status.code(), Some(1));
    let report: Value =
        serde_json::from_str(&stdout(&output)).expect("stdout is one JSON document");
    assert_eq!(report["passed"], false);
    assert_eq!(report["repeat"], 2);
    assert_eq!(report["versions"][0]["cases"][1]["id"], "never");
    assert_eq!(
        report["versions"][0]["cases"][1]["runs"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn progress_goes_to_stderr_and_never_to_stdout() {
    let fixture = fast_mock_fixture();
    let output = eval(&fixture, &passing(&fixture), &["--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).contains("eval ["), "{}", stderr(&output));
    assert!(!stdout(&output).contains("eval ["));
}

/// Parses `path` with Python's xml.etree and prints one line per testcase:
/// `classname name failure-message-or-ok`.
fn junit_testcases(path: &Path) -> Vec<String> {
    let script = "import sys, xml.etree.ElementTree as E\n\
                  root = E.parse(sys.argv[1]).getroot()\n\
                  assert root.tag == 'testsuites', root.tag\n\
                  for s in root.findall('testsuite'):\n\
                  \x20 for c in s.findall('testcase'):\n\
                  \x20   f = c.find('failure')\n\
                  \x20   print(c.get('classname'), c.get('name'), 'ok' if f is None else f.get('message'))";
    let output = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .stderr(Stdio::piped())
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn junit_has_a_testcase_per_case_and_version_and_parses() {
    let fixture = fast_mock_fixture();
    let junit = fixture.root.join("eval.xml");
    let output = eval(
        &fixture,
        &failing(&fixture),
        &[
            "--versions",
            "2.0.0,2.1.0",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        junit_testcases(&junit),
        [
            "career_path_navigator.2.0.0 nurse-a ok",
            "career_path_navigator.2.0.0 never passed 0 of 1 runs (0%), needs 100%",
            "career_path_navigator.2.1.0 nurse-a ok",
            "career_path_navigator.2.1.0 never passed 0 of 1 runs (0%), needs 100%",
        ]
    );
    assert!(
        stdout(&output).contains("comparisons"),
        "{}",
        stdout(&output)
    );
}

#[test]
fn without_dataset_every_jsonl_file_of_the_feature_runs() {
    let fixture = fast_mock_fixture();
    let folder = fixture.config_dir().join("evals").join(FEATURE);
    // In place of the shipped dataset: two files of one case each, and a file that is not one.
    let _ = fs::remove_dir_all(&folder);
    fs::create_dir_all(&folder).unwrap();
    write_dataset(&folder, "a.jsonl", &[case("from-a", "paths")]);
    write_dataset(&folder, "b.jsonl", &[case("from-b", "paths")]);
    fs::write(folder.join("notes.txt"), "not a dataset").unwrap();
    let output = run(&fixture, &["eval", FEATURE, "--mock", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    let ids: Vec<&str> = report["versions"][0]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| case["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["from-a", "from-b"]);
}

#[test]
fn repeat_zero_is_a_usage_error_naming_repeat() {
    let fixture = fast_mock_fixture();
    let output = eval(&fixture, &passing(&fixture), &["--repeat", "0"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--repeat <N>"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_pass_rate_above_1_is_a_usage_error_naming_it() {
    let fixture = fast_mock_fixture();
    let output = eval(&fixture, &passing(&fixture), &["--min-pass-rate", "80"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--min-pass-rate <X>"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_model_not_written_provider_slash_name_is_a_usage_error() {
    let fixture = fast_mock_fixture();
    let output = eval(&fixture, &passing(&fixture), &["--model", "gpt-4o"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--model <PROVIDER/NAME>"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_model_providers_json_does_not_list_fails_with_unknown_model() {
    let fixture = fast_mock_fixture();
    let output = eval(&fixture, &passing(&fixture), &["--model", "openai/gpt-9"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("[unknown_model]"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_unknown_version_fails_naming_it_and_the_known_ones() {
    let fixture = fast_mock_fixture();
    let output = eval(&fixture, &passing(&fixture), &["--versions", "2.0.0,9.9.9"]);
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(
        error.contains("[unknown_version]") && error.contains("9.9.9"),
        "{error}"
    );
    assert!(
        error.contains("2.1.0"),
        "the known versions are listed: {error}"
    );
}

#[test]
fn an_unknown_feature_is_unknown_feature_not_a_missing_dataset() {
    let fixture = fast_mock_fixture();
    let output = run(&fixture, &["eval", "nope", "--mock"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("[unknown_feature]"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_missing_dataset_file_fails_naming_the_file() {
    let fixture = fast_mock_fixture();
    let output = eval(&fixture, &fixture.root.join("nowhere.jsonl"), &["--json"]);
    assert_eq!(output.status.code(), Some(1));
    let error: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nowhere.jsonl"),
        "{error}"
    );
}

#[test]
fn a_dataset_with_problems_names_the_file_line_and_pointer() {
    let fixture = fast_mock_fixture();
    let path = fixture.root.join("broken.jsonl");
    let good = case("fine", "paths");
    fs::write(
        &path,
        format!(
            "{good}\n{}\n",
            json!({"id": "bad", "context": {"user_id": "u", "variables": profile()},
                                        "assertions": [{"type": "contains"}]})
        ),
    )
    .unwrap();
    let output = eval(&fixture, &path, &[]);
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(error.contains("[invalid_dataset]"), "{error}");
    assert!(error.contains("broken.jsonl:2: /assertions/0"), "{error}");
}

#[cfg(unix)]
#[test]
fn a_non_utf8_feature_is_a_usage_error_naming_the_argument() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let fixture = fast_mock_fixture();
    let output = run_in(
        &fixture.root,
        &[
            OsStr::new("eval"),
            OsStr::from_bytes(b"caf\xe9"),
            OsStr::new("--mock"),
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("<FEATURE> must be UTF-8"),
        "{}",
        stderr(&output)
    );
}

/// Runs `release FEATURE 3.1.0 --require-eval DATASET --mock` (3.1.0 is the shipped draft).
fn release_with_eval(fixture: &Fixture, dataset: &Path) -> std::process::Output {
    run(
        fixture,
        &[
            "release",
            FEATURE,
            "3.1.0",
            "--require-eval",
            dataset.to_str().unwrap(),
            "--mock",
        ],
    )
}

#[test]
fn require_eval_refuses_a_failing_version_and_leaves_the_feature_file_untouched() {
    let fixture = fast_mock_fixture();
    let dataset = failing(&fixture);
    let before = fs::read(fixture.feature_path()).unwrap();
    let output = release_with_eval(&fixture, &dataset);
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(error.contains("[evaluation_failed]"), "{error}");
    assert!(error.contains("1 of 2 cases failed: never"), "{error}");
    assert!(
        error.contains("/assertions/0 contains"),
        "the reason is shown: {error}"
    );
    assert_eq!(
        fs::read(fixture.feature_path()).unwrap(),
        before,
        "byte for byte"
    );
}

#[test]
fn require_eval_json_error_lists_the_failing_cases() {
    let fixture = fast_mock_fixture();
    let dataset = failing(&fixture);
    let output = run(
        &fixture,
        &[
            "release",
            FEATURE,
            "3.1.0",
            "--require-eval",
            dataset.to_str().unwrap(),
            "--mock",
            "--json",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let error: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(error["error"]["kind"], "evaluation_failed");
    assert_eq!(error["error"]["details"]["failed_cases"], json!(["never"]));
}

#[test]
fn require_eval_releases_a_passing_version() {
    let fixture = fast_mock_fixture();
    let dataset = passing(&fixture);
    let output = release_with_eval(&fixture, &dataset);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("passed (2 of 2 cases)"),
        "{}",
        stderr(&output)
    );
    let document = fixture.read_json(&fixture.feature_path());
    assert_eq!(document["versions"]["3.1.0"]["status"], "released");
}

#[test]
fn require_eval_refuses_a_released_version_before_any_case_runs() {
    let fixture = fast_mock_fixture();
    let dataset = passing(&fixture);
    let output = run(
        &fixture,
        &[
            "release",
            FEATURE,
            "2.0.0",
            "--require-eval",
            dataset.to_str().unwrap(),
            "--mock",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(error.contains("already released and immutable"), "{error}");
    assert!(
        !error.contains("evaluation of"),
        "no evaluation ran: {error}"
    );
}

#[test]
fn release_options_of_the_evaluation_need_require_eval() {
    let fixture = fast_mock_fixture();
    let output = run(&fixture, &["release", FEATURE, "3.1.0", "--mock"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--require-eval"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn telemetry_gets_a_request_line_per_run() {
    let fixture = fast_mock_fixture();
    let log = fixture.root.join("eval-telemetry.jsonl");
    let output = eval(
        &fixture,
        &passing(&fixture),
        &["--repeat", "2", "--telemetry", log.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let requests = fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|line| line.contains(r#""event":"llm.request""#))
        .count();
    assert_eq!(requests, 4, "2 cases x 2 runs");
}

/// The lines of README's `prompt-config eval` example that do not depend on timing (cases,
/// verdicts, the comparison), with its `--junit` left out so nothing is written in the crate.
#[test]
fn the_readme_run_of_the_shipped_dataset_prints_what_the_readme_shows() {
    let readme = include_str!("../../README.md");
    let section = &readme[readme
        .find("### Running evaluations from the command line")
        .expect("the section")..];
    let block = &section[section.find("$ prompt-config eval").expect("the example")..];
    let block = &block[..block.find("```").expect("the block ends")];
    let output = run_in(
        &crate::support::fixture::project_root(),
        &[
            "eval",
            FEATURE,
            "--versions",
            "2.0.0,2.2.0",
            "--concurrency",
            "8",
            "--mock",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let printed = stdout(&output);
    let stable = block.lines().filter(|line| {
        line.starts_with("  ok ")
            || line.starts_with("version ")
            || line.starts_with("result: ")
            || line.contains(" against ")
            || line.contains("skipped")
    });
    let mut checked = 0;
    for line in stable {
        assert!(
            printed.lines().any(|printed| printed == line),
            "{line:?} not in\n{printed}"
        );
        checked += 1;
    }
    assert!(checked >= 8, "the README example lost its lines");
}

// H6: the trial's findings on the command line.

#[test]
fn a_junit_path_that_cannot_be_written_fails_before_any_case_runs() {
    let fixture = fast_mock_fixture();
    let junit = fixture.root.join("no-such-folder").join("eval.xml");
    let log = fixture.root.join("telemetry.jsonl");
    let output = eval(
        &fixture,
        &passing(&fixture),
        &[
            "--junit",
            junit.to_str().unwrap(),
            "--telemetry",
            log.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    assert!(error.contains("error [io]: --junit"), "{error}");
    assert!(!error.contains("eval ["), "no run started: {error}");
    let calls = fs::read_to_string(&log).unwrap_or_default();
    assert!(!calls.contains("llm.request"), "{calls}");
}

#[test]
fn an_existing_junit_file_is_replaced_whole_by_the_report() {
    let fixture = fast_mock_fixture();
    let junit = fixture.root.join("eval.xml");
    fs::write(&junit, "x".repeat(100_000)).unwrap();
    let output = eval(
        &fixture,
        &passing(&fixture),
        &["--junit", junit.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        junit_testcases(&junit),
        [
            "career_path_navigator.2.0.0 nurse-a ok",
            "career_path_navigator.2.0.0 nurse-b ok",
        ]
    );
}

#[test]
fn a_junit_file_created_for_an_evaluation_that_cannot_run_is_removed() {
    let fixture = fast_mock_fixture();
    let junit = fixture.root.join("eval.xml");
    let output = eval(
        &fixture,
        &passing(&fixture),
        &["--versions", "9.9.9", "--junit", junit.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("[unknown_version]"));
    assert!(!junit.exists());
}

#[test]
fn dataset_problems_are_printed_one_per_line_under_their_count() {
    let fixture = fast_mock_fixture();
    let path = fixture.root.join("broken.jsonl");
    fs::write(
        &path,
        format!(
            "{}\n{{not json\n{}\n",
            json!({"id": "a", "context": {"user_id": "u"}, "assertions": [{"type": "contains"}]}),
            json!({"id": "b", "context": {"user_id": "u"}, "assertions": []}),
        ),
    )
    .unwrap();
    let output = eval(&fixture, &path, &[]);
    assert_eq!(output.status.code(), Some(1));
    let error = stderr(&output);
    let lines: Vec<&str> = error.lines().collect();
    assert_eq!(lines[0], "error [invalid_dataset]: 3 problems:", "{error}");
    let file = path.display().to_string();
    for (line, start) in lines[1..].iter().zip([
        format!("  {file}:1: /assertions/0"),
        format!("  {file}:2: not JSON"),
        format!("  {file}:3: /assertions: a case must assert something"),
    ]) {
        assert!(line.starts_with(&start), "{line:?} should start {start:?}");
    }
    assert_eq!(lines.len(), 4, "{error}");
    let output = eval(&fixture, &path, &["--json"]);
    let error: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        error["error"]["details"]["problems"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "{error}"
    );
}

#[test]
fn versions_are_trimmed_around_the_commas() {
    let fixture = fast_mock_fixture();
    let output = eval(
        &fixture,
        &passing(&fixture),
        &["--versions", " 2.0.0, 2.1.0 ", "--json"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["versions"][0]["version"], "2.0.0");
    assert_eq!(report["versions"][1]["version"], "2.1.0");
}

#[test]
fn an_empty_version_item_is_a_usage_error() {
    let fixture = fast_mock_fixture();
    for versions in [",", "2.0.0,,2.1.0", " "] {
        let output = eval(&fixture, &passing(&fixture), &["--versions", versions]);
        assert_eq!(output.status.code(), Some(2), "{versions:?}");
        let error = stderr(&output);
        assert!(
            error.contains("--versions") && error.contains("an empty version"),
            "{versions:?}: {error}"
        );
    }
}

#[test]
fn a_case_below_its_threshold_says_so_and_the_json_case_carries_the_threshold() {
    let fixture = fast_mock_fixture();
    let dataset = write_dataset(
        &fixture.root,
        "threshold.jsonl",
        &[json!({
            "id": "half",
            "context": {"user_id": "u", "variables": profile()},
            "assertions": [
                {"type": "contains", "value": "paths"},
                {"type": "contains", "value": "zzz never there"},
            ],
            "threshold": 0.9,
        })],
    );
    let output = eval(&fixture, &dataset, &[]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(
        text.contains("run 1: score 0.50 below the case's threshold 0.90"),
        "{text}"
    );
    assert!(
        text.contains("run 1: /assertions/1 contains: did not find"),
        "{text}"
    );
    let output = eval(&fixture, &dataset, &["--json"]);
    let report: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(report["versions"][0]["cases"][0]["threshold"], 0.9);
}

#[test]
fn a_weight_zero_assertion_is_not_listed_among_the_reasons() {
    let fixture = fast_mock_fixture();
    let dataset = write_dataset(
        &fixture.root,
        "weights.jsonl",
        &[json!({
            "id": "informational",
            "context": {"user_id": "u", "variables": profile()},
            "assertions": [
                {"type": "contains", "value": "first missing text"},
                {"type": "contains", "value": "second missing text", "weight": 0},
            ],
        })],
    );
    let output = eval(&fixture, &dataset, &[]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(text.contains("/assertions/0 contains"), "{text}");
    assert!(!text.contains("/assertions/1"), "{text}");
}

#[test]
fn a_call_errors_attempts_are_indented_under_its_case() {
    // No --mock and no API key: every attempt of the chain fails, one line each.
    let fixture = fast_mock_fixture();
    let dataset = passing(&fixture);
    let output = run(
        &fixture,
        &["eval", FEATURE, "--dataset", dataset.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    let error = lines
        .iter()
        .position(|line| line.starts_with("         run 1: error [missing_api_key]"))
        .unwrap_or_else(|| panic!("no call error under the case:\n{text}"));
    assert!(
        lines[error + 1].starts_with("           attempt 1 "),
        "{text}"
    );
}
