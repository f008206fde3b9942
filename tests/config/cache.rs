//! The `cache` object of a feature document (issue 11): bad values named by file and JSON
//! pointer, and a version's settings replacing the feature's.

use prompt_config::{Context, Engine};
use serde_json::json;

use crate::broken_configs::{FEATURE, assert_problem};
use crate::support::fixture::{Fixture, profile};

fn with_cache(cache: serde_json::Value) -> Fixture {
    let fixture = Fixture::new();
    fixture.edit_feature(|feature| feature["cache"] = cache);
    fixture
}

#[test]
fn a_zero_ttl_is_refused_at_its_pointer() {
    let fixture = with_cache(json!({"ttl_seconds": 0}));
    assert_problem(&fixture, FEATURE, "/cache/ttl_seconds", "minimum of 1");
}

#[test]
fn a_missing_ttl_is_refused_while_the_cache_is_enabled() {
    let fixture = with_cache(json!({"partition_by": ["sector"]}));
    assert_problem(&fixture, FEATURE, "/cache", "ttl_seconds");
}

#[test]
fn a_disabled_cache_needs_no_ttl() {
    let fixture = with_cache(json!({"enabled": false}));
    Engine::open(fixture.options()).unwrap();
}

#[test]
fn a_rounding_step_of_zero_is_refused_at_its_pointer() {
    let fixture = with_cache(json!({"ttl_seconds": 60, "normalize": {"round_to": 0}}));
    assert_problem(&fixture, FEATURE, "/cache/normalize/round_to", "0");
}

#[test]
fn a_per_variable_rule_of_the_wrong_type_is_refused_at_its_pointer() {
    let fixture = with_cache(json!({
        "ttl_seconds": 60,
        "normalize": {"variables": {"current_role": {"trim": "yes"}}}
    }));
    assert_problem(
        &fixture,
        FEATURE,
        "/cache/normalize/variables/current_role/trim",
        "\"yes\"",
    );
}

#[test]
fn an_unknown_cache_setting_is_refused_naming_it() {
    let fixture = with_cache(json!({"ttl_seconds": 60, "ttl": 5}));
    assert_problem(&fixture, FEATURE, "/cache", "ttl");
}

#[test]
fn a_partition_attribute_listed_twice_is_refused() {
    let fixture = with_cache(json!({"ttl_seconds": 60, "partition_by": ["sector", "sector"]}));
    assert_problem(&fixture, FEATURE, "/cache/partition_by", "unique");
}

#[test]
fn a_key_variable_no_version_declares_is_named_with_its_index() {
    let fixture = with_cache(json!({"ttl_seconds": 60, "key_variables": ["sector", "salary"]}));
    let problems = assert_problem(
        &fixture,
        FEATURE,
        "/cache/key_variables/1",
        "key variable \"salary\" is not declared",
    );
    let at_pointer = problems
        .iter()
        .filter(|problem| problem.pointer == "/cache/key_variables/1")
        .count();
    assert_eq!(at_pointer, 1, "reported once, not once per version");
}

#[test]
fn a_key_variable_of_a_version_cache_is_checked_against_that_version() {
    let fixture = Fixture::new();
    fixture.edit_feature(|feature| {
        feature["versions"]["1.0.0"]["cache"] =
            json!({"ttl_seconds": 60, "key_variables": ["years_experience"]});
    });
    assert_problem(
        &fixture,
        FEATURE,
        "/versions/1.0.0/cache/key_variables/0",
        "not declared by version 1.0.0",
    );
}

#[test]
fn a_normalised_variable_no_version_declares_is_named() {
    let fixture = with_cache(json!({
        "ttl_seconds": 60,
        "normalize": {"variables": {"salary": {"round_to": 1000}}}
    }));
    assert_problem(
        &fixture,
        FEATURE,
        "/cache/normalize/variables/salary",
        "salary",
    );
}

/// The trial's example: the shipped chains use temperature 0.4, so `{"ttl_seconds": 600}`
/// could never store an answer.
#[test]
fn a_cache_on_a_chain_with_temperature_above_zero_is_refused_at_cache() {
    let fixture = with_cache(json!({"ttl_seconds": 600}));
    assert_problem(
        &fixture,
        FEATURE,
        "/cache",
        "can never store an answer of version 1.0.0",
    );
}

#[test]
fn a_version_cache_on_a_chain_with_an_unset_temperature_is_refused_at_the_version_cache() {
    let fixture = Fixture::new();
    fixture.edit_feature(|feature| {
        feature["versions"]["1.0.0"]["model"] =
            json!({"provider": "openai", "name": "gpt-4o-mini"});
        feature["versions"]["1.0.0"]["cache"] = json!({"ttl_seconds": 60});
    });
    assert_problem(
        &fixture,
        FEATURE,
        "/versions/1.0.0/cache",
        "temperature unset (the provider's default",
    );
}

#[test]
fn a_cache_on_a_chain_with_temperature_zero_everywhere_loads() {
    let fixture = with_cache(json!({"ttl_seconds": 600}));
    fixture.edit_feature(|feature| {
        let text = feature
            .to_string()
            .replace("\"temperature\":0.4", "\"temperature\":0.0");
        let text = text
            .replace("\"temperature\":0.3", "\"temperature\":0.0")
            .replace("\"temperature\":0.2", "\"temperature\":0.0");
        *feature = serde_json::from_str(&text).unwrap();
    });
    Engine::open(fixture.options()).unwrap();
}

#[test]
fn a_disabled_cache_on_a_chain_above_zero_loads() {
    let fixture = with_cache(json!({"enabled": false}));
    Engine::open(fixture.options()).unwrap();
}

/// The trial's example: with `[]` "Nurse" and "Astronaut" got the same cached text.
#[test]
fn empty_key_variables_are_refused_at_their_pointer() {
    let fixture = with_cache(json!({
        "ttl_seconds": 60, "key_variables": [], "allow_temperature_above_zero": true
    }));
    assert_problem(
        &fixture,
        FEATURE,
        "/cache/key_variables",
        "every input would share one cached answer",
    );
}

#[test]
fn empty_key_variables_of_a_version_cache_are_refused_at_its_pointer() {
    let fixture = Fixture::new();
    fixture.edit_feature(|feature| {
        feature["versions"]["2.0.0"]["cache"] = json!({
            "ttl_seconds": 60, "key_variables": [], "allow_temperature_above_zero": true
        });
    });
    assert_problem(
        &fixture,
        FEATURE,
        "/versions/2.0.0/cache/key_variables",
        "key_variables is empty",
    );
}

fn navigator(engine: &Engine, years: u32) -> prompt_config::client::Completion {
    let mut variables = profile();
    variables.insert("years_experience".into(), years.into());
    let context = Context::new("u").with_variables(variables);
    engine.complete("career_path_navigator", &context).unwrap()
}

#[test]
fn a_version_cache_replaces_the_feature_cache() {
    let fixture = with_cache(json!({"ttl_seconds": 3600, "allow_temperature_above_zero": true}));
    fixture.edit_feature(|feature| {
        let active = feature["active_version"].as_str().unwrap().to_string();
        feature["versions"][active.as_str()]["cache"] = json!({"enabled": false});
    });
    let engine = Engine::open(fixture.options().with_mock(true)).unwrap();
    navigator(&engine, 4);
    assert!(navigator(&engine, 4).cache.is_none());
}

#[test]
fn a_version_may_cache_when_the_feature_does_not() {
    let fixture = Fixture::new();
    fixture.edit_feature(|feature| {
        let active = feature["active_version"].as_str().unwrap().to_string();
        feature["versions"][active.as_str()]["cache"] =
            json!({"ttl_seconds": 3600, "allow_temperature_above_zero": true});
    });
    let engine = Engine::open(fixture.options().with_mock(true)).unwrap();
    navigator(&engine, 4);
    assert!(navigator(&engine, 4).cache.is_some());
}

#[test]
fn years_of_experience_rounded_to_five_share_an_entry() {
    let fixture = with_cache(json!({
        "ttl_seconds": 3600,
        "allow_temperature_above_zero": true,
        "normalize": {"variables": {"years_experience": {"round_to": 5}}}
    }));
    let engine = Engine::open(fixture.options().with_mock(true)).unwrap();
    navigator(&engine, 4);
    assert!(
        navigator(&engine, 6).cache.is_some(),
        "4 and 6 both round to 5"
    );
    assert!(navigator(&engine, 8).cache.is_none(), "8 rounds to 10");
}
