//! The resource and instrumentation scope every export request carries: `service.name` and the
//! configured resource attributes, the `telemetry.sdk.*` triple naming this crate, and the
//! pinned semantic conventions as `schema_url` (see [`crate::telemetry::otlp::SCHEMA_URL`]).

use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::attributes::Attributes;
use crate::telemetry::otlp::OtlpOptions;

/// The instrumentation scope's (and `telemetry.sdk.name`'s) name.
pub(super) const SCOPE_NAME: &str = "prompt_config";

/// The crate's version, as `telemetry.sdk.version` and the scope's version.
pub(super) const CRATE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The resource of `options`. `service.name` is the option's (a `service.name` among the
/// resource attributes gives way to it, as `OTEL_SERVICE_NAME` wins over
/// `OTEL_RESOURCE_ATTRIBUTES` in the SDK specification); the `telemetry.sdk.*` attributes are
/// always ours.
pub(super) fn resource(options: &OtlpOptions) -> Resource {
    let mut attributes = Attributes::default();
    attributes.string("service.name", options.service_name.as_str());
    for (key, value) in &options.resource_attributes {
        let ours = matches!(
            key.as_str(),
            "service.name"
                | "telemetry.sdk.name"
                | "telemetry.sdk.language"
                | "telemetry.sdk.version"
        );
        if !ours {
            attributes.string(key, value.as_str());
        }
    }
    attributes
        .string("telemetry.sdk.name", SCOPE_NAME)
        .string("telemetry.sdk.language", "rust")
        .string("telemetry.sdk.version", CRATE_VERSION);
    Resource {
        attributes: attributes.0,
        ..Resource::default()
    }
}

/// The instrumentation scope: `prompt_config` at the crate's version.
pub(super) fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: SCOPE_NAME.to_string(),
        version: CRATE_VERSION.to_string(),
        ..InstrumentationScope::default()
    }
}
