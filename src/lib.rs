//! prompt_config: per-feature LLM configuration resolved in-process.
//!
//! A Rails app (through the gem) or a Rust service opens one [`Engine`] over a `config/`
//! directory (feature configs validated against JSON Schema) and a `prompts/` directory
//! (versioned MiniJinja templates), then calls [`Engine::resolve`] per request to learn which
//! prompt version and model chain a user gets, by pin, experiment, targeting rule, rollout or the
//! active version, with the messages already rendered.

pub mod c_api;
pub mod client;
pub mod config;
pub mod edit;
mod engine;
mod error;
#[cfg(test)]
mod layers;
mod options;
mod paths;
pub mod prompt;
pub mod resolve;
mod snapshot;
pub mod targeting;
pub mod telemetry;

pub use engine::Engine;
pub use error::kind::{ErrorKind, RETIRED_CODES};
pub use error::{Error, Result};
pub use options::EngineOptions;
pub use paths::Paths;
pub use prompt::{Message, PromptError, Role};
pub use resolve::{Context, Resolution, ResolveError, Source};
pub use snapshot::{Snapshot, Summary};
