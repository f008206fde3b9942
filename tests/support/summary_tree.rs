//! The config tree of the failover and streaming tests: `config/providers.json`, one feature
//! `summary` at `config/features/summary.json` and its template
//! `prompts/summary/1.0.0/user.j2`, written into a fresh temporary folder.

#![allow(dead_code)]

use std::fs;
use std::path::PathBuf;

use serde_json::Value;

use crate::support::temp_dir::TempDir;

/// Writes the tree into a new temporary folder named after `name`; returns the folder (which
/// removes the tree when dropped) and its root.
pub fn write(name: &str, providers: &Value, feature: &Value, template: &str) -> (TempDir, PathBuf) {
    let directory = TempDir::new(name);
    let root = directory.0.clone();
    fs::create_dir_all(root.join("config/features")).unwrap();
    fs::create_dir_all(root.join("prompts/summary/1.0.0")).unwrap();
    fs::write(root.join("config/providers.json"), providers.to_string()).unwrap();
    fs::write(
        root.join("config/features/summary.json"),
        feature.to_string(),
    )
    .unwrap();
    fs::write(root.join("prompts/summary/1.0.0/user.j2"), template).unwrap();
    (directory, root)
}
