//! `Engine::stream`: the streaming walk on mock providers and a scripted custom provider, on a
//! manual clock. Before the first token a failure follows `complete()`'s policy; after it the
//! call ends `stream_incomplete` with the partial text (or restarts when configured); the caller
//! can stop it; budgets, telemetry figures and the response cache treat it like `complete()`.

#[path = "../support/mod.rs"]
mod support;

mod after_first_token;
mod before_first_token;
mod cancellation;
mod completion;
mod messages;
mod scripted;
mod settings;
mod setup;
mod telemetry;
