//! OTLP export (issue 15): a loopback collector decodes what the exporter sends with the
//! `opentelemetry-proto` crate's own prost messages (a separate decoding from our encoder's
//! mapping) and checks the span tree, names, attributes, units, the `traceparent` join, and
//! retries and counted drops when the collector is down or answers 503.

#[path = "../support/mod.rs"]
mod support;

// H1: the exporter's delivery (transport, retries, drops, CLI).
mod transport;

// H5: traceparent from callers to providers.
mod propagation;
