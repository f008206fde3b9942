//! Configuration and resolution: broken configurations and the problems they report, the JSON
//! Schemas, reloading, resolution on the shipped feature, GrowthBook's conformance suite for
//! targeting and bucketing, and the README's Rust example.

#[path = "../support/mod.rs"]
mod support;

mod broken_configs;
mod cache;
mod growthbook_conformance;
mod readme_example;
mod reload;
mod resolve;
mod schema;
mod structured_output;
