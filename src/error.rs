//! The crate-level error type. Every module has its own `thiserror` enum; this one wraps them and
//! gives each failure a typed [`ErrorKind`] (stable name, fixed code, retryability) that the C ABI and the Ruby gem map to
//! status codes and exception classes, so renaming a message never breaks a caller.

use crate::client::CompleteError;
use crate::config::ConfigError;
use crate::prompt::PromptError;
use crate::resolve::{ResolveError, ResolveFailure};
use crate::state::StateError;
use crate::telemetry::TelemetryError;

pub(crate) mod eval;
pub(crate) mod kind;

pub use eval::{DatasetProblem, EvalError};
use kind::ErrorKind;

/// Any failure the library reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
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
    /// The shared state backend was misconfigured or unavailable.
    #[error(transparent)]
    State(#[from] StateError),
    /// An evaluation could not run (its dataset or options), or a release that required one
    /// was refused.
    #[error(transparent)]
    Eval(#[from] EvalError),
}

/// Shorthand for results carrying the crate-level [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<ResolveFailure> for Error {
    fn from(failure: ResolveFailure) -> Self {
        match failure {
            ResolveFailure::Resolve(error) => Error::Resolve(error),
            ResolveFailure::Prompt(error) => Error::Prompt(error),
        }
    }
}

impl Error {
    /// What kind of failure this is: a stable name and code for bindings, and whether a retry
    /// may help ([`ErrorKind::is_retryable`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(error) => error.kind(),
            Error::Resolve(error) => error.kind(),
            Error::Prompt(error) => error.kind(),
            Error::Complete(error) => error.kind(),
            Error::Telemetry(error) => error.kind(),
            Error::State(error) => error.kind(),
            Error::Eval(error) => error.kind(),
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
            Error::State(error) => error.details(),
            Error::Eval(error) => error.details(),
        }
    }
}

#[cfg(test)]
mod tests;
