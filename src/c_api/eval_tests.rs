//! `pc_evaluate` called as C calls it: datasets from files, inline cases and the
//! feature's own folder; options reaching the report; a report that did not pass still
//! `PC_OK`; and every bad input (NULL, non-UTF-8, bad JSON, an unknown key, two sources,
//! `repeat` 0, an invalid case, unknown feature, version and model) as its status with a
//! well-formed error JSON, never a panic. Property tests push arbitrary request JSON through.
//!
//! The engine is a one-feature configuration (`ask`, version 1.0.0) on a mock provider that
//! answers at once, so a run costs microseconds.

use std::ffi::{CString, c_char};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::boundary::test_hook;
use super::properties::awkward_text;
use super::stream_tests::config_with_provider;
use super::tests::{take_error, take_json};
use super::*;

const FEATURE: &std::ffi::CStr = c"ask";

/// A configuration whose only provider is a mock with no latency and no invalid answers.
fn fast_config() -> PathBuf {
    config_with_provider(json!({
        "kind": "mock",
        "models": {"m": {"input_per_million": 1.0, "output_per_million": 2.0, "context_window": 8000}},
        "mock": {
            "latency_ms": 0, "jitter_ms": 0, "stream_chunk_chars": 12, "stream_delay_ms": 0,
            "invalid_output_share": 0.0
        }
    }))
}

/// A mock-mode engine over `root`'s `config/` and `prompts/`.
fn open_at(root: &Path) -> *mut pc_engine {
    let options = CString::new(
        json!({
            "config_dir": root.join("config"),
            "prompts_dir": root.join("prompts"),
            "mock": true,
        })
        .to_string(),
    )
    .unwrap();
    let (mut engine, mut error) = (ptr::null_mut(), ptr::null_mut());
    let status = unsafe { pc_engine_open(options.as_ptr(), &mut engine, &mut error) };
    assert_eq!(status, pc_status::PC_OK);
    engine
}

/// A case asking `ask` one question; `assertions` decide whether it passes.
fn case(id: &str, assertions: Value) -> Value {
    json!({
        "id": id,
        "context": {"user_id": format!("user-{id}"), "variables": {"question": "What next?"}},
        "assertions": assertions,
    })
}

/// An assertion every mock answer meets.
fn always() -> Value {
    json!([{"type": "max_tokens", "value": 1_000_000}])
}

/// An assertion no mock answer meets.
fn never() -> Value {
    json!([{"type": "contains", "value": "a phrase the mock never writes"}])
}

/// Writes `cases` as a JSONL file in `root`.
fn dataset_file(root: &Path, name: &str, cases: &[Value]) -> String {
    let path = root.join(name);
    let lines: Vec<String> = cases.iter().map(Value::to_string).collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path.to_string_lossy().into_owned()
}

/// Calls `pc_evaluate`: the report, or the status and error JSON.
fn evaluate_raw(
    engine: *const pc_engine,
    feature: *const c_char,
    request: *const c_char,
) -> Result<Value, (pc_status, Value)> {
    let mut report = ptr::NonNull::<c_char>::dangling().as_ptr();
    let mut error = ptr::NonNull::<c_char>::dangling().as_ptr();
    let status = unsafe { pc_evaluate(engine, feature, request, &mut report, &mut error) };
    if status == pc_status::PC_OK {
        assert!(error.is_null(), "no error JSON on success");
        Ok(take_json(report))
    } else {
        assert!(report.is_null(), "no report after a failure");
        Err((status, take_error(error)))
    }
}

fn evaluate(engine: *const pc_engine, request: &Value) -> Result<Value, (pc_status, Value)> {
    let request = CString::new(request.to_string()).unwrap();
    evaluate_raw(engine, FEATURE.as_ptr(), request.as_ptr())
}

/// The engine shared by the tests that need no files of their own.
struct Shared(*mut pc_engine);
// SAFETY: `pc_engine` is Send + Sync (checked in mod.rs); the handle is never closed.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

fn engine() -> *const pc_engine {
    static ENGINE: OnceLock<Shared> = OnceLock::new();
    ENGINE.get_or_init(|| Shared(open_at(&fast_config()))).0
}

#[test]
fn a_dataset_file_runs_and_the_report_json_says_it_passed() {
    let root = fast_config();
    let engine = open_at(&root);
    let path = dataset_file(
        &root,
        "smoke.jsonl",
        &[case("first", always()), case("second", always())],
    );
    let report = evaluate(engine, &json!({"dataset": path})).unwrap();
    assert_eq!(report["feature"], "ask");
    assert_eq!(report["dataset"], "smoke");
    assert_eq!(report["passed"], true);
    let version = &report["versions"][0];
    assert_eq!(version["version"], "1.0.0");
    assert_eq!(version["cases_total"], 2);
    assert_eq!(version["cases_passed"], 2);
    assert_eq!(version["cases"][0]["id"], "first");
    assert!(
        version["cases"][0]["location"]
            .as_str()
            .is_some_and(|location| location.ends_with("smoke.jsonl:1")),
        "{}",
        version["cases"][0]["location"]
    );
    unsafe { pc_engine_close(engine) };
}

#[test]
fn a_report_that_did_not_pass_is_still_pc_ok_with_passed_false_and_the_reason() {
    let report = evaluate(
        engine(),
        &json!({"cases": [case("kept", always()), case("broken", never())]}),
    )
    .unwrap();
    assert_eq!(report["passed"], false);
    let cases = &report["versions"][0]["cases"];
    assert_eq!(cases[0]["passed"], true);
    assert_eq!(cases[1]["passed"], false);
    let assertion = &cases[1]["runs"][0]["assertions"][0];
    assert_eq!(assertion["type"], "contains");
    assert_eq!(assertion["outcome"], "fail");
    assert!(assertion["reason"].as_str().is_some_and(|r| !r.is_empty()));
}

#[test]
fn inline_cases_run_as_a_dataset_named_cases() {
    let report = evaluate(engine(), &json!({"cases": [case("inline", always())]})).unwrap();
    assert_eq!(report["dataset"], crate::eval::dataset::INLINE_DATASET);
    assert_eq!(report["versions"][0]["cases"][0]["id"], "inline");
    assert_eq!(report["passed"], true);
}

#[test]
fn several_datasets_run_as_one_in_the_order_given() {
    let root = fast_config();
    let engine = open_at(&root);
    let first = dataset_file(&root, "first.jsonl", &[case("a", always())]);
    let second = dataset_file(&root, "second.jsonl", &[case("b", always())]);
    let report = evaluate(engine, &json!({"datasets": [first, second]})).unwrap();
    let ids: Vec<&Value> = report["versions"][0]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| &case["id"])
        .collect();
    assert_eq!(ids, [&json!("a"), &json!("b")]);
    unsafe { pc_engine_close(engine) };
}

#[test]
fn without_a_source_the_features_own_datasets_run() {
    let root = fast_config();
    let folder = root.join("config/evals/ask");
    std::fs::create_dir_all(&folder).unwrap();
    dataset_file(&folder, "own.jsonl", &[case("from-the-folder", always())]);
    let engine = open_at(&root);
    let report = evaluate(engine, &json!({})).unwrap();
    assert_eq!(
        report["versions"][0]["cases"][0]["id"], "from-the-folder",
        "{report}"
    );
    unsafe { pc_engine_close(engine) };
}

#[test]
fn the_options_reach_the_report() {
    let request = json!({
        "cases": [case("kept", always()), case("broken", never())],
        "versions": ["1.0.0"],
        "repeat": 3,
        "concurrency": 2,
        "model": "local/m",
        "case_pass_rate": 0.5,
        "min_pass_rate": 0.5,
    });
    let report = evaluate(engine(), &request).unwrap();
    assert_eq!(report["repeat"], 3);
    assert_eq!(report["concurrency"], 2);
    assert_eq!(report["model"], "local/m");
    assert_eq!(report["min_pass_rate"], 0.5);
    let version = &report["versions"][0];
    assert_eq!(version["cases"][0]["runs"].as_array().unwrap().len(), 3);
    assert_eq!(version["cases"][0]["required_pass_rate"], 0.5);
    // One case of two passes: a pass rate of 0.5 meets the minimum.
    assert_eq!(version["pass_rate"], 0.5);
    assert_eq!(report["passed"], true);
}

/// The status and error JSON of a request expected to fail.
fn refused(request: &Value) -> (pc_status, Value) {
    match evaluate(engine(), request) {
        Ok(report) => panic!("{request} ran: {report}"),
        Err(failure) => failure,
    }
}

#[test]
fn an_unknown_key_is_invalid_argument_naming_it() {
    let (status, error) = refused(&json!({"cases": [case("a", always())], "repeats": 3}));
    assert_eq!(status, pc_status::PC_INVALID_ARGUMENT);
    assert_eq!(error["details"]["argument"], "request_json");
    assert_eq!(error["details"]["reason"], "wrong_shape");
    assert!(
        error["message"].as_str().unwrap().contains("`repeats`"),
        "{error}"
    );
}

#[test]
fn two_sources_are_invalid_argument_naming_both() {
    let (status, error) = refused(&json!({"dataset": "a.jsonl", "cases": []}));
    assert_eq!(status, pc_status::PC_INVALID_ARGUMENT);
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("dataset and cases"), "{message}");
}

#[test]
fn an_empty_datasets_list_is_invalid_argument() {
    let (status, error) = refused(&json!({"datasets": []}));
    assert_eq!(status, pc_status::PC_INVALID_ARGUMENT);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("datasets is empty")
    );
}

#[test]
fn repeat_zero_is_invalid_argument_naming_repeat() {
    let (status, error) = refused(&json!({"cases": [case("a", always())], "repeat": 0}));
    assert_eq!(status, pc_status::PC_INVALID_ARGUMENT);
    assert_eq!(error["details"]["argument"], "repeat");
}

#[test]
fn out_of_range_options_are_invalid_argument_naming_each() {
    for (key, value) in [
        ("concurrency", json!(0)),
        ("min_pass_rate", json!(1.5)),
        ("case_pass_rate", json!(-0.1)),
        ("model", json!("no-slash")),
    ] {
        let mut request = json!({"cases": [case("a", always())]});
        request[key] = value;
        let (status, error) = refused(&request);
        assert_eq!(status, pc_status::PC_INVALID_ARGUMENT, "{key}: {error}");
        assert_eq!(error["details"]["argument"], key, "{error}");
    }
}

#[test]
fn a_value_of_the_wrong_type_is_invalid_argument_naming_the_key() {
    for (key, value) in [
        ("repeat", json!(-1)),
        ("repeat", json!(1u64 << 40)),
        ("repeat", json!("3")),
        ("versions", json!("1.0.0")),
        ("dataset", json!(7)),
        ("cases", json!({"id": "a"})),
    ] {
        let mut request = json!({});
        request[key] = value.clone();
        let (status, error) = refused(&request);
        assert_eq!(status, pc_status::PC_INVALID_ARGUMENT, "{key}={value}");
        assert_eq!(error["details"]["reason"], "wrong_shape", "{error}");
    }
}

#[test]
fn an_invalid_case_is_invalid_dataset_naming_its_position() {
    let broken = json!({"id": "broken", "context": {"user_id": "u"}, "assertions": [{"type": "no_such_type"}]});
    let (status, error) = refused(&json!({"cases": [case("fine", always()), broken]}));
    assert_eq!(status, pc_status::PC_INVALID_DATASET, "{error}");
    let problems = error["details"]["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|problem| problem.as_str().unwrap().starts_with("cases:2: ")),
        "{error}"
    );
}

#[test]
fn no_cases_at_all_is_invalid_dataset() {
    let (status, _) = refused(&json!({"cases": []}));
    assert_eq!(status, pc_status::PC_INVALID_DATASET);
}

#[test]
fn a_dataset_file_that_cannot_be_read_is_pc_io_naming_its_path() {
    let (status, error) = refused(&json!({"dataset": "/no/such/dataset.jsonl"}));
    assert_eq!(status, pc_status::PC_IO, "{error}");
    assert_eq!(error["details"]["path"], "/no/such/dataset.jsonl");
}

#[test]
fn unknown_feature_version_and_model_have_their_status() {
    let cases = json!([case("a", always())]);
    let request = CString::new(json!({"cases": cases}).to_string()).unwrap();
    let (status, error) =
        evaluate_raw(engine(), c"no_such_feature".as_ptr(), request.as_ptr()).unwrap_err();
    assert_eq!(status, pc_status::PC_UNKNOWN_FEATURE);
    assert_eq!(error["kind"], "unknown_feature");
    let (status, _) = refused(&json!({"cases": cases, "versions": ["9.9.9"]}));
    assert_eq!(status, pc_status::PC_UNKNOWN_VERSION);
    let (status, error) = refused(&json!({"cases": cases, "model": "local/no-such-model"}));
    assert_eq!(status, pc_status::PC_UNKNOWN_MODEL);
    assert_eq!(error["kind"], "unknown_model");
}

#[test]
fn null_arguments_are_invalid_argument_naming_each() {
    let request = CString::new(json!({"cases": [case("a", always())]}).to_string()).unwrap();
    let null_engine = evaluate_raw(ptr::null(), FEATURE.as_ptr(), request.as_ptr());
    let null_feature = evaluate_raw(engine(), ptr::null(), request.as_ptr());
    let null_request = evaluate_raw(engine(), FEATURE.as_ptr(), ptr::null());
    for (outcome, argument) in [
        (null_engine, "engine"),
        (null_feature, "feature"),
        (null_request, "request_json"),
    ] {
        let (status, error) = outcome.unwrap_err();
        assert_eq!(status, pc_status::PC_INVALID_ARGUMENT);
        assert_eq!(error["details"]["argument"], argument);
        assert_eq!(error["details"]["reason"], "null");
    }
    let mut error = ptr::null_mut();
    let status = unsafe {
        pc_evaluate(
            engine(),
            FEATURE.as_ptr(),
            request.as_ptr(),
            ptr::null_mut(),
            &mut error,
        )
    };
    assert_eq!(status, pc_status::PC_INVALID_ARGUMENT);
    assert_eq!(take_error(error)["details"]["argument"], "report_json");
    // A NULL `error` is allowed: the status alone tells.
    let mut report = ptr::null_mut();
    let status = unsafe {
        pc_evaluate(
            engine(),
            ptr::null(),
            request.as_ptr(),
            &mut report,
            ptr::null_mut(),
        )
    };
    assert_eq!(status, pc_status::PC_INVALID_ARGUMENT);
    assert!(report.is_null());
}

#[test]
fn non_utf8_feature_or_request_is_invalid_argument() {
    let bytes = CString::new(vec![b'{', b'"', 0xff, b'"', b':', b'1', b'}']).unwrap();
    let request = CString::new("{}").unwrap();
    let (status, error) = evaluate_raw(engine(), bytes.as_ptr(), request.as_ptr()).unwrap_err();
    assert_eq!(status, pc_status::PC_INVALID_ARGUMENT);
    assert_eq!(error["details"]["argument"], "feature");
    assert_eq!(error["details"]["reason"], "invalid_utf8");
    let (status, error) = evaluate_raw(engine(), FEATURE.as_ptr(), bytes.as_ptr()).unwrap_err();
    assert_eq!(status, pc_status::PC_INVALID_ARGUMENT);
    assert_eq!(error["details"]["argument"], "request_json");
    assert_eq!(error["details"]["reason"], "invalid_utf8");
}

#[test]
fn bad_json_or_not_an_object_is_invalid_argument() {
    for (text, reason) in [
        ("{\"cases\": [", "invalid_json"),
        ("", "invalid_json"),
        ("[]", "wrong_shape"),
        ("null", "wrong_shape"),
        ("\"dataset.jsonl\"", "wrong_shape"),
    ] {
        let request = CString::new(text).unwrap();
        let (status, error) =
            evaluate_raw(engine(), FEATURE.as_ptr(), request.as_ptr()).unwrap_err();
        assert_eq!(status, pc_status::PC_INVALID_ARGUMENT, "{text:?}");
        assert_eq!(error["details"]["argument"], "request_json", "{text:?}");
        assert_eq!(error["details"]["reason"], reason, "{text:?}");
    }
}

#[test]
fn a_panic_inside_is_pc_panic_and_no_report() {
    let request = CString::new("{}").unwrap();
    let (mut report, mut error) = (ptr::null_mut(), ptr::null_mut());
    test_hook::panic_next("pc_evaluate");
    let status = unsafe {
        pc_evaluate(
            engine(),
            FEATURE.as_ptr(),
            request.as_ptr(),
            &mut report,
            &mut error,
        )
    };
    assert_eq!(status, pc_status::PC_PANIC);
    assert!(report.is_null());
    let error = take_error(error);
    assert_eq!(error["kind"], "panic");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("pc_evaluate panicked")
    );
}

/// The keys the request JSON knows.
const KEYS: [&str; 9] = [
    "dataset",
    "datasets",
    "cases",
    "versions",
    "repeat",
    "concurrency",
    "model",
    "case_pass_rate",
    "min_pass_rate",
];

/// Statuses an evaluation request may end with on this engine (besides `PC_OK`).
const EXPECTED_FAILURES: [pc_status; 5] = [
    pc_status::PC_INVALID_ARGUMENT,
    pc_status::PC_INVALID_DATASET,
    pc_status::PC_UNKNOWN_VERSION,
    pc_status::PC_UNKNOWN_MODEL,
    pc_status::PC_IO,
];

/// A JSON value of any type, small.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |n| serde_json::Number::from_f64(n)
            .map(Value::Number)),
        awkward_text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((awkward_text(), inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever bytes arrive, the call ends with a status and a well-formed error JSON.
    #[test]
    fn any_request_bytes_get_a_status_never_a_panic(bytes in prop::collection::vec(1u8..=255, 0..64)) {
        let request = CString::new(bytes).unwrap();
        match evaluate_raw(engine(), FEATURE.as_ptr(), request.as_ptr()) {
            Ok(report) => prop_assert!(report["passed"].is_boolean()),
            Err((status, _)) => prop_assert!(EXPECTED_FAILURES.contains(&status), "{status:?}"),
        }
    }

    /// Any value under any known key is a report or an expected, well-formed error.
    #[test]
    fn any_value_under_a_known_key_gets_a_report_or_an_expected_error(
        key in prop::sample::select(KEYS.to_vec()),
        value in any_json(),
    ) {
        // No repeat or concurrency large enough to keep the test busy for long.
        prop_assume!(!(["repeat", "concurrency"].contains(&key) && value.as_u64().is_some_and(|n| n > 8)));
        let mut request = json!({"cases": [case("a", always())]});
        if ["dataset", "datasets"].contains(&key) {
            request = json!({});
        }
        request[key] = value;
        match evaluate(engine(), &request) {
            Ok(report) => prop_assert!(report["passed"].is_boolean()),
            Err((status, error)) => {
                prop_assert!(EXPECTED_FAILURES.contains(&status), "{status:?}: {error}");
            }
        }
    }

    /// A key the request does not know is refused, and the message names it.
    #[test]
    fn any_unknown_key_is_refused_by_name(key in awkward_text(), value in any_json()) {
        prop_assume!(!KEYS.contains(&key.as_str()));
        let mut request = Map::new();
        request.insert("cases".into(), json!([case("a", always())]));
        request.insert(key.clone(), value);
        let (status, error) = evaluate(engine(), &Value::Object(request)).unwrap_err();
        prop_assert_eq!(status, pc_status::PC_INVALID_ARGUMENT);
        // serde names the key as written; the error JSON escapes what JSON must.
        prop_assert!(error["message"].as_str().unwrap().contains(&key), "{error}");
    }

    /// Any text as the feature name: unknown, named in the error, or the one feature.
    #[test]
    fn any_feature_name_is_unknown_feature_naming_it(name in awkward_text()) {
        // A C string ends at its first NUL: the name C can pass is the text before it.
        let name = name.split('\0').next().unwrap_or_default().to_string();
        prop_assume!(name != "ask");
        let feature = CString::new(name.clone()).unwrap();
        let request = CString::new(json!({"cases": [case("a", always())]}).to_string()).unwrap();
        let (status, error) = evaluate_raw(engine(), feature.as_ptr(), request.as_ptr()).unwrap_err();
        prop_assert_eq!(status, pc_status::PC_UNKNOWN_FEATURE, "{}", error);
        prop_assert_eq!(&error["details"]["feature"], &json!(name));
    }
}
