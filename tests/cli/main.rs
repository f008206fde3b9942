//! The `prompt-config` command line, run as a user runs it in a private copy of the shipped
//! configuration: one module per area of the command line.

#[path = "../support/mod.rs"]
mod support;

mod attributes;
mod cache;
mod cache_warm;
mod commands;
mod complete;
mod demo;
mod edit;
// issue 14, H4: the evaluation commands
mod dataset;
mod eval;
mod history;
mod load;
mod robustness;
mod state;
mod stream;
mod usage;
// issue 15, H4: alert channels
mod alerts;
