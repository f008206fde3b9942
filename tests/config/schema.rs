//! The JSON Schemas: compiled into the library exactly as shipped, valid 2020-12 documents,
//! documented on every property, and named by the shipped configs.

use std::fs;

use crate::support::fixture::project_root;
use prompt_config::config::{FEATURE_SCHEMA, PROVIDERS_SCHEMA};
use serde_json::Value;

fn on_disk(name: &str) -> String {
    fs::read_to_string(project_root().join("config/schema").join(name)).unwrap()
}

#[test]
fn embedded_schemas_equal_the_files_on_disk() {
    assert_eq!(FEATURE_SCHEMA, on_disk("feature_config_schema.json"));
    assert_eq!(PROVIDERS_SCHEMA, on_disk("providers_schema.json"));
}

#[test]
fn schemas_are_valid_draft_2020_12_documents() {
    for text in [FEATURE_SCHEMA, PROVIDERS_SCHEMA] {
        let schema: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        jsonschema::meta::validate(&schema).unwrap();
    }
}

/// Walks a schema and collects the location of every property schema without a description.
fn undocumented(schema: &Value, location: &str, found: &mut Vec<String>) {
    let Value::Object(map) = schema else { return };
    if let Some(Value::Object(properties)) = map.get("properties") {
        for (name, property) in properties {
            let here = format!("{location}/properties/{name}");
            if property.get("description").is_none() {
                found.push(here.clone());
            }
            undocumented(property, &here, found);
        }
    }
    for keyword in ["$defs", "additionalProperties", "items"] {
        match map.get(keyword) {
            Some(Value::Object(children)) if keyword == "$defs" => {
                for (name, child) in children {
                    let here = format!("{location}/$defs/{name}");
                    if child.get("description").is_none() {
                        found.push(here.clone());
                    }
                    undocumented(child, &here, found);
                }
            }
            Some(child) => undocumented(child, &format!("{location}/{keyword}"), found),
            None => {}
        }
    }
}

#[test]
fn every_property_has_a_description_for_editor_hover_help() {
    for text in [FEATURE_SCHEMA, PROVIDERS_SCHEMA] {
        let schema: Value = serde_json::from_str(text).unwrap();
        let mut found = Vec::new();
        undocumented(&schema, "", &mut found);
        assert!(
            found.is_empty(),
            "properties without a description: {found:?}"
        );
    }
}

#[test]
fn shipped_configs_name_their_schema_by_a_path_that_exists() {
    let config = project_root().join("config");
    let mut documents = vec![config.join("providers.json")];
    for entry in fs::read_dir(config.join("features")).unwrap() {
        documents.push(entry.unwrap().path());
    }
    for path in documents {
        let document: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let reference = document["$schema"]
            .as_str()
            .unwrap_or_else(|| panic!("{} has no $schema", path.display()));
        let target = path.parent().unwrap().join(reference);
        assert!(
            target.is_file(),
            "{} names {reference}, which does not exist",
            path.display()
        );
    }
}
