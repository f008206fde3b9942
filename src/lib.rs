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
mod engine;
mod error;
mod options;
pub mod prompt;
pub mod resolve;
mod snapshot;
pub mod state;
pub mod targeting;
pub mod telemetry;

pub use engine::Engine;
pub use error::{Error, ErrorKind, RETIRED_CODES, Result};
pub use prompt::{Message, PromptError, Role};
pub use resolve::{Context, Resolution, ResolveError, Source};
pub use snapshot::{EngineOptions, Snapshot, Summary};
