//! The edit commands' own checks: the re-load after writing, and the restore when it fails.
//! (CLI-level behaviour is in `tests/cli_edit.rs`.)

use std::fs;
use std::path::{Path, PathBuf};

use super::{release_version, rollback_active_version, test_hook};
use crate::Error;
use crate::config::ConfigError;
use crate::paths::Paths;

/// A private copy of the shipped `config/` and `prompts/`, removed on drop.
struct Copy(PathBuf);

impl Copy {
    fn new(name: &str) -> Copy {
        let root =
            std::env::temp_dir().join(format!("prompt_config_edit_{name}_{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR"));
        copy_dir(&shipped.join("config"), &root.join("config"));
        copy_dir(&shipped.join("prompts"), &root.join("prompts"));
        Copy(root)
    }

    fn paths(&self) -> Paths {
        Paths::new(self.0.join("config"), self.0.join("prompts"))
    }

    fn feature_path(&self) -> PathBuf {
        self.0.join("config/features/career_path_navigator.json")
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
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

fn unverified_message(error: Error) -> String {
    match error {
        Error::Config(ConfigError::Unverified { message, .. }) => message,
        other => panic!("expected an unverified edit, got {other:?}"),
    }
}

#[test]
fn rollback_whose_value_is_not_served_after_the_write_restores_the_original_bytes() {
    let copy = Copy::new("rollback_overwritten");
    let original = fs::read(copy.feature_path()).unwrap();
    // Another writer (a deploy, a merge tool) puts 2.0.0 back between our write and the check.
    let other_writer = original.clone();
    test_hook::set_after_write(move |path| fs::write(path, &other_writer).unwrap());
    let error =
        rollback_active_version(&copy.paths(), "career_path_navigator", "1.0.0").unwrap_err();
    assert_eq!(error.kind(), "config_invalid");
    let message = unverified_message(error);
    assert!(
        message.contains("served as 2.0.0 after the write, not 1.0.0"),
        "{message}"
    );
    assert!(
        message.contains("the original file was restored"),
        "{message}"
    );
    assert_eq!(fs::read(copy.feature_path()).unwrap(), original);
}

#[test]
fn edit_after_which_the_configuration_no_longer_loads_is_undone() {
    let copy = Copy::new("release_broken");
    let original = fs::read(copy.feature_path()).unwrap();
    // A template of the just-released version changes before the check: its hash no longer holds.
    let template = copy.0.join("prompts/career_path_navigator/3.1.0/system.j2");
    test_hook::set_after_write(move |_| fs::write(template, "changed\n").unwrap());
    let error = release_version(&copy.paths(), "career_path_navigator", "3.1.0").unwrap_err();
    let message = unverified_message(error);
    assert!(message.contains("no longer loads"), "{message}");
    assert!(message.contains("system.j2"), "{message}");
    assert_eq!(fs::read(copy.feature_path()).unwrap(), original);
}

#[test]
fn a_verified_rollback_keeps_the_new_file() {
    let copy = Copy::new("rollback_verified");
    let outcome = rollback_active_version(&copy.paths(), "career_path_navigator", "1.0.0").unwrap();
    assert!(outcome.changed);
    let text = fs::read_to_string(copy.feature_path()).unwrap();
    assert!(text.contains(r#""active_version": "1.0.0""#));
}

#[test]
fn an_edit_accepts_a_provider_kind_only_an_engine_registers() {
    // A Rust service may register kinds of its own; editing a feature must not refuse them.
    let copy = Copy::new("custom_kind");
    let providers = copy.0.join("config/providers.json");
    let text = fs::read_to_string(&providers).unwrap();
    fs::write(
        &providers,
        text.replacen(r#""kind": "openai""#, r#""kind": "in_house""#, 1),
    )
    .unwrap();
    assert!(crate::Snapshot::load(&copy.paths()).is_err());
    let outcome = rollback_active_version(&copy.paths(), "career_path_navigator", "1.0.0").unwrap();
    assert!(outcome.changed);
}

#[test]
fn rollback_to_a_version_the_feature_lacks_is_unknown_version_naming_the_file() {
    let copy = Copy::new("rollback_unknown");
    let error =
        rollback_active_version(&copy.paths(), "career_path_navigator", "0.9.0").unwrap_err();
    assert_eq!(error.kind(), "unknown_version");
    let message = error.to_string();
    assert!(
        message.contains("career_path_navigator.json: /versions: no version \"0.9.0\""),
        "{message}"
    );
}

#[test]
fn releasing_a_version_the_feature_lacks_is_unknown_version_naming_its_pointer() {
    let copy = Copy::new("release_unknown");
    let error = release_version(&copy.paths(), "career_path_navigator", "9.9.9").unwrap_err();
    assert_eq!(error.kind(), "unknown_version");
    assert!(
        error
            .to_string()
            .contains("/versions/9.9.9: no version \"9.9.9\" to release"),
        "{error}"
    );
}
