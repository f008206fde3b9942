//! The commands that change a feature file: `rollback` (a new `active_version`) and `release`
//! (a draft frozen with its hashes). Each validates the whole configuration with the edit in
//! place before touching disk, changes only the bytes of the value it edits, and replaces the
//! file atomically (temporary file, fsync, rename), so a crash leaves the old or the new file.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::span::value_span;
use super::{ConfigError, pointer_token};
use crate::prompt::{safe_template_path, sha256_hex};
use crate::snapshot::{EngineOptions, Snapshot};

/// What an edit changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EditOutcome {
    /// The feature file rewritten.
    pub file: String,
    /// The value before (the previous active version, or `draft`).
    pub before: String,
    /// The value after.
    pub after: String,
}

/// Sets `active_version` of `feature` to the released version `to`.
pub fn rollback_active_version(
    options: &EngineOptions,
    feature: &str,
    to: &str,
) -> crate::Result<EditOutcome> {
    let (path, text, document) = read_feature(options, feature)?;
    let file = path.display().to_string();
    let reject = |pointer: &str, message: String| ConfigError::Rejected {
        file: file.clone(),
        pointer: pointer.to_string(),
        message,
    };
    let version_pointer = format!("/versions/{}", pointer_token(to));
    match document
        .pointer(&format!("{version_pointer}/status"))
        .and_then(Value::as_str)
    {
        None => {
            return Err(reject("/versions", format!("no version \"{to}\" to roll back to")).into());
        }
        Some("released") => {}
        Some(_) => {
            return Err(reject(
                &version_pointer,
                format!("version \"{to}\" is a draft; release it first"),
            )
            .into());
        }
    }
    let before = document
        .get("active_version")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let span = value_span(&text, &["active_version"])
        .ok_or_else(|| reject("/active_version", "no active_version to change".into()))?;
    let replacement = serde_json::to_string(to).unwrap_or_default();
    let edited = format!(
        "{}{}{}",
        &text[..span.start],
        replacement,
        &text[span.end..]
    );
    commit(options, &path, edited)?;
    Ok(EditOutcome {
        file,
        before,
        after: to.to_string(),
    })
}

/// Marks the draft `version` of `feature` released, recording its files' SHA-256 hashes.
pub fn release_version(
    options: &EngineOptions,
    feature: &str,
    version: &str,
) -> crate::Result<EditOutcome> {
    let (path, text, document) = read_feature(options, feature)?;
    let file = path.display().to_string();
    let version_pointer = format!("/versions/{}", pointer_token(version));
    let reject = |message: String| ConfigError::Rejected {
        file: file.clone(),
        pointer: version_pointer.clone(),
        message,
    };
    let Some(Value::Object(spec)) = document.pointer(&version_pointer) else {
        return Err(reject(format!("no version \"{version}\" to release")).into());
    };
    if spec.get("status").and_then(Value::as_str) != Some("draft") {
        return Err(reject(format!(
            "version \"{version}\" is already released and immutable"
        ))
        .into());
    }
    let mut spec = spec.clone();
    let mut hashes = serde_json::Map::new();
    for message in spec
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(template) = message.get("template").and_then(Value::as_str) else {
            continue;
        };
        let template_path = safe_template_path(&options.prompts_dir, feature, version, template)
            .map_err(&reject)?;
        let bytes = fs::read(&template_path).map_err(|source| ConfigError::Io {
            path: template_path,
            source,
        })?;
        hashes.insert(template.to_string(), Value::String(sha256_hex(&bytes)));
    }
    spec.insert("status".into(), Value::String("released".into()));
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    spec.insert("released_at".into(), Value::String(now));
    spec.insert("sha256".into(), Value::Object(hashes));

    let span = value_span(&text, &["versions", version])
        .ok_or_else(|| reject("version not found in text".into()))?;
    let indent = line_indent(&text, span.start);
    let unit = indent_unit(&text);
    let rendered = pretty(&Value::Object(spec), &unit).replace('\n', &format!("\n{indent}"));
    let edited = format!("{}{}{}", &text[..span.start], rendered, &text[span.end..]);
    commit(options, &path, edited)?;
    Ok(EditOutcome {
        file,
        before: "draft".into(),
        after: "released".into(),
    })
}

fn read_feature(options: &EngineOptions, feature: &str) -> crate::Result<(PathBuf, String, Value)> {
    let path = options
        .config_dir
        .join("features")
        .join(format!("{feature}.json"));
    let text = fs::read_to_string(&path).map_err(|source| ConfigError::Io {
        path: path.clone(),
        source,
    })?;
    let document = serde_json::from_str(&text).map_err(|error| ConfigError::Rejected {
        file: path.display().to_string(),
        pointer: String::new(),
        message: format!("invalid JSON: {error}"),
    })?;
    Ok((path, text, document))
}

/// Validates the whole configuration with `edited` in place, then replaces the file atomically.
fn commit(options: &EngineOptions, path: &Path, edited: String) -> crate::Result<()> {
    let edited = edited.into_bytes();
    Snapshot::load_with_overrides(options, &[(path.to_path_buf(), edited.clone())])?;
    let io = |source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    };
    let directory = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("feature.json");
    let temporary = directory.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(&edited)?;
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
    written.map_err(io)?;
    Ok(())
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
