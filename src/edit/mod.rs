//! The commands that change a feature file: `rollback` (a new `active_version`) and `release`
//! (a draft frozen with its hashes). Each validates the whole configuration with the edit in
//! place before touching disk, changes only the bytes of the value it edits, and replaces the
//! file atomically (temporary file, fsync, rename), so a crash leaves the old or the new file.
//! Then it loads the configuration again as the engine would and checks that the served value
//! is the one intended; if not, it puts the original bytes back and fails. An edit that would
//! change nothing writes nothing and says so.
//!
//! This module sits above [`Snapshot`] (it loads the configuration to check its
//! own effect), so it is not part of `config`, which the snapshot is built from. It needs only
//! the two directories, a [`Paths`].

mod reach;

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

pub use reach::{Precedence, PrecedenceKind, Reach};

use crate::config::{
    ConfigError, FeatureConfig, Problem, UTF8_BOM, VersionStatus, declaration_hashes, load_config,
    parse_strict, pointer_token, value_span,
};
use crate::paths::Paths;
use crate::prompt::{safe_version_file, sha256_hex};
use crate::resolve::ResolveError;
use crate::snapshot::Snapshot;

/// What an edit did. `Display` gives the summary the CLI prints; the fields are the same facts
/// as data (the CLI's `--json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EditOutcome {
    /// The feature edited.
    pub feature: String,
    /// The feature file (rewritten only when `changed`).
    pub file: String,
    /// The JSON pointer of the edited value in that file (`/active_version`,
    /// `/versions/3.1.0/status`).
    pub pointer: String,
    /// The value before (the previous active version, or `draft`).
    pub before: String,
    /// The value after, as the re-loaded configuration serves it.
    pub after: String,
    /// False when the value already was `after`: the file was not rewritten.
    pub changed: bool,
    /// For a rollback: who the active version reaches, given what takes precedence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reach: Option<Reach>,
}

impl EditOutcome {
    /// The human summary (the same as `Display`).
    pub fn summary(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for EditOutcome {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = self.pointer.rsplit('/').next().unwrap_or_default();
        if !self.changed {
            write!(
                formatter,
                "{}: {field} is already {}; nothing changed ({} not rewritten)",
                self.feature, self.after, self.file
            )?;
        } else if self.pointer == "/active_version" {
            write!(
                formatter,
                "{}: active_version {} -> {} in {}",
                self.feature, self.before, self.after, self.file
            )?;
        } else {
            let version = self.pointer.split('/').nth(2).unwrap_or_default();
            let version = version.replace("~1", "/").replace("~0", "~");
            write!(
                formatter,
                "released {} {version}: recorded file hashes in {}",
                self.feature, self.file
            )?;
        }
        if let Some(reach) = &self.reach {
            write!(formatter, "\n{reach}")?;
        }
        Ok(())
    }
}

/// Sets `active_version` of `feature` to the released version `to`. Fails with
/// `unknown_feature` when no feature file has that name, `unknown_version` when it has no version
/// `to`, `config_invalid` when that version is a draft, the configuration (with the edit) does not load, or the re-loaded
/// configuration does not serve `to` (the original file is then restored).
pub fn rollback_active_version(
    paths: &Paths,
    feature: &str,
    to: &str,
) -> crate::Result<EditOutcome> {
    let source = read_feature(paths, feature)?;
    let file = source.path.display().to_string();
    let reject = |pointer: &str, message: String| ConfigError::Rejected {
        file: file.clone(),
        pointer: pointer.to_string(),
        message,
    };
    let version_pointer = format!("/versions/{}", pointer_token(to));
    match source.config.versions.get(to).map(|spec| spec.status) {
        None => {
            return Err(ConfigError::UnknownVersion {
                file,
                pointer: "/versions".into(),
                message: format!("no version \"{to}\" to roll back to"),
            }
            .into());
        }
        Some(VersionStatus::Released) => {}
        Some(VersionStatus::Draft) => {
            return Err(reject(
                &version_pointer,
                format!("version \"{to}\" is a draft; release it first"),
            )
            .into());
        }
    }
    let before = source.config.active_version.clone();
    let served_active = |snapshot: &Snapshot| {
        snapshot
            .features
            .get(feature)
            .map(|compiled| compiled.active.version.clone())
    };
    let mut outcome = EditOutcome {
        feature: feature.to_string(),
        file: file.clone(),
        pointer: "/active_version".into(),
        before: before.clone(),
        after: to.to_string(),
        changed: true,
        reach: Some(Reach::of(&source.config)),
    };
    if before == to {
        // Say "nothing changed" only if that is what is served: a broken configuration fails.
        let snapshot = load(paths, &[])?;
        if served_active(&snapshot).as_deref() == Some(to) {
            outcome.changed = false;
            // Nobody's version changes, so there is no reach to state.
            outcome.reach = None;
            return Ok(outcome);
        }
    }
    let span = value_span(&source.text, &["active_version"])
        .ok_or_else(|| reject("/active_version", "no active_version to change".into()))?;
    let replacement = serde_json::to_string(to).unwrap_or_default();
    let edited = format!(
        "{}{}{}",
        &source.text[..span.start],
        replacement,
        &source.text[span.end..]
    );
    commit(paths, &source, edited, |snapshot| {
        let served = served_active(snapshot);
        (served.as_deref() == Some(to))
            .then_some(())
            .ok_or_else(|| {
                format!(
                    "active_version is served as {} after the write, not {to}",
                    served.as_deref().unwrap_or("nothing (the feature is gone)")
                )
            })
    })?;
    Ok(outcome)
}

/// Checks, without writing anything, that [`release_version`] could release `version` of
/// `feature`: the feature file reads and the version exists as a draft. What a release gate
/// (`release --require-eval`) asks before it spends an evaluation on a version that could not
/// be released anyway. Errors as `release_version`'s.
pub fn check_releasable(paths: &Paths, feature: &str, version: &str) -> crate::Result<()> {
    let source = read_feature(paths, feature)?;
    draft_spec(&source, version).map(|_| ())
}

/// The spec of the draft `version` in `source`, or why it cannot be released.
fn draft_spec<'s>(
    source: &'s FeatureSource,
    version: &str,
) -> crate::Result<&'s serde_json::Map<String, Value>> {
    let file = source.path.display().to_string();
    let version_pointer = format!("/versions/{}", pointer_token(version));
    let Some(Value::Object(spec)) = source.document.pointer(&version_pointer) else {
        return Err(ConfigError::UnknownVersion {
            file,
            pointer: version_pointer,
            message: format!("no version \"{version}\" to release"),
        }
        .into());
    };
    if spec.get("status").and_then(Value::as_str) != Some("draft") {
        return Err(ConfigError::Rejected {
            file,
            pointer: version_pointer,
            message: format!("version \"{version}\" is already released and immutable"),
        }
        .into());
    }
    Ok(spec)
}

/// Marks the draft `version` of `feature` released, recording its files' SHA-256 hashes. Fails
/// as [`rollback_active_version`] does; releasing a released version is refused (it is
/// immutable).
pub fn release_version(paths: &Paths, feature: &str, version: &str) -> crate::Result<EditOutcome> {
    let source = read_feature(paths, feature)?;
    let file = source.path.display().to_string();
    let version_pointer = format!("/versions/{}", pointer_token(version));
    let reject = |message: String| ConfigError::Rejected {
        file: file.clone(),
        pointer: version_pointer.clone(),
        message,
    };
    let mut spec = draft_spec(&source, version)?.clone();
    let hashes = release_hashes(paths, &source, feature, version, &reject)?;
    spec.insert("status".into(), Value::String("released".into()));
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    spec.insert("released_at".into(), Value::String(now));
    spec.insert("sha256".into(), Value::Object(hashes));

    let text = &source.text;
    let span = value_span(text, &["versions", version])
        .ok_or_else(|| reject("version not found in text".into()))?;
    let indent = line_indent(text, span.start);
    let unit = indent_unit(text);
    let rendered = pretty(&Value::Object(spec), &unit).replace('\n', &format!("\n{indent}"));
    let edited = format!("{}{}{}", &text[..span.start], rendered, &text[span.end..]);
    let path = source.path.clone();
    commit(paths, &source, edited, |_| {
        // The snapshot loaded, so the hashes hold; the status must read back as released.
        let mut problems = Vec::new();
        let status = load_config(&paths.config_dir, &[], &mut problems).and_then(|loaded| {
            let file = path.display().to_string();
            let loaded = loaded.features.into_iter().find(|item| item.file == file)?;
            Some(loaded.config.versions.get(version)?.status)
        });
        match status {
            Some(VersionStatus::Released) => Ok(()),
            Some(VersionStatus::Draft) => Err(format!("{version} still reads as a draft")),
            None => Err(format!("{version} is gone from the feature")),
        }
    })?;
    Ok(EditOutcome {
        feature: feature.to_string(),
        file,
        pointer: format!("{version_pointer}/status"),
        before: "draft".into(),
        after: "released".into(),
        changed: true,
        reach: None,
    })
}

/// The `sha256` map a release records for `version`: each template file's hash, then the output
/// schema file's (when the schema is a file), then each declaration's (`output`, `tools`,
/// `tool_choice`: SHA-256 of its canonical JSON, see `config::declaration_hashes`), so the
/// version's files and declarations are all frozen. Errors: a file whose path is refused
/// (`reject`), or that cannot be read (`io`).
fn release_hashes(
    paths: &Paths,
    source: &FeatureSource,
    feature: &str,
    version: &str,
    reject: &dyn Fn(String) -> ConfigError,
) -> Result<serde_json::Map<String, Value>, ConfigError> {
    let Some(typed) = source.config.versions.get(version) else {
        return Err(reject(format!("no version \"{version}\" to release")));
    };
    let mut hashes = serde_json::Map::new();
    let mut hash_file = |file: &str, what: &str| -> Result<(), ConfigError> {
        let path =
            safe_version_file(&paths.prompts_dir, feature, version, file, what).map_err(reject)?;
        let bytes = fs::read(&path).map_err(|source| ConfigError::Io { path, source })?;
        hashes.insert(file.to_string(), Value::String(sha256_hex(&bytes)));
        Ok(())
    };
    for message in &typed.messages {
        hash_file(&message.template, "template")?;
    }
    if let Some(Value::String(file)) = typed.output.as_ref().map(|output| &output.schema) {
        hash_file(file, "output schema")?;
    }
    for (key, hash) in declaration_hashes(typed) {
        hashes.insert(key.to_string(), Value::String(hash));
    }
    Ok(hashes)
}

/// A feature file as read: its path, whether it starts with a UTF-8 byte-order mark (kept on
/// write), its text after the mark, the parsed document and its typed form.
struct FeatureSource {
    path: PathBuf,
    original: Vec<u8>,
    bom: bool,
    text: String,
    document: Value,
    config: FeatureConfig,
}

fn read_feature(paths: &Paths, feature: &str) -> crate::Result<FeatureSource> {
    let features_dir = paths.config_dir.join("features");
    let known = feature_names(&features_dir)?;
    // Only names of existing files: a name like `../providers` is no feature either.
    if !known.iter().any(|name| name == feature) {
        return Err(ResolveError::UnknownFeature {
            feature: feature.to_string(),
            known,
        }
        .into());
    }
    let path = features_dir.join(format!("{feature}.json"));
    let original = fs::read(&path).map_err(|source| ConfigError::Io {
        path: path.clone(),
        source,
    })?;
    let file = path.display().to_string();
    let invalid = |problems: Vec<Problem>| ConfigError::Invalid { problems };
    let document = parse_strict(&original).map_err(|problem| {
        invalid(
            problem
                .located()
                .into_iter()
                .map(|(pointer, message)| Problem::new(&file, pointer, message))
                .collect(),
        )
    })?;
    let bom = original.starts_with(UTF8_BOM);
    let body = if bom {
        &original[UTF8_BOM.len()..]
    } else {
        &original[..]
    };
    let text = String::from_utf8(body.to_vec())
        .map_err(|error| invalid(vec![Problem::new(&file, "", error.to_string())]))?;
    let config: FeatureConfig = serde_json::from_value(document.clone()).map_err(|error| {
        invalid(vec![Problem::new(
            &file,
            "",
            format!("unexpected shape: {error} (run validate)"),
        )])
    })?;
    Ok(FeatureSource {
        path,
        original,
        bom,
        text,
        document,
        config,
    })
}

/// The stems of `features/*.json`, sorted.
fn feature_names(features_dir: &Path) -> Result<Vec<String>, ConfigError> {
    let entries = fs::read_dir(features_dir).map_err(|source| ConfigError::Io {
        path: features_dir.to_path_buf(),
        source,
    })?;
    let mut names: Vec<String> = entries
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            if path.extension()? != "json" {
                return None;
            }
            Some(path.file_stem()?.to_str()?.to_string())
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Validates the whole configuration with `edited` in place, replaces the file atomically, then
/// loads everything again from disk and runs `check` on it. If that load fails or `check`
/// does, the original bytes are put back and the edit fails.
fn commit(
    paths: &Paths,
    source: &FeatureSource,
    edited: String,
    check: impl FnOnce(&Snapshot) -> Result<(), String>,
) -> crate::Result<()> {
    let path = &source.path;
    let mut bytes = if source.bom {
        UTF8_BOM.to_vec()
    } else {
        Vec::new()
    };
    bytes.extend_from_slice(edited.as_bytes());
    load(paths, &[(path.clone(), bytes.clone())])?;
    replace_file(path, &bytes).map_err(|source| ConfigError::Io {
        path: path.clone(),
        source,
    })?;
    test_hook::after_write(path);
    let verdict = match load(paths, &[]) {
        Ok(snapshot) => check(&snapshot),
        Err(error) => Err(format!("the configuration no longer loads: {error}")),
    };
    let Err(reason) = verdict else {
        return Ok(());
    };
    let restored = match replace_file(path, &source.original) {
        Ok(()) => "the original file was restored".to_string(),
        Err(error) => format!("restoring the original file failed too: {error}"),
    };
    Err(ConfigError::Unverified {
        file: path.display().to_string(),
        message: format!("the edit did not take effect: {reason}; {restored}"),
    }
    .into())
}

/// Loads the configuration as the engine would, with `overrides` in place of those files'
/// content. Any provider kind name is accepted: an edit changes a feature file, never a
/// provider, and which kinds exist is up to the engine that serves the files (a Rust service
/// may register its own with `EngineOptions::with_provider_kind`), which checks them when it
/// opens or reloads; `prompt-config validate` checks them against the built-in kinds.
fn load(paths: &Paths, overrides: &[(PathBuf, Vec<u8>)]) -> Result<Snapshot, ConfigError> {
    Snapshot::load_checked(paths, &|_| true, overrides)
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, and renames it over `path`.
fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let directory = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("feature.json");
    let temporary = directory.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        if let Ok(metadata) = fs::metadata(path) {
            fs::set_permissions(&temporary, metadata.permissions())?;
        }
        fs::rename(&temporary, path)?;
        fs::File::open(directory)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

/// Unit tests change the file between the write and the check, as a concurrent writer would,
/// to see the check fail and the original come back; outside `cfg(test)` this is a no-op.
mod test_hook {
    use std::path::Path;

    /// What to do to the next edited file, once.
    #[cfg(test)]
    type Action = Box<dyn FnOnce(&Path)>;

    #[cfg(test)]
    thread_local! {
        static AFTER_WRITE: std::cell::RefCell<Option<Action>> =
            const { std::cell::RefCell::new(None) };
    }

    /// Runs `action` on the next edited file of this thread, right after it is written.
    #[cfg(test)]
    pub(super) fn set_after_write(action: impl FnOnce(&Path) + 'static) {
        AFTER_WRITE.with(|cell| *cell.borrow_mut() = Some(Box::new(action)));
    }

    #[cfg(test)]
    pub(super) fn after_write(path: &Path) {
        if let Some(action) = AFTER_WRITE.with(|cell| cell.borrow_mut().take()) {
            action(path);
        }
    }

    #[cfg(not(test))]
    #[inline(always)]
    pub(super) fn after_write(_path: &Path) {}
}

fn line_indent(text: &str, position: usize) -> String {
    let line_start = text[..position].rfind('\n').map_or(0, |index| index + 1);
    text[line_start..]
        .chars()
        .take_while(|character| *character == ' ' || *character == '\t')
        .collect()
}

/// The file's indentation step, taken from its first indented line (two spaces if none).
fn indent_unit(text: &str) -> String {
    text.lines()
        .map(|line| {
            line.chars()
                .take_while(|character| *character == ' ' || *character == '\t')
                .collect::<String>()
        })
        .find(|indent| !indent.is_empty())
        .unwrap_or_else(|| "  ".into())
}

fn pretty(value: &Value, unit: &str) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(unit.as_bytes());
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    if value.serialize(&mut serializer).is_err() {
        return value.to_string();
    }
    String::from_utf8(out).unwrap_or_else(|_| value.to_string())
}

#[cfg(test)]
mod tests;
