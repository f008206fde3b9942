//! The crate-level error type. Every module has its own `thiserror` enum; this one wraps them and
//! gives each failure a stable, machine-readable `kind()` that the C ABI and the Ruby gem map to
//! status codes and exception classes, so renaming a message never breaks a caller.

use crate::client::CompleteError;
use crate::config::ConfigError;
use crate::prompt::PromptError;
use crate::resolve::ResolveError;
use crate::telemetry::TelemetryError;

/// Any failure the library reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Loading or validating configs and prompts failed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Resolving a feature for a subject failed.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The variables did not match the version's declaration, or rendering failed.
    #[error(transparent)]
    Prompt(#[from] PromptError),
    /// The model call failed or a budget refused it.
    #[error(transparent)]
    Complete(#[from] CompleteError),
    /// The telemetry file could not be opened, or feedback was unusable.
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
}

/// Shorthand for results carrying the crate-level [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A stable snake_case identifier of the failure, for codes and exception classes.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config(error) => error.kind(),
            Error::Resolve(error) => error.kind(),
            Error::Prompt(error) => error.kind(),
            Error::Complete(error) => error.kind(),
            Error::Telemetry(error) => error.kind(),
        }
    }

    /// Structured details (problems, missing variables, ...) as JSON, for bindings.
    pub fn details(&self) -> serde_json::Value {
        match self {
            Error::Config(error) => error.details(),
            Error::Resolve(error) => error.details(),
            Error::Prompt(error) => error.details(),
            Error::Complete(error) => error.details(),
            Error::Telemetry(error) => error.details(),
        }
    }
}

/// Every kind [`Error::kind`] can return, in a fixed order that bindings number from.
pub const ERROR_KINDS: &[&str] = &[
    "config_invalid",
    "prompt_integrity",
    "io",
    "unknown_feature",
    "unknown_version",
    "missing_variable",
    "invalid_variable",
    "render_failed",
    "provider_error",
    "rate_limited",
    "timeout",
    "all_providers_failed",
    "circuit_open",
    "budget_exceeded",
    "missing_api_key",
    "invalid_feedback",
];
