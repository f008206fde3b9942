//! Editing a released version in a test configuration: a released version's templates, output
//! schema, tools and tool_choice are immutable (covered by its `sha256`), so a test that gives
//! one new declarations releases it again, as `prompt-config release` would after the edit.

#![allow(dead_code)]

use std::path::Path;

use serde_json::{Value, json};

/// Reads `config/features/<feature>.json` under `root`, applies `edit` to the document, turns
/// `version` back into a draft (no hashes, no release date) and releases it again with
/// `prompt_config::edit::release_version`, so its hashes cover what the edit declared.
pub fn edit_and_release(root: &Path, feature: &str, version: &str, edit: impl FnOnce(&mut Value)) {
    let path = root.join(format!("config/features/{feature}.json"));
    let mut document: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut document);
    let spec = &mut document["versions"][version];
    spec["status"] = json!("draft");
    if let Some(spec) = spec.as_object_mut() {
        spec.remove("sha256");
        spec.remove("released_at");
    }
    std::fs::write(&path, document.to_string()).unwrap();
    let paths = prompt_config::Paths::new(root.join("config"), root.join("prompts"));
    prompt_config::edit::release_version(&paths, feature, version)
        .unwrap_or_else(|error| panic!("release {feature} {version}: {error}"));
}
