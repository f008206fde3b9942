//! Runs GrowthBook's language-agnostic SDK suite (spec 0.5.4) against
//! `prompt_config::targeting`, so bucketing and targeting stay bit-compatible
//! with every other GrowthBook SDK. The cases live outside the crate and are
//! read at test time; see `shared/conformance/growthbook/README.md`.

use std::cmp::Ordering;

use prompt_config::targeting::*;
use serde_json::Value;

/// Loads the shared suite; a missing file is a broken checkout, so fail loudly.
fn suite() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/conformance/growthbook/cases.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let suite: Value = serde_json::from_str(&text).expect("cases.json is valid JSON");
    assert_eq!(suite["specVersion"], "0.5.4", "unexpected suite version");
    suite
}

fn section<'a>(suite: &'a Value, name: &str) -> &'a [Value] {
    suite[name]
        .as_array()
        .unwrap_or_else(|| panic!("section {name} is not an array"))
}

/// Fails with every mismatch listed, and guards against a silently short run.
fn report(section: &str, expected_count: usize, ran: usize, failures: &[String]) {
    assert_eq!(
        ran, expected_count,
        "{section}: ran {ran} cases, the README lists {expected_count}"
    );
    assert!(
        failures.is_empty(),
        "{section}: {} of {ran} cases failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

/// The harness floors every number to 8 decimals before comparing.
fn floor8(x: f64) -> f64 {
    (x * 1e8).floor() / 1e8
}

fn f64s(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("array of numbers")
        .iter()
        .map(|v| v.as_f64().expect("number"))
        .collect()
}

fn pairs(value: &Value) -> Vec<(f64, f64)> {
    value
        .as_array()
        .expect("array of ranges")
        .iter()
        .map(|r| {
            let r = f64s(r);
            (r[0], r[1])
        })
        .collect()
}

#[test]
fn hash_matches_every_growthbook_case() {
    let suite = suite();
    let cases = section(&suite, "hash");
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let seed = case[0].as_str().expect("seed");
        let value = case[1].as_str().expect("value");
        let version = u32::try_from(case[2].as_u64().expect("version")).expect("small version");
        let expected = case[3].as_f64();
        let got = hash(seed, value, version);
        if got != expected {
            failures.push(format!(
                "#{i} hash({seed:?}, {value:?}, v{version}): expected {expected:?}, got {got:?}"
            ));
        }
    }
    report("hash", 15, cases.len(), &failures);
}

#[test]
fn bucket_ranges_match_every_growthbook_case() {
    let suite = suite();
    let cases = section(&suite, "getBucketRange");
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let name = case[0].as_str().expect("name");
        let args = &case[1];
        let n = usize::try_from(args[0].as_u64().expect("numVariations")).expect("usize");
        let coverage = args[1].as_f64();
        let weights = (!args[2].is_null()).then(|| f64s(&args[2]));
        let got: Vec<(f64, f64)> = bucket_ranges(n, coverage, weights.as_deref())
            .into_iter()
            .map(|(a, b)| (floor8(a), floor8(b)))
            .collect();
        let expected: Vec<(f64, f64)> = pairs(&case[2])
            .into_iter()
            .map(|(a, b)| (floor8(a), floor8(b)))
            .collect();
        if got != expected {
            failures.push(format!("#{i} {name:?}: expected {expected:?}, got {got:?}"));
        }
    }
    report("getBucketRange", 13, cases.len(), &failures);
}

#[test]
fn choose_variation_matches_every_growthbook_case() {
    let suite = suite();
    let cases = section(&suite, "chooseVariation");
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let name = case[0].as_str().expect("name");
        let n = case[1].as_f64().expect("n");
        let ranges = pairs(&case[2]);
        let expected = case[3].as_i64().expect("index");
        let got = choose_variation(n, &ranges).map_or(-1, |v| i64::try_from(v).expect("i64"));
        if got != expected {
            failures.push(format!("#{i} {name:?}: expected {expected}, got {got}"));
        }
    }
    report("chooseVariation", 13, cases.len(), &failures);
}

#[test]
fn in_namespace_matches_every_growthbook_case() {
    let suite = suite();
    let cases = section(&suite, "inNamespace");
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let name = case[0].as_str().expect("name");
        let user = case[1].as_str().expect("user id");
        let namespace = Namespace {
            id: case[2][0].as_str().expect("namespace id").to_owned(),
            start: case[2][1].as_f64().expect("start"),
            end: case[2][2].as_f64().expect("end"),
        };
        let expected = case[3].as_bool().expect("bool");
        let got = in_namespace(user, &namespace);
        if got != expected {
            failures.push(format!("#{i} {name:?}: expected {expected}, got {got}"));
        }
    }
    report("inNamespace", 16, cases.len(), &failures);
}

#[test]
fn equal_weights_match_every_growthbook_case() {
    let suite = suite();
    let cases = section(&suite, "getEqualWeights");
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let n = case[0].as_i64().expect("n");
        // JS accepts negative counts and returns []; the Rust API takes usize.
        let got: Vec<f64> = equal_weights(usize::try_from(n).unwrap_or(0))
            .into_iter()
            .map(floor8)
            .collect();
        let expected: Vec<f64> = f64s(&case[1]).into_iter().map(floor8).collect();
        if got != expected {
            failures.push(format!("#{i} n={n}: expected {expected:?}, got {got:?}"));
        }
    }
    report("getEqualWeights", 6, cases.len(), &failures);
}

#[test]
fn eval_condition_matches_every_growthbook_case() {
    let suite = suite();
    let cases = section(&suite, "evalCondition");
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let name = case[0].as_str().expect("name");
        let attributes = case[2].as_object().expect("attributes object");
        let expected = case[3].as_bool().expect("bool");
        let (condition, _problems) = Condition::compile(&case[1]);
        let got = condition.matches(attributes);
        if got != expected {
            failures.push(format!(
                "#{i} {name:?}: condition {} with attributes {}: expected {expected}, got {got}",
                case[1], case[2]
            ));
        }
    }
    report("evalCondition", 143, cases.len(), &failures);
}

#[test]
fn version_compare_matches_every_growthbook_case() {
    let suite = suite();
    let groups = suite["versionCompare"]
        .as_object()
        .expect("object of groups");
    let mut failures = Vec::new();
    let mut ran = 0;
    for (kind, cases) in groups {
        for (i, case) in cases.as_array().expect("cases").iter().enumerate() {
            ran += 1;
            let expected = case[2].as_bool().expect("bool");
            let a = padded_version_string(&case[0]);
            let b = padded_version_string(&case[1]);
            // Plain `str` order equals JS order here: padded versions are ASCII.
            let checks: Vec<(&str, bool, bool)> = match kind.as_str() {
                "eq" => vec![
                    ("A == B", a == b, expected),
                    ("A != B", a != b, !expected),
                    ("A >= B", a >= b, expected),
                    ("A <= B", a <= b, expected),
                ],
                "gt" => vec![("A > B", a > b, expected), ("A >= B", a >= b, expected)],
                "lt" => vec![("A < B", a < b, expected), ("A <= B", a <= b, expected)],
                other => panic!("unknown versionCompare group {other}"),
            };
            for (check, got, want) in checks {
                if got != want {
                    failures.push(format!(
                        "{kind}#{i} {} vs {} ({a:?} vs {b:?}): `{check}` should be {want}",
                        case[0], case[1]
                    ));
                }
            }
            let ordering = compare_versions(&case[0], &case[1]);
            let consistent = match kind.as_str() {
                "eq" => (ordering == Ordering::Equal) == expected,
                "gt" => (ordering == Ordering::Greater) == expected,
                _ => (ordering == Ordering::Less) == expected,
            };
            if !consistent {
                failures.push(format!(
                    "{kind}#{i} {} vs {}: compare_versions gave {ordering:?}",
                    case[0], case[1]
                ));
            }
        }
    }
    report("versionCompare", 63, ran, &failures);
}
