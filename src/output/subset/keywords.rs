//! The subset's word lists: the type names, the string formats both providers accept, and why
//! each commonly used keyword outside the subset is refused.

/// The JSON types a `type` may name.
pub(super) const TYPES: &[&str] = &[
    "object", "array", "string", "number", "integer", "boolean", "null",
];

/// String `format`s both providers accept (OpenAI's list minus none; Anthropic's minus `uri`).
pub(super) const FORMATS: &[&str] = &[
    "date-time",
    "time",
    "date",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uuid",
];

/// Why a keyword outside the subset is refused, naming the common ones' alternatives.
pub(super) fn unsupported(keyword: &str) -> String {
    let why = match keyword {
        "allOf" | "oneOf" | "not" => {
            "composition other than anyOf is refused by OpenAI strict mode"
        }
        "if" | "then" | "else" | "dependentRequired" | "dependentSchemas" => {
            "conditional schemas are refused by both providers"
        }
        "patternProperties"
        | "propertyNames"
        | "unevaluatedProperties"
        | "minProperties"
        | "maxProperties" => "objects must have fixed properties in both providers' strict modes",
        "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" | "multipleOf" => {
            "numeric bounds are refused by Anthropic structured outputs"
        }
        "minLength" | "maxLength" | "pattern" => {
            "string bounds and patterns are refused by Anthropic (patterns: differing regex dialects)"
        }
        "prefixItems" | "contains" | "uniqueItems" | "unevaluatedItems" => {
            "only \"items\", \"minItems\" and \"maxItems\" describe arrays in the subset"
        }
        "definitions" => "use \"$defs\"",
        _ => "it is not in the subset both providers accept (see README, Structured output)",
    };
    format!("keyword \"{keyword}\" is not supported: {why}")
}
