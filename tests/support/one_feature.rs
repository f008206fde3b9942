//! A minimal configuration in a temporary directory: one feature, `ask`, whose one released
//! version renders a single user message, calling the model a test names, with the
//! `providers.json` the test writes. For tests that exercise providers through an `Engine`.

#![allow(dead_code)]

use std::fs;
use std::path::PathBuf;

use prompt_config::{Context, EngineOptions};
use serde_json::{Value, json};

use super::temp_dir::TempDir;

/// The user message the feature renders, for `Context::new("u").variable("question", ...)`.
pub const TEMPLATE: &str = "Question: {{ question }}";

/// A configuration directory deleted on drop.
pub struct OneFeature {
    pub root: PathBuf,
    /// Removes `root` on drop.
    _directory: TempDir,
}

impl OneFeature {
    /// `providers` as `providers.json`; the feature calls `provider`/`model`.
    pub fn new(providers: &Value, provider: &str, model: &str) -> OneFeature {
        let directory = TempDir::new("one_feature");
        let root = directory.0.clone();
        fs::create_dir_all(root.join("config/features")).unwrap();
        fs::create_dir_all(root.join("prompts/ask/1.0.0")).unwrap();
        fs::write(root.join("prompts/ask/1.0.0/user.j2"), TEMPLATE).unwrap();
        let feature = json!({
            "feature": "ask", "active_version": "1.0.0",
            "model": {"provider": provider, "name": model},
            "versions": {"1.0.0": {
                "status": "released",
                "sha256": {"user.j2": prompt_config::prompt::sha256_hex(TEMPLATE.as_bytes())},
                "messages": [{"role": "user", "template": "user.j2"}],
                "variables": {"type": "object", "properties": {"question": {"type": "string"}}, "required": ["question"]}
            }}
        });
        let one = OneFeature {
            root,
            _directory: directory,
        };
        one.write_providers(providers);
        fs::write(
            one.root.join("config/features/ask.json"),
            feature.to_string(),
        )
        .unwrap();
        one
    }

    /// Replaces `providers.json`.
    pub fn write_providers(&self, providers: &Value) {
        fs::write(
            self.root.join("config/providers.json"),
            providers.to_string(),
        )
        .unwrap();
    }

    /// Options reading this configuration.
    pub fn options(&self) -> EngineOptions {
        EngineOptions::new(self.root.join("config"), self.root.join("prompts"))
    }
}

/// A context asking `question`.
pub fn asking(question: &str) -> Context {
    Context::new("user-1").variable("question", question)
}
