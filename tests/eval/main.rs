//! Evaluation of prompt versions: datasets and their errors, every assertion kind, runs with
//! repeats and pass-rate thresholds, the judge on loopback servers, comparisons, telemetry
//! events, and `Engine::evaluate` end to end on the mock provider.

#[path = "../support/mod.rs"]
mod support;

// The runner: repeats, thresholds, versions, options.
mod run;

// README's evaluation example, as written.
mod readme;

// H1: datasets (loading, every problem), assertions (each kind true and false), the shipped
// dataset on the mock provider.
mod assertions;
mod dataset;
mod dataset_properties;
mod shipped;
