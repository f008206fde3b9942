//! Shared test fixtures: a private copy of the shipped `config/` and `prompts/` in a temporary
//! directory, with helpers to edit JSON documents and files in it.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use prompt_config::{Context, EngineOptions};
use serde_json::Value;

use super::temp_dir::TempDir;

/// The crate root, where the shipped `config/` and `prompts/` live.
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary copy of the shipped configuration, deleted on drop.
pub struct Fixture {
    pub root: PathBuf,
    /// Removes `root` on drop.
    _directory: TempDir,
}

impl Fixture {
    pub fn new() -> Fixture {
        let directory = TempDir::new("fixture");
        let root = directory.0.clone();
        copy_dir(&project_root().join("config"), &root.join("config"));
        copy_dir(&project_root().join("prompts"), &root.join("prompts"));
        Fixture {
            root,
            _directory: directory,
        }
    }

    pub fn options(&self) -> EngineOptions {
        EngineOptions::new(self.config_dir(), self.prompts_dir())
    }

    pub fn config_dir(&self) -> PathBuf {
        self.root.join("config")
    }

    pub fn prompts_dir(&self) -> PathBuf {
        self.root.join("prompts")
    }

    pub fn feature_path(&self) -> PathBuf {
        self.config_dir()
            .join("features/career_path_navigator.json")
    }

    pub fn prompt_path(&self, version: &str, file: &str) -> PathBuf {
        self.prompts_dir()
            .join("career_path_navigator")
            .join(version)
            .join(file)
    }

    /// Reads a JSON document of the fixture.
    pub fn read_json(&self, path: &Path) -> Value {
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
    }

    /// Applies `edit` to the JSON document at `path` and writes it back pretty-printed.
    pub fn edit_json(&self, path: &Path, edit: impl FnOnce(&mut Value)) {
        let mut document = self.read_json(path);
        edit(&mut document);
        fs::write(
            path,
            serde_json::to_string_pretty(&document).unwrap() + "\n",
        )
        .unwrap();
    }

    /// Edits the shipped feature document.
    pub fn edit_feature(&self, edit: impl FnOnce(&mut Value)) {
        self.edit_json(&self.feature_path(), edit);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The variables every released version of the shipped feature requires.
pub fn profile() -> serde_json::Map<String, Value> {
    match serde_json::json!({
        "current_role": "Registered Nurse",
        "degree": "BSc Nursing",
        "skills": ["patient care", "Excel"],
        "sector": "healthcare",
        "goals": "Move into a data role without leaving healthcare",
    }) {
        Value::Object(map) => map,
        _ => unreachable!(),
    }
}

/// A context for `user` in the technology sector with a full profile.
pub fn context(user: &str) -> Context {
    Context::new(user)
        .attribute("sector", "technology")
        .with_variables(profile())
}
