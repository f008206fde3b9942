//! A version's structured-output and tool declarations as the loader checks them: the output
//! schema inline or in a file beside the templates, the provider subset with a pointer per
//! problem (into the feature file, or into the schema file), tool names and `tool_choice`, and
//! the hashes that make a released version's declarations immutable.

use std::fs;

use crate::broken_configs::{FEATURE, assert_problem, problems};
use crate::support::fixture::{Fixture, context};
use prompt_config::Engine;
use prompt_config::output::ToolChoice;
use serde_json::{Value, json};

const SCHEMA_FILE: &str = "2.2.0/output.schema.json";

/// The shipped 2.2.0 schema file's path in `fixture`.
fn schema_path(fixture: &Fixture) -> std::path::PathBuf {
    fixture.prompt_path("2.2.0", "output.schema.json")
}

/// Edits the shipped 2.2.0 schema file (a released file: any change breaks its hash).
fn edit_schema_file(fixture: &Fixture, edit: impl FnOnce(&mut Value)) {
    fixture.edit_json(&schema_path(fixture), edit);
}

/// A parameters schema in the subset with one string property `query`.
fn query_parameters() -> Value {
    json!({
        "type": "object",
        "properties": {"query": {"type": "string"}},
        "required": ["query"],
        "additionalProperties": false
    })
}

/// Adds `declarations` (keys of a version object) to the draft 3.1.0.
fn declare_on_draft(fixture: &Fixture, declarations: Value) {
    fixture.edit_feature(|document| {
        let version = document["versions"]["3.1.0"].as_object_mut().unwrap();
        for (key, value) in declarations.as_object().unwrap() {
            version.insert(key.clone(), value.clone());
        }
    });
}

#[test]
fn the_shipped_2_2_0_answers_with_the_schema_read_from_its_file() {
    let fixture = Fixture::new();
    let engine = Engine::open(fixture.options()).unwrap();
    let resolution = engine
        .resolve("career_path_navigator", &context("u1").pin_version("2.2.0"))
        .unwrap();
    let output = resolution.output.expect("2.2.0 declares an output schema");
    assert_eq!(output.name(), "career_paths");
    assert!(output.repair());
    assert_eq!(output.schema(), &fixture.read_json(&schema_path(&fixture)));
    assert!(resolution.tools.is_empty());
    assert_eq!(resolution.tool_choice, ToolChoice::Auto);
}

#[test]
fn the_shipped_schema_asks_for_exactly_three_paths() {
    let fixture = Fixture::new();
    let engine = Engine::open(fixture.options()).unwrap();
    let resolution = engine
        .resolve("career_path_navigator", &context("u1").pin_version("2.2.0"))
        .unwrap();
    let output = resolution.output.unwrap();
    let path = json!({"role": "Clinical data analyst", "fit": "f", "skills_to_add": ["SQL"], "first_step": "s"});
    let three = json!({ "paths": [path, path, path] });
    assert_eq!(output.validate(&three.to_string()).unwrap(), three);
    let two = json!({ "paths": [path, path] });
    let invalid = output.validate(&two.to_string()).unwrap_err();
    assert_eq!(invalid.violations[0].pointer, "/paths");
    let mut extra = path.clone();
    extra["salary"] = json!(1);
    let invalid = output
        .validate(&json!({ "paths": [path, path, extra] }).to_string())
        .unwrap_err();
    assert_eq!(invalid.violations[0].pointer, "/paths/2");
}

#[test]
fn a_broken_schema_file_is_reported_in_that_file() {
    let fixture = Fixture::new();
    fs::write(schema_path(&fixture), "{\n  \"type\": \"object\",\n}\n").unwrap();
    assert_problem(&fixture, SCHEMA_FILE, "", "invalid JSON at line 3");
}

#[test]
fn a_duplicate_key_in_the_schema_file_is_reported_at_its_pointer() {
    let fixture = Fixture::new();
    let text = fs::read_to_string(schema_path(&fixture)).unwrap().replacen(
        "\"role\": {",
        "\"role\": {\"type\": \"string\"},\n          \"role\": {",
        1,
    );
    fs::write(schema_path(&fixture), text).unwrap();
    assert_problem(
        &fixture,
        SCHEMA_FILE,
        "/properties/paths/items/properties/role",
        "duplicate key \"role\"",
    );
}

#[test]
fn a_schema_file_outside_the_subset_is_reported_at_pointers_into_that_file() {
    let fixture = Fixture::new();
    edit_schema_file(&fixture, |schema| {
        let item = &mut schema["properties"]["paths"]["items"];
        item.as_object_mut().unwrap().remove("additionalProperties");
        item["properties"]["role"]["pattern"] = json!("^[A-Z]");
    });
    let problems = assert_problem(
        &fixture,
        SCHEMA_FILE,
        "/properties/paths/items",
        "\"additionalProperties\": false",
    );
    assert_problem(
        &fixture,
        SCHEMA_FILE,
        "/properties/paths/items/properties/role/pattern",
        "keyword \"pattern\" is not supported",
    );
    // Also a changed released file, but the subset problems come with the file's own name.
    assert!(problems.iter().any(|problem| problem.integrity));
}

#[test]
fn a_missing_schema_file_is_reported_at_the_declaration() {
    let fixture = Fixture::new();
    fs::remove_file(schema_path(&fixture)).unwrap();
    assert_problem(
        &fixture,
        FEATURE,
        "/versions/2.2.0/output/schema",
        "output schema file",
    );
}

#[test]
fn a_schema_file_may_not_leave_its_version_folder() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| {
        document["versions"]["2.2.0"]["output"]["schema"] = json!("../2.1.0/system.j2")
    });
    assert_problem(
        &fixture,
        FEATURE,
        "/versions/2.2.0/output/schema",
        "output schema \"../2.1.0/system.j2\" may not contain \"..\"",
    );
}

#[test]
fn a_changed_schema_file_of_a_released_version_fails_integrity() {
    let fixture = Fixture::new();
    edit_schema_file(&fixture, |schema| {
        schema["properties"]["paths"]["description"] = json!("Three paths, any order.")
    });
    let (problems, kind) = problems(&fixture);
    assert_eq!(kind, "prompt_integrity");
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert_eq!(
        problems[0].pointer,
        "/versions/2.2.0/sha256/output.schema.json"
    );
    assert!(
        problems[0]
            .message
            .contains("output.schema.json changed after release")
    );
}

#[test]
fn a_changed_output_declaration_of_a_released_version_fails_integrity() {
    let fixture = Fixture::new();
    fixture
        .edit_feature(|document| document["versions"]["2.2.0"]["output"]["repair"] = json!(false));
    let (problems, kind) = problems(&fixture);
    assert_eq!(kind, "prompt_integrity", "{problems:#?}");
    assert_eq!(problems[0].pointer, "/versions/2.2.0/sha256/output");
    assert!(
        problems[0]
            .message
            .contains("the output declaration of 2.2.0 changed after release")
    );
}

#[test]
fn writing_out_a_default_or_reordering_keys_keeps_the_declaration_hash() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| {
        document["versions"]["2.2.0"]["output"] =
            json!({"repair": true, "schema": "output.schema.json", "name": "career_paths"})
    });
    Engine::open(fixture.options()).unwrap();
}

#[test]
fn a_removed_output_declaration_of_a_released_version_is_an_integrity_problem() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| {
        document["versions"]["2.2.0"]
            .as_object_mut()
            .unwrap()
            .remove("output");
    });
    let problems = assert_problem(
        &fixture,
        FEATURE,
        "/versions/2.2.0/sha256/output",
        "removed after release",
    );
    let removed = problems
        .iter()
        .find(|problem| problem.pointer == "/versions/2.2.0/sha256/output")
        .unwrap();
    assert!(removed.integrity);
    // The schema file's hash is left recording a file the version no longer names.
    assert!(
        problems
            .iter()
            .any(|problem| problem.pointer == "/versions/2.2.0/sha256/output.schema.json"),
        "{problems:#?}"
    );
}

#[test]
fn tools_added_to_a_released_version_have_no_recorded_hash() {
    let fixture = Fixture::new();
    fixture.edit_feature(|document| {
        document["versions"]["2.2.0"]["tools"] =
            json!([{"name": "search_jobs", "parameters": query_parameters()}])
    });
    let (problems, kind) = problems(&fixture);
    assert_eq!(kind, "config_invalid");
    assert!(
        problems
            .iter()
            .any(|problem| problem.pointer == "/versions/2.2.0/sha256"
                && problem
                    .message
                    .contains("no recorded hash for its tools declaration")),
        "{problems:#?}"
    );
}

#[test]
fn an_inline_schema_outside_the_subset_is_reported_at_pointers_into_the_feature_file() {
    let fixture = Fixture::new();
    declare_on_draft(
        &fixture,
        json!({"output": {"name": "answer", "schema": {
            "type": "object",
            "properties": {"score": {"type": "integer", "minimum": 1}},
            "additionalProperties": false
        }}}),
    );
    assert_problem(
        &fixture,
        FEATURE,
        "/versions/3.1.0/output/schema/properties/score/minimum",
        "keyword \"minimum\" is not supported",
    );
    assert_problem(
        &fixture,
        FEATURE,
        "/versions/3.1.0/output/schema",
        "every property in \"required\"",
    );
}

#[test]
fn a_draft_with_inline_output_and_tools_serves_them() {
    let fixture = Fixture::new();
    declare_on_draft(
        &fixture,
        json!({
            "output": {"name": "answer", "schema": query_parameters(), "repair": false},
            "tools": [{"name": "search_jobs", "description": "Searches job ads.", "parameters": query_parameters()}],
            "tool_choice": {"tool": "search_jobs"}
        }),
    );
    let engine = Engine::open(fixture.options()).unwrap();
    let resolution = engine
        .resolve("career_path_navigator", &context("u1").pin_version("3.1.0"))
        .unwrap();
    assert!(!resolution.output.unwrap().repair());
    assert_eq!(resolution.tools.len(), 1);
    assert_eq!(resolution.tools[0].name(), "search_jobs");
    assert_eq!(resolution.tools[0].description(), Some("Searches job ads."));
    assert_eq!(
        resolution.tool_choice,
        ToolChoice::Tool("search_jobs".into())
    );
}

#[test]
fn tool_parameters_outside_the_subset_are_reported_at_their_pointers() {
    let fixture = Fixture::new();
    let mut parameters = query_parameters();
    parameters["properties"]["query"]["minLength"] = json!(1);
    declare_on_draft(
        &fixture,
        json!({"tools": [{"name": "search_jobs", "parameters": parameters}]}),
    );
    assert_problem(
        &fixture,
        FEATURE,
        "/versions/3.1.0/tools/0/parameters/properties/query/minLength",
        "keyword \"minLength\" is not supported",
    );
}

#[test]
fn a_tool_name_declared_twice_is_reported_at_the_second() {
    let fixture = Fixture::new();
    declare_on_draft(
        &fixture,
        json!({"tools": [
            {"name": "search_jobs", "parameters": query_parameters()},
            {"name": "search_jobs", "parameters": query_parameters()}
        ]}),
    );
    assert_problem(
        &fixture,
        FEATURE,
        "/versions/3.1.0/tools/1/name",
        "tool name \"search_jobs\" is declared twice (first at /versions/3.1.0/tools/0)",
    );
}

#[test]
fn a_tool_may_not_share_the_output_schema_name() {
    let fixture = Fixture::new();
    declare_on_draft(
        &fixture,
        json!({
            "output": {"name": "answer", "schema": query_parameters()},
            "tools": [{"name": "answer", "parameters": query_parameters()}]
        }),
    );
    assert_problem(
        &fixture,
        FEATURE,
        "/versions/3.1.0/tools/0/name",
        "is the output schema's name",
    );
}

#[test]
fn a_bad_tool_name_is_refused_by_the_feature_schema() {
    let fixture = Fixture::new();
    declare_on_draft(
        &fixture,
        json!({"tools": [{"name": "search jobs", "parameters": query_parameters()}]}),
    );
    assert_problem(
        &fixture,
        FEATURE,
        "/versions/3.1.0/tools/0/name",
        "search jobs",
    );
}

#[test]
fn tool_choice_naming_an_unknown_tool_is_a_load_error() {
    let fixture = Fixture::new();
    declare_on_draft(
        &fixture,
        json!({
            "tools": [{"name": "search_jobs", "parameters": query_parameters()}],
            "tool_choice": {"tool": "book_interview"}
        }),
    );
    let problems = assert_problem(
        &fixture,
        FEATURE,
        "/versions/3.1.0/tool_choice/tool",
        "tool_choice names tool \"book_interview\", which this version does not declare (declared: search_jobs)",
    );
    assert_eq!(problems.len(), 1, "{problems:#?}");
}

#[test]
fn tool_choice_required_needs_tools() {
    let fixture = Fixture::new();
    declare_on_draft(&fixture, json!({"tool_choice": "required"}));
    assert_problem(
        &fixture,
        FEATURE,
        "/versions/3.1.0/tool_choice",
        "needs at least one tool",
    );
}

#[test]
fn a_template_may_not_take_a_declaration_hash_key_as_its_name() {
    let fixture = Fixture::new();
    fs::write(fixture.prompt_path("3.1.0", "tools"), "Hello.\n").unwrap();
    fixture.edit_feature(|document| {
        document["versions"]["3.1.0"]["messages"][0]["template"] = json!("tools")
    });
    assert_problem(
        &fixture,
        FEATURE,
        "/versions/3.1.0/messages/0/template",
        "the file name \"tools\" is reserved",
    );
}
