//! Properties of the dataset parser: no input makes it panic (any string, any bytes, any JSON
//! in a case's place), and a valid case written back and parsed again is the same case.

use prompt_config::eval::Dataset;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::temp_dir::TempDir;

/// Any JSON value, a few levels deep, with the awkward strings (empty, NUL, non-ASCII).
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|n| serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)),
        prop_oneof![
            Just(String::new()),
            Just("\0".to_string()),
            ".{0,12}",
            "[$.\\[\\]*?@()]{0,10}"
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map("[a-z_]{0,8}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Thousandths from 0 up to `top` / 1000: short decimals, which JSON text carries exactly (any
/// f64 would test serde_json's float parsing, not the dataset).
fn share(top: u32) -> impl Strategy<Value = f64> {
    (0..=top).prop_map(|n| f64::from(n) / 1000.0)
}

const KINDS: [&str; 13] = [
    "equals",
    "contains",
    "not_contains",
    "regex",
    "is_json",
    "json_schema",
    "json_path",
    "max_tokens",
    "max_latency_ms",
    "max_cost_usd",
    "finish_reason",
    "judge",
    "unknown",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn parse_never_panics_on_any_string(text in any::<String>()) {
        let _ = Dataset::parse("any.jsonl", &text);
    }

    #[test]
    fn load_never_panics_on_any_bytes(bytes in vec(any::<u8>(), 0..400)) {
        let dir = TempDir::new("dataset_bytes");
        let path = dir.path().join("any.jsonl");
        std::fs::write(&path, &bytes).unwrap();
        let _ = Dataset::load(&path);
    }

    #[test]
    fn parse_never_panics_on_any_json_in_a_cases_fields(
        id in any_json(),
        user_id in any_json(),
        kind in 0..KINDS.len(),
        value in any_json(),
        path in any_json(),
        weight in any_json(),
        extra in any_json(),
    ) {
        let case = json!({
            "id": id,
            "context": {"user_id": user_id, "variables": extra},
            "assertions": [
                {"type": KINDS[kind], "value": value.clone(), "path": path, "equals": value, "weight": weight}
            ]
        });
        let _ = Dataset::parse("any.jsonl", &case.to_string());
    }

    #[test]
    fn every_problem_names_the_file_and_a_line_of_it(lines in vec(any_json(), 1..6)) {
        let text: Vec<String> = lines.iter().map(Value::to_string).collect();
        if let Err(prompt_config::EvalError::InvalidDataset { problems }) =
            Dataset::parse("any.jsonl", &text.join("\n"))
        {
            for problem in problems {
                prop_assert_eq!(&problem.file, "any.jsonl");
                prop_assert!(problem.line <= lines.len());
                prop_assert!(problem.pointer.is_empty() || problem.pointer.starts_with('/'));
            }
        }
    }

    #[test]
    fn a_valid_case_round_trips(
        id in "[A-Za-z0-9_-]{1,24}",
        user in ".{0,16}",
        text in ".{1,24}",
        pattern in "[a-z]{1,8}",
        case_sensitive in any::<bool>(),
        weight in share(10_000),
        threshold in proptest::option::of(share(1_000)),
        pass_rate in proptest::option::of(share(1_000)),
        max_tokens in any::<u32>(),
        tags in vec("[a-z]{1,8}", 0..3),
        variable in any_json(),
    ) {
        let mut tags = tags;
        tags.sort();
        tags.dedup();
        let mut case = json!({
            "id": id,
            "tags": tags,
            "context": {"user_id": user, "attributes": {}, "variables": {"v": variable}},
            "assertions": [
                {"type": "contains", "value": text, "case_sensitive": case_sensitive, "weight": weight},
                {"type": "regex", "value": pattern},
                {"type": "json_path", "path": "$.paths[*].role", "contains": text, "versions": ["2.2.0"]},
                {"type": "max_tokens", "value": max_tokens},
            ],
        });
        if let Some(threshold) = threshold {
            case["threshold"] = json!(threshold);
        }
        if let Some(pass_rate) = pass_rate {
            case["pass_rate"] = json!(pass_rate);
        }
        let first = Dataset::parse("a.jsonl", &case.to_string()).unwrap();
        let written = first.cases[0].to_json();
        let again = Dataset::parse("a.jsonl", &written.to_string()).unwrap();
        prop_assert_eq!(&again.cases[0].to_json(), &written);
        prop_assert_eq!(&again.cases[0].id, &id);
        prop_assert_eq!(again.cases[0].threshold, threshold);
        prop_assert_eq!(again.cases[0].pass_rate, pass_rate);
        prop_assert_eq!(&again.cases[0].context, &first.cases[0].context);
        prop_assert_eq!(again.cases[0].assertions[0].weight, weight);
    }

    // H6: ids are printed raw in reports and error lines.
    #[test]
    fn an_id_is_refused_at_id_exactly_when_it_holds_a_control_character(
        id in prop_oneof![".{1,24}", r"[a-z]{0,4}[\x00-\x1F\x7F-\x9F][a-z ]{0,4}"],
    ) {
        let case = json!({
            "id": id,
            "context": {"user_id": "u"},
            "assertions": [{"type": "is_json"}],
        });
        let parsed = Dataset::parse("any.jsonl", &case.to_string());
        if id.chars().any(char::is_control) {
            let Err(prompt_config::EvalError::InvalidDataset { problems }) = parsed else {
                panic!("{id:?} was accepted");
            };
            prop_assert!(problems.iter().any(|problem| problem.pointer == "/id"
                && problem.message.contains("control character")));
        } else {
            prop_assert!(parsed.is_ok(), "{:?}: {:?}", id, parsed);
        }
    }
}
