//! The error kind contract: codes and names are unique and stable, and every kind reaches the C
//! header, the gem's exception classes and README's *Errors* table. Adding a kind to
//! `error_kinds!` makes these tests fail until each binding carries it.

use std::collections::BTreeSet;
use std::path::Path;

use super::Error;
use crate::{ErrorKind, RETIRED_CODES};

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn codes_are_unique() {
    let codes: BTreeSet<u16> = ErrorKind::ALL.iter().map(|kind| kind.code()).collect();
    assert_eq!(codes.len(), ErrorKind::ALL.len());
}

#[test]
fn names_are_unique_and_snake_case() {
    let names: BTreeSet<&str> = ErrorKind::ALL.iter().map(|kind| kind.as_str()).collect();
    assert_eq!(names.len(), ErrorKind::ALL.len());
    for name in names {
        let snake = !name.is_empty()
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && !name.ends_with('_')
            && !name.contains("__")
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        assert!(snake, "{name:?} is not snake_case");
    }
}

#[test]
fn all_lists_the_kinds_in_code_order() {
    let codes: Vec<u16> = ErrorKind::ALL.iter().map(|kind| kind.code()).collect();
    let mut sorted = codes.clone();
    sorted.sort_unstable();
    assert_eq!(codes, sorted);
}

#[test]
fn codes_sit_in_their_area_and_never_in_a_retired_or_reserved_range() {
    for kind in ErrorKind::ALL {
        let code = kind.code();
        assert!((100..1000).contains(&code), "{kind} = {code}");
        assert!(
            !(500..600).contains(&code) || *kind == ErrorKind::StateUnavailable,
            "5xx is for shared state: {kind}"
        );
        for (range, _) in RETIRED_CODES {
            assert!(!range.contains(&code), "{kind} reuses retired code {code}");
        }
    }
    assert_eq!(ErrorKind::InvalidArgument.code() / 100, 9);
    assert_eq!(ErrorKind::Panic.code() / 100, 9);
    assert_eq!(ErrorKind::BudgetExceeded.code() / 100, 4);
    assert_eq!(ErrorKind::Timeout.code() / 100, 3);
    assert_eq!(ErrorKind::UnknownFeature.code() / 100, 2);
    assert_eq!(ErrorKind::ConfigInvalid.code() / 100, 1);
}

#[test]
fn the_shipped_codes_do_not_change() {
    // Fixed forever: a failing line here means a shipped code was changed.
    let shipped = [
        ("config_invalid", 101),
        ("prompt_integrity", 102),
        ("unknown_feature", 201),
        ("unknown_version", 202),
        ("missing_variable", 203),
        ("invalid_variable", 204),
        ("render_failed", 205),
        ("provider_error", 301),
        ("rate_limited", 302),
        ("timeout", 303),
        ("all_providers_failed", 304),
        ("circuit_open", 305),
        ("missing_api_key", 306),
        ("budget_exceeded", 401),
        ("io", 601),
        ("invalid_feedback", 602),
        ("alert_delivery_failed", 603),
        ("invalid_argument", 901),
        ("panic", 902),
    ];
    for (name, code) in shipped {
        let kind = ErrorKind::from_name(name).unwrap_or_else(|| panic!("{name} was removed"));
        assert_eq!(kind.code(), code, "{name}");
    }
}

#[test]
fn names_and_codes_lead_back_to_their_kind() {
    for kind in ErrorKind::ALL {
        assert_eq!(ErrorKind::from_name(kind.as_str()), Some(*kind));
        assert_eq!(ErrorKind::from_code(kind.code()), Some(*kind));
        assert_eq!(kind.to_string(), kind.as_str());
        assert_eq!(kind.as_c_str().to_str().ok(), Some(kind.as_str()));
        assert_eq!(serde_json::json!(kind), serde_json::json!(kind.as_str()));
        assert!(*kind == kind.as_str());
    }
    assert_eq!(ErrorKind::from_name("internal"), None);
    assert_eq!(ErrorKind::from_code(18), None);
}

#[test]
fn only_failures_that_time_or_the_provider_may_fix_are_retryable() {
    let retryable: Vec<&str> = ErrorKind::ALL
        .iter()
        .filter(|kind| kind.is_retryable())
        .map(|kind| kind.as_str())
        .collect();
    assert_eq!(
        retryable,
        [
            "provider_error",
            "rate_limited",
            "timeout",
            "all_providers_failed",
            "circuit_open",
            "stream_incomplete",
            "invalid_output",
            "state_unavailable",
            "alert_delivery_failed"
        ]
    );
}

#[test]
fn error_kind_is_typed_for_each_area() {
    let unknown = Error::from(crate::resolve::ResolveError::UnknownFeature {
        feature: "nope".into(),
        known: vec![],
    });
    assert_eq!(unknown.kind(), ErrorKind::UnknownFeature);
    assert!(!unknown.kind().is_retryable());
    let feedback = Error::from(crate::telemetry::TelemetryError::InvalidFeedback {
        message: "no metric".into(),
    });
    assert_eq!(feedback.kind(), ErrorKind::InvalidFeedback);
}

#[test]
fn every_kind_is_a_status_of_the_c_header_with_its_code() {
    let header = read("include/prompt_config.h");
    let start = header
        .find("typedef enum pc_status {")
        .expect("the header declares pc_status");
    let body = &header[start..];
    let body = &body[..body.find('}').expect("pc_status ends")];
    let values: Vec<(String, u16)> = body
        .lines()
        .filter_map(|line| {
            let (name, value) = line.trim().trim_end_matches(',').split_once(" = ")?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect();
    for kind in ErrorKind::ALL {
        let name = format!("PC_{}", kind.as_str().to_ascii_uppercase());
        assert!(
            values.contains(&(name.clone(), kind.code())),
            "include/prompt_config.h lacks {name} = {}: add it to src/c_api/status.rs and run \
             `PC_UPDATE_HEADER=1 cargo test --test c_abi header`",
            kind.code()
        );
    }
    assert_eq!(
        values.len(),
        ErrorKind::ALL.len() + 1,
        "pc_status has exactly PC_OK and one value per kind: {values:?}"
    );
}

#[test]
fn every_kind_has_an_exception_class_in_the_gem() {
    let ruby = read("ruby/lib/prompt_config/errors.rb");
    let start = ruby
        .find("Error::KINDS = {")
        .expect("errors.rb defines Error::KINDS");
    let table = &ruby[start..];
    let table = &table[..table.find('}').expect("Error::KINDS ends")];
    let mapping: Vec<(&str, &str)> = table
        .lines()
        .filter_map(|line| {
            let (name, class) = line.trim().trim_end_matches(',').split_once(" => ")?;
            Some((name.trim_matches('"'), class.trim()))
        })
        .collect();
    for kind in ErrorKind::ALL {
        let class = mapping
            .iter()
            .find(|(name, _)| *name == kind.as_str())
            .map(|(_, class)| *class)
            .unwrap_or_else(|| {
                panic!(
                    "ruby/lib/prompt_config/errors.rb: Error::KINDS lacks \"{}\"",
                    kind.as_str()
                )
            });
        assert!(
            ruby.contains(&format!("class {class} < ")),
            "errors.rb maps {kind} to {class}, which it does not define"
        );
    }
    for (name, _) in &mapping {
        assert!(
            ErrorKind::from_name(name).is_some(),
            "errors.rb maps {name:?}, which is no ErrorKind"
        );
    }
}

#[test]
fn every_kind_is_in_the_readme_errors_table_with_its_code_and_retryability() {
    let readme = read("README.md");
    let start = readme.find("\n## Errors\n").expect("README has ## Errors");
    let section = &readme[start + 1..];
    let section = &section[..section[1..]
        .find("\n## ")
        .map_or(section.len(), |end| end + 1)];
    let rows: Vec<Vec<&str>> = section
        .lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| line.split('|').map(str::trim).collect())
        .collect();
    for kind in ErrorKind::ALL {
        let name = format!("`{}`", kind.as_str());
        let row = rows
            .iter()
            .find(|row| row.get(1) == Some(&name.as_str()))
            .unwrap_or_else(|| panic!("README's Errors table lacks {name}"));
        assert_eq!(
            row.get(2),
            Some(&kind.code().to_string().as_str()),
            "{name}"
        );
        let retryable = if kind.is_retryable() { "yes" } else { "no" };
        assert_eq!(row.get(3), Some(&retryable), "{name}");
    }
    assert_eq!(rows.len(), ErrorKind::ALL.len(), "one row per kind");
}
