//! A corpus of broken configurations, one per kind of mistake, each checked for the exact file
//! and JSON pointer of the problem it must produce.

use std::fs;

use crate::support::fixture::Fixture;
use prompt_config::config::Problem;
use prompt_config::{Engine, Error};
use serde_json::{Value, json};

/// Loads the fixture and returns every problem reported.
pub(crate) fn problems(fixture: &Fixture) -> (Vec<Problem>, &'static str) {
    match Engine::open(fixture.options()) {
        Ok(_) => panic!("the broken configuration loaded"),
        Err(error) => {
            let kind = error.kind().as_str();
            let Error::Config(config) = error else {
                panic!("not a config error: {error}")
            };
            (config.problems().to_vec(), kind)
        }
    }
}

/// Asserts one problem sits at `pointer` in a file ending with `file_suffix`, mentioning `text`.
pub(crate) fn assert_problem(
    fixture: &Fixture,
    file_suffix: &str,
    pointer: &str,
    text: &str,
) -> Vec<Problem> {
    let (problems, _) = problems(fixture);
    assert!(
        problems
            .iter()
            .any(|problem| problem.file.ends_with(file_suffix)
                && problem.pointer == pointer
                && problem.message.contains(text)),
        "expected a problem in *{file_suffix} at {pointer:?} mentioning {text:?}, got:\n{}",
        problems
            .iter()
            .map(|problem| format!("  {problem}\n"))
            .collect::<String>()
    );
    problems
}

pub(crate) const FEATURE: &str = "features/career_path_navigator.json";

#[test]
fn shipped_configuration_is_valid() {
    let fixture = Fixture::new();
    Engine::open(fixture.options()).unwrap();
}

#[test]
fn invalid_json_names_file_and_line() {
    let fixture = Fixture::new();
    fs::write(
        fixture.feature_path(),
        "{\n  \"feature\": \"career_path_navigator\",\n}",
    )
    .unwrap();
    assert_problem(&fixture, FEATURE, "", "invalid JSON at line 3");
}

#[test]
fn unknown_property_is_rejected_by_the_schema() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| document["versions"]["2.0.0"]["temprature"] = json!(0.3));
    assert_problem(&fixture, FEATURE, "/versions/2.0.0", "temprature");
}

#[test]
fn wrongly_typed_parameter_is_rejected_by_the_schema() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| document["model"]["parameters"]["temperature"] = json!("hot"));
    assert_problem(
        &fixture,
        FEATURE,
        "/model/parameters/temperature",
        "\"hot\"",
    );
}

#[test]
fn missing_required_property_is_rejected_by_the_schema() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| {
        document.as_object_mut().unwrap().remove("active_version");
    });
    assert_problem(&fixture, FEATURE, "", "active_version");
}

#[test]
fn version_key_must_be_a_semantic_version() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| {
        let versions = document["versions"].as_object_mut().unwrap();
        let spec = versions["1.0.0"].clone();
        versions.insert("v1".into(), spec);
    });
    assert_problem(&fixture, FEATURE, "/versions", "v1");
}

#[test]
fn active_version_must_exist() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| document["active_version"] = json!("9.9.9"));
    assert_problem(
        &fixture,
        FEATURE,
        "/active_version",
        "unknown version \"9.9.9\"",
    );
}

#[test]
fn active_version_must_not_be_a_draft() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| document["active_version"] = json!("3.1.0"));
    assert_problem(&fixture, FEATURE, "/active_version", "draft");
}

#[test]
fn experiment_variant_must_name_an_existing_version() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| {
        document["experiments"][0]["variants"][1]["version"] = json!("2.9.0")
    });
    assert_problem(
        &fixture,
        FEATURE,
        "/experiments/0/variants/1/version",
        "unknown version \"2.9.0\"",
    );
}

#[test]
fn rollout_must_not_serve_a_draft() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| document["rollout"]["version"] = json!("3.1.0"));
    assert_problem(&fixture, FEATURE, "/rollout/version", "draft");
}

#[test]
fn unknown_provider_is_reported_where_it_is_named() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| document["fallbacks"][0]["provider"] = json!("azure"));
    assert_problem(
        &fixture,
        FEATURE,
        "/fallbacks/0/provider",
        "unknown provider \"azure\"",
    );
}

#[test]
fn unknown_model_is_reported_where_it_is_named() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| document["rules"][0]["model"]["name"] = json!("claude-9"));
    assert_problem(
        &fixture,
        FEATURE,
        "/rules/0/model/name",
        "unknown model \"claude-9\"",
    );
}

#[test]
fn experiment_weights_must_sum_to_one() {
    let fixture = Fixture::new();
    fixture
        .edit_feature(|document| document["experiments"][0]["variants"][1]["weight"] = json!(0.4));
    assert_problem(&fixture, FEATURE, "/experiments/0/variants", "sum to 0.9");
}

#[test]
fn experiment_keys_must_be_unique() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| {
        let copy = document["experiments"][0].clone();
        document["experiments"].as_array_mut().unwrap().push(copy);
    });
    assert_problem(
        &fixture,
        FEATURE,
        "/experiments/1/key",
        "duplicate experiment key",
    );
}

#[test]
fn namespace_range_must_not_be_empty() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| document["experiments"][0]["namespace"]["end"] = json!(0.0));
    assert_problem(&fixture, FEATURE, "/experiments/0/namespace", "empty");
}

#[test]
fn invalid_regex_in_a_condition_is_reported_at_the_operator() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| {
        document["rules"][0]["condition"] = json!({"sector": {"$regex": "health("}})
    });
    assert_problem(&fixture, FEATURE, "/rules/0/condition/sector/$regex", "");
}

#[test]
fn unknown_condition_operator_is_reported() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| {
        document["experiments"][0]["condition"] = json!({"sector": {"$neq": "x"}})
    });
    assert_problem(
        &fixture,
        FEATURE,
        "/experiments/0/condition/sector/$neq",
        "",
    );
}

#[test]
fn missing_template_file_is_reported_at_its_reference() {
    let fixture = Fixture::new();
    fs::remove_file(fixture.prompt_path("1.0.0", "user.j2")).unwrap();
    assert_problem(
        &fixture,
        FEATURE,
        "/versions/1.0.0/messages/1/template",
        "cannot be opened",
    );
}

#[test]
fn template_reference_may_not_climb_out_with_dot_dot() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| {
        document["versions"]["3.1.0"]["messages"][0]["template"] = json!("../2.0.0/system.j2");
    });
    assert_problem(
        &fixture,
        FEATURE,
        "/versions/3.1.0/messages/0/template",
        "\"..\"",
    );
}

#[test]
fn template_reference_may_not_be_absolute() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| {
        document["versions"]["3.1.0"]["messages"][0]["template"] = json!("/etc/passwd")
    });
    assert_problem(
        &fixture,
        FEATURE,
        "/versions/3.1.0/messages/0/template",
        "relative",
    );
}

#[test]
fn template_symlink_out_of_the_prompts_directory_is_refused() {
    let fixture = Fixture::new();
    let outside = fixture.root.join("outside.j2");
    fs::write(&outside, "secret").unwrap();
    let link = fixture.prompt_path("3.1.0", "system.j2");
    fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    assert_problem(
        &fixture,
        FEATURE,
        "/versions/3.1.0/messages/0/template",
        "outside the prompts directory",
    );
}

#[test]
fn version_folder_symlinked_out_of_the_prompts_directory_is_refused() {
    let fixture = Fixture::new();
    let folder = fixture.prompt_path("3.1.0", "");
    let outside = fixture.root.join("outside_version");
    fs::rename(&folder, &outside).unwrap();
    std::os::unix::fs::symlink(
        &outside,
        folder.components().collect::<std::path::PathBuf>(),
    )
    .unwrap();
    assert_problem(
        &fixture,
        FEATURE,
        "/versions/3.1.0/messages/0/template",
        "outside the prompts directory",
    );
}

#[test]
fn template_syntax_error_names_the_template_file() {
    let fixture = Fixture::new();
    fs::write(
        fixture.prompt_path("3.1.0", "user.j2"),
        "Role: {{ current_role }\n",
    )
    .unwrap();
    assert_problem(&fixture, "3.1.0/user.j2", "", "syntax error");
}

#[test]
fn a_syntax_error_is_reported_for_each_template_with_that_text() {
    let fixture = Fixture::new();
    fixture.edit_feature(|feature| {
        let draft = feature["versions"]["3.1.0"].clone();
        feature["versions"]["3.2.0"] = draft;
    });
    let copy = fixture.prompts_dir().join("career_path_navigator/3.2.0");
    fs::create_dir_all(&copy).unwrap();
    for file in ["system.j2", "assistant_example.j2"] {
        fs::copy(fixture.prompt_path("3.1.0", file), copy.join(file)).unwrap();
    }
    let broken = "Role: {{ current_role }\n";
    fs::write(fixture.prompt_path("3.1.0", "user.j2"), broken).unwrap();
    fs::write(copy.join("user.j2"), broken).unwrap();
    assert_problem(&fixture, "3.1.0/user.j2", "", "syntax error");
    assert_problem(&fixture, "3.2.0/user.j2", "", "syntax error");
}

#[test]
fn a_template_without_variables_that_cannot_render_fails_to_load_naming_it() {
    let fixture = Fixture::new();
    // Reads no variable, so it is rendered at load, where strict undefined fails it.
    fs::write(
        fixture.prompt_path("3.1.0", "system.j2"),
        "{% set items = [] %}{{ items.missing }}\n",
    )
    .unwrap();
    assert_problem(
        &fixture,
        "career_path_navigator/3.1.0/system.j2",
        "",
        "undefined",
    );
}

#[test]
fn template_using_an_undeclared_variable_fails_to_load() {
    let fixture = Fixture::new();
    fs::write(
        fixture.prompt_path("3.1.0", "user.j2"),
        "{{ current_role }} wants {{ salary }}\n",
    )
    .unwrap();
    assert_problem(
        &fixture,
        FEATURE,
        "/versions/3.1.0/variables/properties",
        "\"salary\"",
    );
}

#[test]
fn variables_declaration_must_be_a_valid_schema() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| {
        document["versions"]["3.1.0"]["variables"]["properties"]["goals"]["type"] = json!("text");
    });
    assert_problem(
        &fixture,
        FEATURE,
        "/versions/3.1.0/variables",
        "not a valid JSON Schema",
    );
}

#[test]
fn changed_released_file_is_an_integrity_problem_naming_the_file() {
    let fixture = Fixture::new();
    let path = fixture.prompt_path("2.0.0", "system.j2");
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str("Be brief.\n");
    fs::write(&path, text).unwrap();
    let problems = assert_problem(
        &fixture,
        FEATURE,
        "/versions/2.0.0/sha256/system.j2",
        "2.0.0/system.j2 changed",
    );
    assert!(problems.iter().all(|problem| problem.integrity));
    assert_eq!(
        Engine::open(fixture.options()).unwrap_err().kind(),
        "prompt_integrity"
    );
}

#[test]
fn editing_a_draft_needs_no_hash() {
    let fixture = Fixture::new();
    fs::write(
        fixture.prompt_path("3.1.0", "system.j2"),
        "A new draft system prompt.\n",
    )
    .unwrap();
    Engine::open(fixture.options()).unwrap();
}

#[test]
fn released_version_needs_a_hash_for_every_template() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| {
        document["versions"]["1.0.0"]["sha256"]
            .as_object_mut()
            .unwrap()
            .remove("user.j2");
    });
    assert_problem(
        &fixture,
        FEATURE,
        "/versions/1.0.0/sha256",
        "no recorded hash for user.j2",
    );
}

#[test]
fn hash_for_a_file_no_message_uses_is_reported() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| {
        document["versions"]["1.0.0"]["sha256"]["old.j2"] = json!("0".repeat(64))
    });
    assert_problem(
        &fixture,
        FEATURE,
        "/versions/1.0.0/sha256/old.j2",
        "no message of this version uses",
    );
}

#[test]
fn feature_name_must_match_the_file_name() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| document["feature"] = json!("career_navigator"));
    assert_problem(&fixture, FEATURE, "/feature", "must equal the file name");
}

#[test]
fn providers_file_is_checked_against_its_schema() {
    let fixture = Fixture::new();
    let path = fixture.config_dir().join("providers.json");
    fixture.edit_json(&path, |document| {
        document["providers"]["openai"]["kind"] = json!("azure")
    });
    assert_problem(
        &fixture,
        "providers.json",
        "/providers/openai/kind",
        "azure",
    );
}

#[test]
fn missing_providers_file_is_reported() {
    let fixture = Fixture::new();
    fs::remove_file(fixture.config_dir().join("providers.json")).unwrap();
    assert_problem(&fixture, "providers.json", "", "cannot read file");
}

#[test]
fn every_problem_is_reported_at_once() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| {
        document["active_version"] = json!("9.9.9");
        document["fallbacks"][0]["provider"] = json!("azure");
    });
    fs::write(fixture.prompt_path("3.1.0", "user.j2"), "{{ salary }}\n").unwrap();
    let (problems, kind) = problems(&fixture);
    assert_eq!(kind, "config_invalid");
    let pointers: Vec<&str> = problems
        .iter()
        .map(|problem| problem.pointer.as_str())
        .collect();
    for expected in [
        "/active_version",
        "/fallbacks/0/provider",
        "/versions/3.1.0/variables/properties",
    ] {
        assert!(
            pointers.contains(&expected),
            "{expected} missing from {pointers:?}"
        );
    }
}

#[test]
fn problems_display_as_file_pointer_message() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| document["active_version"] = json!("9.9.9"));
    let message = Engine::open(fixture.options()).unwrap_err().to_string();
    let expected_prefix = format!(
        "{}: /active_version: unknown version",
        fixture.feature_path().display()
    );
    assert!(message.contains(&expected_prefix), "{message}");
}

#[test]
fn error_details_list_the_problems_as_json() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| document["active_version"] = json!("9.9.9"));
    let details = Engine::open(fixture.options()).unwrap_err().details();
    assert_eq!(
        details["problems"][0]["pointer"],
        Value::from("/active_version")
    );
}

/// Replaces the one occurrence of `from` in the shipped feature file's text with `to`.
fn edit_feature_text(fixture: &Fixture, from: &str, to: &str) {
    let text = fs::read_to_string(fixture.feature_path()).unwrap();
    assert_eq!(text.matches(from).count(), 1, "{from:?} must occur once");
    fs::write(fixture.feature_path(), text.replace(from, to)).unwrap();
}

#[test]
fn active_version_twice_fails_naming_the_file_and_pointer() {
    // A merge left both sides' lines: serde_json alone would silently serve the last (2.0.0).
    let fixture = Fixture::new();
    edit_feature_text(
        &fixture,
        r#""active_version": "2.0.0","#,
        "\"active_version\": \"1.0.0\",\n  \"active_version\": \"2.0.0\",",
    );
    let problems = assert_problem(&fixture, FEATURE, "/active_version", "duplicate key");
    assert_eq!(problems.len(), 1, "{problems:?}");
}

#[test]
fn duplicate_key_deep_in_an_experiment_variant_is_reported_with_its_full_pointer() {
    let fixture = Fixture::new();
    edit_feature_text(
        &fixture,
        r#""key": "treatment","#,
        r#""key": "treatment", "key": "json","#,
    );
    assert_problem(
        &fixture,
        FEATURE,
        "/experiments/0/variants/1/key",
        "duplicate key \"key\"",
    );
}

#[test]
fn duplicate_key_in_a_rule_condition_is_reported_beside_other_problems() {
    let fixture = Fixture::new();
    edit_feature_text(
        &fixture,
        r#""sector": "healthcare"
      },"#,
        r#""sector": "healthcare", "sector": "retail"
      },"#,
    );
    let text = fs::read_to_string(fixture.feature_path()).unwrap();
    fs::write(
        fixture.feature_path(),
        text.replace(r#""owner": "careers-team","#, r#""owner": 7,"#),
    )
    .unwrap();
    let problems = assert_problem(&fixture, FEATURE, "/rules/0/condition/sector", "duplicate");
    // The rest of the document is still checked in the same run.
    assert!(
        problems.iter().any(|problem| problem.pointer == "/owner"),
        "{problems:?}"
    );
}

#[test]
fn duplicate_key_in_providers_json_is_reported() {
    let fixture = Fixture::new();
    let path = fixture.config_dir().join("providers.json");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(
        &path,
        text.replacen("{", r#"{"client": {}, "client": {},"#, 1),
    )
    .unwrap();
    assert_problem(&fixture, "providers.json", "/client", "duplicate key");
}

#[test]
fn utf8_byte_order_mark_is_accepted() {
    let fixture = Fixture::new();
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(fs::read(fixture.feature_path()).unwrap());
    fs::write(fixture.feature_path(), bytes).unwrap();
    Engine::open(fixture.options()).unwrap();
}

#[test]
fn utf16_byte_order_mark_is_reported_as_such_not_as_a_syntax_error() {
    let fixture = Fixture::new();
    let text = fs::read_to_string(fixture.feature_path()).unwrap();
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    fs::write(fixture.feature_path(), bytes).unwrap();
    let problems = assert_problem(&fixture, FEATURE, "", "UTF-16 byte-order mark");
    assert!(
        !problems
            .iter()
            .any(|problem| problem.message.contains("expected value")),
        "{problems:?}"
    );
}
