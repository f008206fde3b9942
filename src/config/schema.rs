//! The JSON Schemas compiled into the binary, so the library validates with exactly the schema it
//! was built with, whatever copy sits on disk. A test keeps `config/schema/` and these in step.

use std::sync::OnceLock;

use serde_json::Value;

use super::Problem;

/// The feature schema's text as shipped in `config/schema/feature_config_schema.json`.
pub const FEATURE_SCHEMA: &str = include_str!("../../config/schema/feature_config_schema.json");
/// The providers schema's text as shipped in `config/schema/providers_schema.json`.
pub const PROVIDERS_SCHEMA: &str = include_str!("../../config/schema/providers_schema.json");

/// Which embedded schema a document is checked against.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SchemaKind {
    Feature,
    Providers,
}

fn compiled(kind: SchemaKind) -> Result<&'static jsonschema::Validator, &'static str> {
    static FEATURE: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    static PROVIDERS: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    let (cell, text) = match kind {
        SchemaKind::Feature => (&FEATURE, FEATURE_SCHEMA),
        SchemaKind::Providers => (&PROVIDERS, PROVIDERS_SCHEMA),
    };
    cell.get_or_init(|| {
        let schema: Value = serde_json::from_str(text).map_err(|error| error.to_string())?;
        jsonschema::validator_for(&schema).map_err(|error| error.to_string())
    })
    .as_ref()
    .map_err(String::as_str)
}

/// Checks `document` against the embedded schema and returns one problem per violation.
pub(crate) fn check(kind: SchemaKind, file: &str, document: &Value) -> Vec<Problem> {
    let validator = match compiled(kind) {
        Ok(validator) => validator,
        Err(message) => {
            return vec![Problem::new(
                file,
                "",
                format!("the embedded schema does not compile: {message}"),
            )];
        }
    };
    // Nearly every document is valid: the short-circuiting check skips building error values.
    if validator.is_valid(document) {
        return Vec::new();
    }
    validator
        .iter_errors(document)
        .map(|error| Problem::new(file, error.instance_path().as_str(), error.to_string()))
        .collect()
}
