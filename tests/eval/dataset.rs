//! Loading datasets: the line shape, and every problem a file can have, each reported as
//! `file:line: /pointer: message`, all of them at once.

use std::path::PathBuf;

use prompt_config::eval::{AssertionKind, Dataset, JsonPathMatch};
use prompt_config::{Error, ErrorKind, EvalError};
use serde_json::json;

use crate::support::temp_dir::TempDir;

const CONTEXT: &str = r#""context": {"user_id": "u1", "variables": {"current_role": "Nurse"}}"#;

/// A valid case line with `id` and the assertions `assertions` (a JSON array's inside).
fn line(id: &str, assertions: &str) -> String {
    format!(r#"{{"id": "{id}", {CONTEXT}, "assertions": [{assertions}]}}"#)
}

/// The problems of a dataset that must fail, each as it displays.
fn problems(file: &str, text: &str) -> Vec<String> {
    match Dataset::parse(file, text) {
        Ok(dataset) => panic!("{file} parsed: {dataset:?}"),
        Err(EvalError::InvalidDataset { problems }) => {
            problems.iter().map(ToString::to_string).collect()
        }
        Err(other) => panic!("not invalid_dataset: {other}"),
    }
}

/// The one problem of a dataset that must fail.
fn problem(text: &str) -> String {
    let found = problems("smoke.jsonl", text);
    assert_eq!(found.len(), 1, "{found:#?}");
    found.into_iter().next().unwrap_or_default()
}

fn starts(found: &str, prefix: &str) {
    assert!(
        found.starts_with(prefix),
        "{found:?} should start with {prefix:?}"
    );
}

#[test]
fn a_line_becomes_a_case_with_its_file_line_and_fields() {
    let text = format!(
        "{}\n\n{}\n",
        line("a", r#"{"type": "contains", "value": "paths"}"#),
        r#"{"id": "b", "description": "two", "tags": ["edge"], "context": {"user_id": 7, "attributes": {"sector": "tech"}},
            "assertions": [{"type": "is_json", "weight": 2, "threshold": 0.5, "versions": ["2.2.0"]}],
            "pass_rate": 0.8, "threshold": 0.7, "metadata": {"ticket": "CPN-1"}}"#
            .replace('\n', " ")
    );
    let dataset = Dataset::parse("evals/smoke.jsonl", &text).unwrap();
    assert_eq!(dataset.name, "smoke");
    assert_eq!(dataset.cases.len(), 2);
    let b = &dataset.cases[1];
    assert_eq!(
        (b.id.as_str(), b.file.as_str(), b.line),
        ("b", "evals/smoke.jsonl", 3)
    );
    assert_eq!(b.description.as_deref(), Some("two"));
    assert_eq!(b.tags, ["edge"]);
    assert_eq!(b.context.subject_id(), "7");
    assert_eq!(b.context.attributes()["sector"], "tech");
    assert_eq!((b.pass_rate, b.threshold), (Some(0.8), Some(0.7)));
    let assertion = &b.assertions[0];
    assert_eq!(assertion.type_name(), "is_json");
    assert_eq!((assertion.weight, assertion.threshold), (2.0, Some(0.5)));
    assert!(assertion.applies_to("2.2.0") && !assertion.applies_to("2.0.0"));
}

#[test]
fn defaults_are_weight_one_no_threshold_every_version_case_sensitive() {
    let dataset = Dataset::parse(
        "d.jsonl",
        &line("a", r#"{"type": "not_contains", "value": "lorem"}"#),
    )
    .unwrap();
    let case = &dataset.cases[0];
    let assertion = &case.assertions[0];
    assert_eq!((assertion.weight, assertion.threshold), (1.0, None));
    assert!(assertion.versions.is_empty());
    assert!(matches!(
        assertion.kind,
        AssertionKind::NotContains {
            case_sensitive: true,
            ..
        }
    ));
    assert_eq!((case.pass_rate, case.threshold), (None, None));
    assert!(case.tags.is_empty() && case.description.is_none());
}

#[test]
fn a_json_path_takes_equals_or_contains() {
    let dataset = Dataset::parse(
        "d.jsonl",
        &line(
            "a",
            concat!(
                r#"{"type": "json_path", "path": "$.paths[0].role", "equals": "Nurse"}, "#,
                r#"{"type": "json_path", "path": "$.paths[*].skills_to_add", "contains": "SQL"}"#
            ),
        ),
    )
    .unwrap();
    let kinds: Vec<_> = dataset.cases[0]
        .assertions
        .iter()
        .map(|a| match &a.kind {
            AssertionKind::JsonPath { path, expected } => {
                (path.as_str().to_string(), expected.clone())
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (
                "$.paths[0].role".to_string(),
                JsonPathMatch::Equals(json!("Nurse"))
            ),
            (
                "$.paths[*].skills_to_add".to_string(),
                JsonPathMatch::Contains(json!("SQL"))
            ),
        ]
    );
}

#[test]
fn a_line_that_is_not_json_names_its_line_and_column() {
    let text = format!("{}\n{{\"id\": \"b\",", line("a", r#"{"type": "is_json"}"#));
    starts(&problem(&text), "smoke.jsonl:2: not JSON at column 11: ");
}

#[test]
fn a_case_that_is_not_an_object_is_refused() {
    starts(
        &problem("[1, 2]"),
        "smoke.jsonl:1: [1,2] is not of type \"object\"",
    );
}

#[test]
fn a_missing_id_context_or_assertions_is_named() {
    let found = problems("smoke.jsonl", "{}");
    assert_eq!(
        found,
        [
            "smoke.jsonl:1: \"id\" is a required property",
            "smoke.jsonl:1: \"context\" is a required property",
            "smoke.jsonl:1: \"assertions\" is a required property",
        ]
    );
    let found = problems(
        "smoke.jsonl",
        r#"{"id": "a", "assertions": [{"type": "is_json"}]}"#,
    );
    assert_eq!(found, ["smoke.jsonl:1: \"context\" is a required property"]);
}

#[test]
fn an_unknown_case_field_is_refused() {
    let text = line("a", r#"{"type": "is_json"}"#).replace("{\"id\"", "{\"colour\": 1, \"id\"");
    starts(
        &problem(&text),
        "smoke.jsonl:1: Additional properties are not allowed ('colour'",
    );
}

#[test]
fn a_pinned_version_in_the_context_is_refused_with_the_reason() {
    let text =
        line("a", r#"{"type": "is_json"}"#).replace("\"u1\"", "\"u1\", \"version\": \"2.0.0\"");
    starts(
        &problem(&text),
        "smoke.jsonl:1: /context/version: a case cannot pin a version: the evaluation pins each version it runs",
    );
}

#[test]
fn a_context_without_user_id_is_refused() {
    let text = r#"{"id": "a", "context": {"variables": {}}, "assertions": [{"type": "is_json"}]}"#;
    starts(
        &problem(text),
        "smoke.jsonl:1: /context: \"user_id\" is a required property",
    );
}

#[test]
fn a_float_user_id_is_refused_with_the_bindings_rule() {
    let text = line("a", r#"{"type": "is_json"}"#).replace("\"u1\"", "2.0");
    starts(
        &problem(&text),
        "smoke.jsonl:1: /context/user_id: user_id must be a string or an integer",
    );
}

#[test]
fn a_history_message_with_a_system_role_is_refused() {
    let text = line("a", r#"{"type": "is_json"}"#).replace(
        "\"u1\"",
        r#""u1", "messages": [{"role": "user", "content": "hi"}, {"role": "system", "content": "x"}]"#,
    );
    starts(&problem(&text), "smoke.jsonl:1: /context/messages/1/role: ");
}

#[test]
fn an_empty_assertion_list_is_refused() {
    assert_eq!(
        problem(&line("a", "")),
        "smoke.jsonl:1: /assertions: a case must assert something: give at least one assertion"
    );
}

#[test]
fn an_unknown_assertion_type_is_named() {
    starts(
        &problem(&line("a", r#"{"type": "similar", "value": "x"}"#)),
        "smoke.jsonl:1: /assertions/0/type: \"similar\" is not one of",
    );
}

#[test]
fn an_assertion_missing_its_value_is_named() {
    starts(
        &problem(&line("a", r#"{"type": "contains"}"#)),
        "smoke.jsonl:1: /assertions/0: \"value\" is a required property",
    );
}

#[test]
fn a_field_another_kind_takes_is_refused() {
    starts(
        &problem(&line(
            "a",
            r#"{"type": "regex", "value": "x", "case_sensitive": false}"#,
        )),
        "smoke.jsonl:1: /assertions/0: Additional properties are not allowed ('case_sensitive'",
    );
}

#[test]
fn a_negative_weight_is_refused() {
    starts(
        &problem(&line("a", r#"{"type": "is_json", "weight": -1}"#)),
        "smoke.jsonl:1: /assertions/0/weight: -1 is less than the minimum of 0",
    );
}

#[test]
fn thresholds_and_pass_rates_outside_zero_to_one_are_refused() {
    starts(
        &problem(&line("a", r#"{"type": "is_json", "threshold": 1.5}"#)),
        "smoke.jsonl:1: /assertions/0/threshold: 1.5 is greater than the maximum of 1",
    );
    let text =
        line("a", r#"{"type": "is_json"}"#).replace("{\"id\"", "{\"pass_rate\": -0.1, \"id\"");
    starts(
        &problem(&text),
        "smoke.jsonl:1: /pass_rate: -0.1 is less than the minimum of 0",
    );
    let text = line("a", r#"{"type": "is_json"}"#).replace("{\"id\"", "{\"threshold\": 2, \"id\"");
    starts(
        &problem(&text),
        "smoke.jsonl:1: /threshold: 2 is greater than the maximum of 1",
    );
}

#[test]
fn a_regex_that_does_not_compile_points_at_its_value() {
    starts(
        &problem(&line(
            "a",
            r#"{"type": "is_json"}, {"type": "regex", "value": "(unclosed"}"#,
        )),
        "smoke.jsonl:1: /assertions/1/value: not a valid regex: ",
    );
}

#[test]
fn a_json_path_that_does_not_parse_points_at_its_path() {
    starts(
        &problem(&line(
            "a",
            r#"{"type": "json_path", "path": "$.paths[", "equals": 1}"#,
        )),
        "smoke.jsonl:1: /assertions/0/path: not an RFC 9535 JSONPath: ",
    );
}

#[test]
fn a_json_path_with_both_or_neither_comparison_is_refused() {
    assert_eq!(
        problem(&line(
            "a",
            r#"{"type": "json_path", "path": "$.a", "equals": 1, "contains": 1}"#
        )),
        "smoke.jsonl:1: /assertions/0: a json_path assertion takes \"equals\" or \"contains\", not both"
    );
    starts(
        &problem(&line("a", r#"{"type": "json_path", "path": "$.a"}"#)),
        "smoke.jsonl:1: /assertions/0: a json_path assertion needs \"equals\" or \"contains\"",
    );
}

#[test]
fn an_assertion_schema_that_does_not_compile_points_at_its_value() {
    starts(
        &problem(&line(
            "a",
            r#"{"type": "json_schema", "value": {"type": "nonsense"}}"#,
        )),
        "smoke.jsonl:1: /assertions/0/value: not a valid JSON Schema",
    );
}

#[test]
fn an_assertion_schema_outside_the_providers_subset_is_accepted() {
    // Providers refuse `pattern` and `maxItems`-style keywords in structured output; an
    // assertion only checks answers, so any schema goes.
    let text = line(
        "a",
        r#"{"type": "json_schema", "value": {"type": "array", "maxItems": 2, "items": {"type": "string", "pattern": "^a"}}}"#,
    );
    assert!(Dataset::parse("d.jsonl", &text).is_ok());
}

#[test]
fn a_judge_model_must_be_provider_slash_name() {
    starts(
        &problem(&line(
            "a",
            r#"{"type": "judge", "value": "kind", "model": "gpt-4o"}"#,
        )),
        "smoke.jsonl:1: /assertions/0/model: \"gpt-4o\" does not match",
    );
}

#[test]
fn a_duplicate_id_names_the_first_case() {
    let text = format!(
        "{}\n{}\n{}",
        line("a", r#"{"type": "is_json"}"#),
        line("b", r#"{"type": "is_json"}"#),
        line("a", r#"{"type": "is_json"}"#)
    );
    assert_eq!(
        problem(&text),
        "smoke.jsonl:3: /id: duplicate id \"a\": smoke.jsonl:1 has it already"
    );
}

#[test]
fn every_problem_of_a_file_is_reported_in_line_order() {
    let text = [
        line("a", r#"{"type": "is_json", "weight": -2}"#),
        "not json".to_string(),
        line(
            "a",
            r#"{"type": "regex", "value": "("}, {"type": "json_path", "path": "x", "equals": 1}"#,
        ),
        String::new(),
        line("d", ""),
    ]
    .join("\n");
    assert_eq!(
        problems("smoke.jsonl", &text),
        [
            "smoke.jsonl:1: /assertions/0/weight: -2 is less than the minimum of 0",
            "smoke.jsonl:2: not JSON at column 2: expected ident; a line holds one case as a JSON object",
            "smoke.jsonl:3: /id: duplicate id \"a\": smoke.jsonl:1 has it already",
            "smoke.jsonl:3: /assertions/0/value: not a valid regex: regex parse error: ( ^ error: unclosed group",
            "smoke.jsonl:3: /assertions/1/path: not an RFC 9535 JSONPath: a query starts with $ (the answer's root), as in $.paths[0].role, not \"x\"",
            "smoke.jsonl:5: /assertions: a case must assert something: give at least one assertion",
        ]
    );
}

#[test]
fn the_error_is_invalid_dataset_with_every_problem_in_its_details() {
    let error: Error = Dataset::parse("smoke.jsonl", "x\ny").unwrap_err().into();
    assert_eq!(error.kind(), ErrorKind::InvalidDataset);
    let details = error.details();
    assert_eq!(
        details["problems"].as_array().map(Vec::len),
        Some(2),
        "{details}"
    );
}

#[test]
fn blank_and_whitespace_lines_are_skipped_and_crlf_is_read() {
    let text = format!(
        "\n   \n{}\r\n\t\r\n{}\r\n",
        line("a", r#"{"type": "is_json"}"#),
        line("b", r#"{"type": "is_json"}"#)
    );
    let dataset = Dataset::parse("d.jsonl", &text).unwrap();
    let lines: Vec<usize> = dataset.cases.iter().map(|case| case.line).collect();
    assert_eq!(lines, [3, 5]);
}

#[test]
fn an_empty_file_is_a_dataset_without_cases() {
    for text in ["", "\n\n  \n"] {
        assert_eq!(
            problem(text),
            "smoke.jsonl: the dataset has no cases (the file is empty or holds only blank lines)"
        );
    }
}

#[test]
fn a_nul_byte_is_named_with_its_column() {
    let text = format!(
        "{}\n{{\"id\": \"b\0\"}}",
        line("a", r#"{"type": "is_json"}"#)
    );
    starts(&problem(&text), "smoke.jsonl:2: a NUL byte at column 10");
}

#[test]
fn a_huge_line_parses_and_a_huge_bad_value_gives_a_short_message() {
    let long = "x".repeat(2_000_000);
    let text = line(
        "a",
        &format!(r#"{{"type": "contains", "value": "{long}"}}"#),
    );
    let dataset = Dataset::parse("d.jsonl", &text).unwrap();
    assert_eq!(dataset.cases.len(), 1);
    let text = line(
        "a",
        &format!(r#"{{"type": "max_tokens", "value": "{long}"}}"#),
    );
    let found = problem(&text);
    starts(&found, "smoke.jsonl:1: /assertions/0/value: ");
    assert!(found.len() < 400, "{} characters", found.len());
}

#[test]
fn a_byte_order_mark_is_ignored() {
    let text = format!("\u{feff}{}", line("a", r#"{"type": "is_json"}"#));
    assert_eq!(Dataset::parse("d.jsonl", &text).unwrap().cases.len(), 1);
}

#[test]
fn load_reads_a_file_named_by_its_stem() {
    let dir = TempDir::new("dataset_load");
    let path = dir.path().join("smoke.jsonl");
    std::fs::write(&path, line("a", r#"{"type": "is_json"}"#)).unwrap();
    let dataset = Dataset::load(&path).unwrap();
    assert_eq!(dataset.name, "smoke");
    assert_eq!(dataset.cases[0].file, path.display().to_string());
}

#[test]
fn load_names_a_line_that_is_not_utf8_and_reports_the_others_too() {
    let dir = TempDir::new("dataset_utf8");
    let path = dir.path().join("bad.jsonl");
    let mut bytes = line("a", r#"{"type": "is_json"}"#).into_bytes();
    bytes.extend_from_slice(b"\n{\"id\": \"\xff\"}\n");
    bytes.extend_from_slice(line("c", "").as_bytes());
    std::fs::write(&path, bytes).unwrap();
    let Err(Error::Eval(EvalError::InvalidDataset { problems })) = Dataset::load(&path) else {
        panic!("expected invalid_dataset");
    };
    let found: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let file = path.display();
    assert_eq!(
        found,
        [
            format!("{file}:2: not UTF-8: byte 0xFF at column 9; a dataset is UTF-8 text"),
            format!(
                "{file}:3: /assertions: a case must assert something: give at least one assertion"
            ),
        ]
    );
}

#[test]
fn load_of_a_missing_file_is_io_naming_the_path() {
    let dir = TempDir::new("dataset_missing");
    let path = dir.path().join("nope.jsonl");
    let error = Dataset::load(&path).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Io);
    assert!(error.to_string().contains("nope.jsonl"), "{error}");
}

#[test]
fn load_all_joins_names_and_keeps_ids_unique_across_files() {
    let dir = TempDir::new("dataset_all");
    let smoke = dir.path().join("smoke.jsonl");
    let more = dir.path().join("regressions.jsonl");
    std::fs::write(&smoke, line("a", r#"{"type": "is_json"}"#)).unwrap();
    std::fs::write(&more, line("b", r#"{"type": "is_json"}"#)).unwrap();
    let dataset = Dataset::load_all(&[smoke.clone(), more.clone()]).unwrap();
    assert_eq!(dataset.name, "smoke+regressions");
    let ids: Vec<&str> = dataset.cases.iter().map(|case| case.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    std::fs::write(&more, format!("\n{}", line("a", r#"{"type": "is_json"}"#))).unwrap();
    let Err(Error::Eval(EvalError::InvalidDataset { problems })) =
        Dataset::load_all(&[smoke.clone(), more.clone()])
    else {
        panic!("expected invalid_dataset");
    };
    assert_eq!(
        problems[0].to_string(),
        format!(
            "{}:2: /id: duplicate id \"a\": {}:1 has it already",
            more.display(),
            smoke.display()
        )
    );
}

#[test]
fn load_all_reads_a_file_named_twice_once() {
    let dir = TempDir::new("dataset_twice");
    let smoke = dir.path().join("smoke.jsonl");
    std::fs::write(&smoke, line("a", r#"{"type": "is_json"}"#)).unwrap();
    let again = dir.path().join(".").join("smoke.jsonl");
    let dataset = Dataset::load_all(&[smoke.clone(), again]).unwrap();
    let ids: Vec<&str> = dataset.cases.iter().map(|case| case.id.as_str()).collect();
    assert_eq!(ids, ["a"]);
    assert_eq!(dataset.name, "smoke");
}

#[test]
fn load_all_of_no_file_is_invalid_dataset() {
    let error = Dataset::load_all(&[]).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidDataset);
}

#[test]
fn feature_files_are_the_sorted_jsonl_files_of_the_feature() {
    let dir = TempDir::new("dataset_feature_files");
    let evals = dir.path().join("evals").join("f");
    std::fs::create_dir_all(&evals).unwrap();
    for name in ["b.jsonl", "a.jsonl", "notes.md"] {
        std::fs::write(evals.join(name), "").unwrap();
    }
    let files = Dataset::feature_files(dir.path(), "f").unwrap();
    let names: Vec<PathBuf> = files
        .iter()
        .map(|f| PathBuf::from(f.file_name().unwrap()))
        .collect();
    assert_eq!(names, [PathBuf::from("a.jsonl"), PathBuf::from("b.jsonl")]);
}

#[test]
fn feature_files_without_any_say_where_they_looked() {
    let dir = TempDir::new("dataset_no_files");
    let error = Dataset::feature_files(dir.path(), "f").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidDataset);
    let looked = dir.path().join("evals").join("f").display().to_string();
    assert!(error.to_string().contains(&looked), "{error}");
}

#[test]
fn a_written_case_parses_back_to_the_same_case() {
    let text = r#"{"id": "w", "description": "d", "tags": ["t"], "context": {"user_id": "u", "attributes": {"sector": "tech"}, "variables": {"skills": []}, "messages": [{"role": "user", "content": "hi"}]}, "assertions": [{"type": "equals", "value": {"a": 1}}, {"type": "contains", "value": "x", "case_sensitive": false}, {"type": "regex", "value": "(?i)a+"}, {"type": "json_schema"}, {"type": "json_schema", "value": {"type": "object"}}, {"type": "json_path", "path": "$.a", "contains": 1, "versions": ["2.2.0"]}, {"type": "max_tokens", "value": 900}, {"type": "max_latency_ms", "value": 5000.5}, {"type": "max_cost_usd", "value": 0.01}, {"type": "finish_reason", "value": "stop"}, {"type": "judge", "value": "kind", "model": "openai/gpt-4o", "weight": 0.5, "threshold": 0.7}], "pass_rate": 0.8, "threshold": 0.6}"#;
    let case = &Dataset::parse("d.jsonl", text).unwrap().cases[0];
    let written = serde_json::to_string(&case.to_json()).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&written).unwrap(),
        serde_json::from_str::<serde_json::Value>(text).unwrap()
    );
}

#[test]
fn an_assertion_naming_a_version_the_feature_lacks_stops_the_evaluation() {
    let fixture = crate::support::eval::fast_mock_fixture();
    let engine = crate::support::eval::mock_engine(&fixture);
    let text = line(
        "a",
        r#"{"type": "is_json"}, {"type": "is_json", "versions": ["2.2.0", "2.9.0"]}"#,
    );
    let dataset = Dataset::parse("smoke.jsonl", &text).unwrap();
    let options = prompt_config::eval::EvalOptions::default().versions(["2.2.0"]);
    let Err(Error::Eval(EvalError::InvalidDataset { problems })) =
        engine.evaluate("career_path_navigator", &dataset, &options)
    else {
        panic!("expected invalid_dataset");
    };
    let found: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    starts(
        &found[0],
        "smoke.jsonl:1: /assertions/1/versions/1: career_path_navigator has no version \"2.9.0\" (it has 1.0.0, 2.0.0,",
    );
}

#[test]
fn a_schema_problem_does_not_hide_a_compile_problem_on_the_same_line() {
    let found = problems(
        "smoke.jsonl",
        &line(
            "a",
            r#"{"type": "is_json", "weight": -1}, {"type": "regex", "value": "("}"#,
        ),
    );
    assert_eq!(found.len(), 2, "{found:#?}");
    starts(
        &found[0],
        "smoke.jsonl:1: /assertions/0/weight: -1 is less than the minimum of 0",
    );
    starts(
        &found[1],
        "smoke.jsonl:1: /assertions/1/value: not a valid regex: ",
    );
}

#[test]
fn the_embedded_dataset_schema_is_the_shipped_file_and_a_valid_documented_schema() {
    use prompt_config::eval::dataset::DATASET_SCHEMA;
    let path =
        crate::support::fixture::project_root().join("config/schema/eval_dataset_schema.json");
    assert_eq!(DATASET_SCHEMA, std::fs::read_to_string(path).unwrap());
    let schema: serde_json::Value = serde_json::from_str(DATASET_SCHEMA).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    jsonschema::meta::validate(&schema).unwrap();
    // Editors show descriptions on hover: every property and definition has one.
    let mut undocumented = Vec::new();
    let mut pending = vec![(String::new(), &schema)];
    while let Some((location, node)) = pending.pop() {
        for keyword in ["properties", "$defs"] {
            if let Some(children) = node.get(keyword).and_then(serde_json::Value::as_object) {
                for (name, child) in children {
                    let here = format!("{location}/{keyword}/{name}");
                    if child.is_object() && child.get("description").is_none() {
                        undocumented.push(here.clone());
                    }
                    pending.push((here, child));
                }
            }
        }
        if let Some(items) = node.get("items") {
            pending.push((format!("{location}/items"), items));
        }
    }
    assert!(undocumented.is_empty(), "{undocumented:#?}");
}

#[test]
fn a_duplicate_id_is_reported_beside_the_lines_other_problems() {
    let text = format!(
        "{}\n{}",
        line("a", r#"{"type": "is_json"}"#),
        line("a", r#"{"type": "is_json", "weight": -1}"#)
    );
    let found = problems("smoke.jsonl", &text);
    assert_eq!(
        found,
        [
            "smoke.jsonl:2: /id: duplicate id \"a\": smoke.jsonl:1 has it already",
            "smoke.jsonl:2: /assertions/0/weight: -1 is less than the minimum of 0",
        ]
    );
}

#[test]
fn an_id_with_a_control_character_is_refused_at_id() {
    for (id, code, at) in [
        (r"esc\u001b[31mRED", "U+001B", 4),
        (r"nul\u0000id", "U+0000", 4),
        (r"tab\tid", "U+0009", 4),
        (r"\u007fdel", "U+007F", 1),
        (r"c1\u0085", "U+0085", 3),
    ] {
        let found = problem(&line(id, r#"{"type": "is_json"}"#));
        starts(&found, "smoke.jsonl:1: /id: the id has a control character");
        assert!(
            found.contains(&format!("({code} at character {at})")),
            "{found}"
        );
    }
}

#[test]
fn an_id_with_printable_unicode_is_accepted() {
    let dataset = Dataset::parse(
        "smoke.jsonl",
        &line("café-日本-🙂 with spaces", r#"{"type": "is_json"}"#),
    )
    .unwrap();
    assert_eq!(dataset.cases[0].id, "café-日本-🙂 with spaces");
}
