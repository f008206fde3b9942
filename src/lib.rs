//! prompt_config: per-feature LLM configuration resolved in-process.
//!
//! A Rails app (through the gem) or a Rust service opens one [`Engine`] over a `config/`
//! directory (feature configs validated against JSON Schema) and a `prompts/` directory
//! (versioned MiniJinja templates), then calls [`Engine::resolve`] per request to learn which
//! prompt version and model chain a user gets, by pin, experiment, targeting rule, rollout or the
//! active version, with the messages already rendered.

#![warn(missing_docs)]

/// Declares a module the library uses internally: `pub(crate)`, or, with the `test-hooks` cargo
/// feature (which only this crate's own tests and benchmarks turn on), `pub` and hidden from the
/// documentation, so integration tests can reach what users need not see.
macro_rules! internal_mod {
    ($name:ident) => {
        #[cfg(feature = "test-hooks")]
        #[doc(hidden)]
        pub mod $name;
        #[cfg(not(feature = "test-hooks"))]
        pub(crate) mod $name;
    };
}

/// Re-exports items the library uses internally as `internal_mod!` declares modules: public
/// and hidden only with the `test-hooks` feature.
macro_rules! internal_use {
    ($($path:tt)*) => {
        #[cfg(feature = "test-hooks")]
        #[doc(hidden)]
        pub use $($path)*;
        #[cfg(not(feature = "test-hooks"))]
        #[allow(unused_imports)]
        pub(crate) use $($path)*;
    };
}

internal_mod!(cache);
mod c_api;
pub mod client;
internal_mod!(config);
pub mod edit;
mod engine;
mod error;
pub mod eval;
#[cfg(test)]
mod layers;
mod options;
pub mod output;
mod paths;
internal_mod!(prompt);
pub mod resolve;
mod snapshot;
internal_mod!(targeting);
pub mod state;
pub mod telemetry;

pub use cache::StoreCounts as CacheStoreCounts;
pub use config::{ConfigError, ModelParameters, ModelSpec, Problem};
pub use engine::Engine;
pub use error::kind::{ErrorKind, RETIRED_CODES};
pub use error::{DatasetProblem, Error, EvalError, Result};
pub use options::EngineOptions;
pub use paths::Paths;
pub use prompt::{InvalidVariable, Message, PromptError, Role};
pub use resolve::{Context, InvalidSubjectId, Resolution, ResolveError, Source};
pub use resolve::{InvalidTraceparent, SpanId, SpanRole, TraceContext, TraceId};
pub use snapshot::{Snapshot, Summary};
pub use telemetry::TelemetryError;
