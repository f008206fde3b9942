//! Reading and checking the configuration directory: `providers.json` and `features/*.json`,
//! each parsed, validated against the embedded JSON Schema and cross-checked (versions, providers,
//! models, weights, conditions) before anything is served. Every problem found is reported at
//! once as `file: /json/pointer: message`, so one run of `prompt-config validate` lists them all.

mod cache;
mod declarations;
pub(crate) mod json;
mod loader;
mod model;
mod references;
mod schema;
mod settings;
mod span;

use std::fmt;
use std::path::PathBuf;

#[cfg_attr(not(feature = "test-hooks"), allow(unused_imports))]
pub use cache::{CacheSettings, NormalizeRules, NormalizeSettings};
pub use declarations::{DECLARATION_KEYS, declaration_hashes};
pub(crate) use json::{UTF8_BOM, parse_strict};
pub(crate) use loader::{FileDigest, LoadedFeature, load_config};
pub use model::*;
#[cfg_attr(not(feature = "test-hooks"), allow(unused_imports))]
pub use schema::{FEATURE_SCHEMA, PROVIDERS_SCHEMA};
pub use settings::*;
pub(crate) use span::value_span;

/// One thing wrong with the configuration, located by file and JSON pointer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The file at fault, as a path under the directory that was loaded.
    pub file: String,
    /// An RFC 6901 JSON pointer into that file (empty for the whole document).
    pub pointer: String,
    /// What is wrong, for a human.
    pub message: String,
    /// True when a released version's file no longer matches its recorded hash.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub integrity: bool,
}

impl Problem {
    /// A problem at `pointer` in `file`.
    pub fn new(
        file: impl Into<String>,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            file: file.into(),
            pointer: pointer.into(),
            message: message.into(),
            integrity: false,
        }
    }

    /// A hash mismatch of a released version's file.
    pub fn integrity(
        file: impl Into<String>,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Problem {
            integrity: true,
            ..Problem::new(file, pointer, message)
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(formatter, "{}: {}: {}", self.file, pointer, self.message)
    }
}

/// Escapes one JSON pointer reference token (RFC 6901: `~` then `/`).
pub fn pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Errors of loading the configuration or editing its files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration has problems; nothing from it is served.
    #[error("{}", ProblemList(.problems))]
    Invalid {
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
    /// A file could not be read or written outside of loading (for example by rollback).
    #[error("{path}: {source}")]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A command was asked to do something the configuration does not allow.
    #[error("{file}: {pointer}: {message}")]
    Rejected {
        /// The file the command would have changed.
        file: String,
        /// Where in it.
        pointer: String,
        /// Why it was refused.
        message: String,
    },
    /// A command named a version the feature does not have.
    #[error("{file}: {pointer}: {message}")]
    UnknownVersion {
        /// The feature's file.
        file: String,
        /// Where the version would be (`/versions` or `/versions/<version>`).
        pointer: String,
        /// Which version, and what the command wanted of it.
        message: String,
    },
    /// An edit was written but the configuration, loaded again, did not serve its value; the
    /// original file was put back (the message says whether that worked).
    #[error("{file}: {message}")]
    Unverified {
        /// The file the command changed and restored.
        file: String,
        /// What was served instead, and whether the original was restored.
        message: String,
    },
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        write!(
            formatter,
            "{count} configuration problem{}:",
            if count == 1 { "" } else { "s" }
        )?;
        for problem in self.0 {
            write!(formatter, "\n  {problem}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    /// `prompt_integrity` when every problem is a changed released file, `unknown_version` for
    /// an edit naming a version the feature lacks, `io` for a file that could not be read or
    /// written, else `config_invalid`.
    pub fn kind(&self) -> crate::ErrorKind {
        match self {
            ConfigError::Invalid { problems }
                if !problems.is_empty() && problems.iter().all(|p| p.integrity) =>
            {
                crate::ErrorKind::PromptIntegrity
            }
            ConfigError::Invalid { .. }
            | ConfigError::Rejected { .. }
            | ConfigError::Unverified { .. } => crate::ErrorKind::ConfigInvalid,
            ConfigError::UnknownVersion { .. } => crate::ErrorKind::UnknownVersion,
            ConfigError::Io { .. } => crate::ErrorKind::Io,
        }
    }

    /// The problems as JSON, for bindings.
    pub fn details(&self) -> serde_json::Value {
        match self {
            ConfigError::Invalid { problems } => serde_json::json!({ "problems": problems }),
            ConfigError::Io { path, .. } => {
                serde_json::json!({ "path": path.display().to_string() })
            }
            ConfigError::Rejected { file, pointer, .. }
            | ConfigError::UnknownVersion { file, pointer, .. } => {
                serde_json::json!({ "file": file, "pointer": pointer })
            }
            ConfigError::Unverified { file, .. } => {
                serde_json::json!({ "file": file, "unverified": true })
            }
        }
    }

    /// The problems of an `Invalid` error (empty for other kinds).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid { problems } => problems,
            _ => &[],
        }
    }
}
