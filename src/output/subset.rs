//! The JSON Schema subset a version's output schema and tool parameters must keep to: what
//! OpenAI's strict mode (`response_format` `json_schema` with `strict: true`, strict function
//! calling) and Anthropic's structured outputs (`output_config.format`, strict tools) both
//! accept, so one declaration is sent unchanged to either provider and a failover between them
//! never meets a schema the next provider refuses. The loader runs [`check_subset`] on every
//! declared schema and reports each problem at its JSON pointer.
//!
//! Sources: OpenAI, *Structured Outputs*, "Supported schemas" (root an object and not `anyOf`;
//! every object `additionalProperties: false` with every property in `required`; `allOf`,
//! `not`, `if`/`then`/`else`, `dependentRequired`, `dependentSchemas`, `patternProperties`...
//! refused; at most 5,000 object properties, 10 levels of nesting, 1,000 enum values, 120,000
//! characters of names, enum and const values, and 15,000 characters for one string enum of more
//! than 250 values). Anthropic, *Structured outputs*, "JSON Schema limitations" (no recursive
//! schemas; no numeric or string-length constraints; `minItems` 0 or 1 only, no `maxItems`;
//! `enum` of primitives only; `additionalProperties` false only; at most 16 parameters using
//! `anyOf` or type arrays).
//!
//! Two array bounds go beyond what Anthropic's constrained decoding takes: `minItems` above 1 and
//! `maxItems`. They are allowed because this library validates every answer itself (with
//! `jsonschema`, against the schema as declared) and repairs or fails over an answer that breaks
//! them; [`portable_schema`] is the declared schema without them, the form Anthropic's native
//! structured output is sent.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::SchemaProblem;
use depth::Depth;
use keywords::{FORMATS, TYPES, unsupported};
pub use portable::portable_schema;

mod depth;
mod keywords;
mod portable;

/// OpenAI: object properties across the whole schema.
pub const MAX_PROPERTIES: usize = 5_000;
/// OpenAI: levels of object nesting, the root object being level 1.
pub const MAX_DEPTH: usize = 10;
/// OpenAI: enum values across the whole schema.
pub const MAX_ENUM_VALUES: usize = 1_000;
/// OpenAI: characters of property names, `$defs` names, enum and const values together.
pub const MAX_STRING_LENGTH: usize = 120_000;
/// OpenAI: a string enum of more than this many values...
pub const LARGE_ENUM: usize = 250;
/// ...may hold at most this many characters in all.
pub const MAX_LARGE_ENUM_LENGTH: usize = 15_000;
/// Anthropic: schemas using `anyOf` or a type array.
pub const MAX_UNIONS: usize = 16;

/// Whether `name` is a valid schema or tool name for both providers: 1 to 64 ASCII letters,
/// digits, `_` or `-` (OpenAI `json_schema.name` and `function.name`; Anthropic `tools[].name`).
///
/// Errors: what is wrong with it, for a human.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty; use 1 to 64 letters, digits, _ or -".into());
    }
    if name.len() > 64 {
        return Err(format!(
            "the name has {} characters; at most 64 (letters, digits, _ or -)",
            name.chars().count()
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        Some(bad) => Err(format!(
            "the name {name:?} has {bad:?}; only letters, digits, _ and - are allowed"
        )),
        None => Ok(()),
    }
}

/// Every way `schema` leaves the subset described in this module, each at its JSON pointer into
/// `schema` (empty for the root); empty when it keeps to it. Never panics, whatever the JSON.
pub fn check_subset(schema: &Value) -> Vec<SchemaProblem> {
    let mut checker = Checker {
        defs: BTreeMap::new(),
        problems: Vec::new(),
        properties: 0,
        enum_values: 0,
        string_length: 0,
        unions: 0,
        refs: Vec::new(),
    };
    if let Some(Value::Object(defs)) = schema.get("$defs") {
        checker.defs = defs.iter().map(|(name, def)| (name.clone(), def)).collect();
    }
    checker.node(schema, "", Place::Root);
    checker.recursion();
    checker.totals();
    if checker.problems.is_empty() {
        let depth = Depth::new(&checker.defs).of(schema);
        if depth > MAX_DEPTH {
            checker.problem(
                "",
                format!(
                    "objects nest {depth} levels deep; at most {MAX_DEPTH} (the root is level 1)"
                ),
            );
        }
    }
    checker.problems
}

/// Where a schema sits: the root, a `$defs` entry, or anywhere else.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Root,
    Def,
    Inner,
}

struct Checker<'a> {
    defs: BTreeMap<String, &'a Value>,
    problems: Vec<SchemaProblem>,
    properties: usize,
    enum_values: usize,
    string_length: usize,
    unions: usize,
    /// Every `$ref` to an existing definition: (the definition it sits in, if any; its target;
    /// its pointer).
    refs: Vec<(Option<String>, String, String)>,
}

/// JSON pointer `pointer` extended by one reference token (RFC 6901: `~` then `/` escaped).
fn child(pointer: &str, token: &str) -> String {
    format!("{pointer}/{}", token.replace('~', "~0").replace('/', "~1"))
}

fn is_primitive(value: &Value) -> bool {
    !matches!(value, Value::Array(_) | Value::Object(_))
}

impl<'a> Checker<'a> {
    fn problem(&mut self, pointer: &str, message: impl Into<String>) {
        self.problems.push(SchemaProblem {
            pointer: pointer.to_string(),
            message: message.into(),
        });
    }

    /// Checks one schema at `pointer`; `def` names the `$defs` entry it lies in, if any.
    fn node(&mut self, node: &'a Value, pointer: &str, place: Place) {
        self.node_in(node, pointer, place, None);
    }

    fn node_in(&mut self, node: &'a Value, pointer: &str, place: Place, def: Option<&str>) {
        let Value::Object(map) = node else {
            self.problem(
                pointer,
                "a schema must be a JSON object here (boolean schemas are not in the subset)",
            );
            return;
        };
        let types = self.types(map, pointer, place);
        let has = |key: &str| map.contains_key(key);
        if has("$ref") {
            if place == Place::Root {
                self.problem(
                    &child(pointer, "$ref"),
                    "the root may not be a $ref: it must be {\"type\": \"object\"} itself",
                );
            }
            self.only_description(map, pointer, "$ref");
            self.reference(map.get("$ref"), &child(pointer, "$ref"), def);
        } else if has("anyOf") {
            if place == Place::Root {
                self.problem(
                    &child(pointer, "anyOf"),
                    "the root may not be anyOf: it must be one object (OpenAI)",
                );
            }
            self.only_description(map, pointer, "anyOf");
            self.any_of(map.get("anyOf"), &child(pointer, "anyOf"), def);
        } else if types.is_none() && !has("type") {
            self.problem(
                pointer,
                "a schema must declare its \"type\" (or be an \"anyOf\" or a \"$ref\")",
            );
        }
        let types = types.unwrap_or_default();
        // Beside `$ref` and `anyOf`, every other keyword was reported once already.
        let composite = has("$ref") || has("anyOf");
        for (key, value) in map {
            let at = child(pointer, key);
            if composite && !matches!(key.as_str(), "description" | "$defs") {
                continue;
            }
            match key.as_str() {
                "type" | "$ref" | "anyOf" => {}
                "description" => {
                    if !value.is_string() {
                        self.problem(&at, "\"description\" must be a string");
                    }
                }
                "enum" => self.enumeration(value, &at),
                "const" => {
                    if is_primitive(value) {
                        self.string_length += value.as_str().map_or(0, |s| s.chars().count());
                    } else {
                        self.problem(&at, "\"const\" must be a string, number, boolean or null");
                    }
                }
                "$defs" => {
                    if place != Place::Root {
                        self.problem(&at, "\"$defs\" belongs at the root only");
                    } else if let Value::Object(defs) = value {
                        for (name, def_schema) in defs {
                            self.string_length += name.chars().count();
                            self.node_in(def_schema, &child(&at, name), Place::Def, Some(name));
                        }
                    } else {
                        self.problem(&at, "\"$defs\" must be an object of schemas");
                    }
                }
                "properties" | "required" | "additionalProperties" if types.contains("object") => {}
                "items" | "minItems" | "maxItems" if types.contains("array") => {}
                "format" if types.contains("string") => self.format(value, &at),
                "properties"
                | "required"
                | "additionalProperties"
                | "items"
                | "minItems"
                | "maxItems"
                | "format" => {
                    let applies = match key.as_str() {
                        "items" | "minItems" | "maxItems" => "array",
                        "format" => "string",
                        _ => "object",
                    };
                    self.problem(
                        &at,
                        format!("\"{key}\" applies to type {applies}, which this schema does not declare"),
                    );
                }
                other => self.problem(&at, unsupported(other)),
            }
        }
        if types.contains("object") {
            self.object(map, pointer, def);
        }
        if types.contains("array") {
            self.array(map, pointer, def);
        }
    }

    /// The declared types, or `None` when `type` is absent or broken (reported).
    fn types(
        &mut self,
        map: &Map<String, Value>,
        pointer: &str,
        place: Place,
    ) -> Option<BTreeSet<&'static str>> {
        let value = map.get("type")?;
        let at = child(pointer, "type");
        let known = |name: &str| TYPES.iter().copied().find(|known| *known == name);
        let types = match value {
            Value::String(name) => match known(name) {
                Some(name) => BTreeSet::from([name]),
                None => {
                    self.problem(
                        &at,
                        format!("unknown type {name:?}; one of {}", TYPES.join(", ")),
                    );
                    return None;
                }
            },
            Value::Array(names) if !names.is_empty() => {
                self.unions += 1;
                let mut types = BTreeSet::new();
                for (index, name) in names.iter().enumerate() {
                    let at = child(&at, &index.to_string());
                    match name.as_str().and_then(known) {
                        Some(name) if types.insert(name) => {}
                        Some(name) => self.problem(&at, format!("type {name:?} is listed twice")),
                        None => self
                            .problem(&at, format!("not a type name; one of {}", TYPES.join(", "))),
                    }
                }
                types
            }
            _ => {
                self.problem(
                    &at,
                    "\"type\" must be a type name or a non-empty array of them",
                );
                return None;
            }
        };
        if place == Place::Root && (types.len() != 1 || !types.contains("object")) {
            self.problem(
                &at,
                "the root must be {\"type\": \"object\"} (both providers)",
            );
        }
        Some(types)
    }

    /// `$ref` and `anyOf` carry no keyword but a `description` beside them.
    fn only_description(&mut self, map: &Map<String, Value>, pointer: &str, keyword: &str) {
        for key in map.keys() {
            if key != keyword && key != "description" && key != "$defs" {
                self.problem(
                    &child(pointer, key),
                    format!("only \"description\" may stand beside \"{keyword}\""),
                );
            }
        }
    }

    fn reference(&mut self, value: Option<&Value>, at: &str, def: Option<&str>) {
        let target = value
            .and_then(Value::as_str)
            .and_then(|reference| reference.strip_prefix("#/$defs/"))
            .map(|token| token.replace("~1", "/").replace("~0", "~"));
        match target {
            Some(name) if !name.contains('/') && self.defs.contains_key(&name) => {
                self.refs.push((def.map(str::to_string), name, at.to_string()));
            }
            Some(name) if !name.contains('/') => {
                self.problem(at, format!("no definition \"{name}\" in the root's \"$defs\""));
            }
            _ => self.problem(
                at,
                "a \"$ref\" must be \"#/$defs/<name>\": local definitions only, no other pointer or URL",
            ),
        }
    }

    fn any_of(&mut self, value: Option<&'a Value>, at: &str, def: Option<&str>) {
        match value {
            Some(Value::Array(branches)) if !branches.is_empty() => {
                self.unions += 1;
                for (index, branch) in branches.iter().enumerate() {
                    self.node_in(branch, &child(at, &index.to_string()), Place::Inner, def);
                }
            }
            _ => self.problem(at, "\"anyOf\" must be a non-empty array of schemas"),
        }
    }

    fn enumeration(&mut self, value: &Value, at: &str) {
        let Value::Array(values) = value else {
            self.problem(at, "\"enum\" must be a non-empty array");
            return;
        };
        if values.is_empty() {
            self.problem(at, "\"enum\" must be a non-empty array");
        }
        self.enum_values += values.len();
        let mut length = 0;
        for (index, item) in values.iter().enumerate() {
            if !is_primitive(item) {
                self.problem(
                    &child(at, &index.to_string()),
                    "enum values must be strings, numbers, booleans or null (Anthropic)",
                );
            } else if values[..index].contains(item) {
                self.problem(
                    &child(at, &index.to_string()),
                    "this enum value is listed twice",
                );
            }
            length += item.as_str().map_or(0, |s| s.chars().count());
        }
        self.string_length += length;
        let strings = values.iter().filter(|item| item.is_string()).count();
        if strings > LARGE_ENUM && length > MAX_LARGE_ENUM_LENGTH {
            self.problem(
                at,
                format!(
                    "an enum of more than {LARGE_ENUM} strings may hold at most \
                     {MAX_LARGE_ENUM_LENGTH} characters; this one has {length}"
                ),
            );
        }
    }

    fn format(&mut self, value: &Value, at: &str) {
        if !value
            .as_str()
            .is_some_and(|format| FORMATS.contains(&format))
        {
            self.problem(
                at,
                format!("\"format\" must be one of {}", FORMATS.join(", ")),
            );
        }
    }

    fn object(&mut self, map: &'a Map<String, Value>, pointer: &str, def: Option<&str>) {
        let mut names = Vec::new();
        match map.get("properties") {
            Some(Value::Object(properties)) => {
                let at = child(pointer, "properties");
                for (name, schema) in properties {
                    self.properties += 1;
                    self.string_length += name.chars().count();
                    names.push(name.as_str());
                    self.node_in(schema, &child(&at, name), Place::Inner, def);
                }
            }
            Some(_) => self.problem(
                &child(pointer, "properties"),
                "\"properties\" must be an object of schemas",
            ),
            None => self.problem(
                pointer,
                "an object must list its \"properties\" (use {} for none): arbitrary objects are not in the subset",
            ),
        }
        if map.get("additionalProperties") != Some(&Value::Bool(false)) {
            let at = if map.contains_key("additionalProperties") {
                child(pointer, "additionalProperties")
            } else {
                pointer.to_string()
            };
            self.problem(
                &at,
                "an object must set \"additionalProperties\": false (both providers)",
            );
        }
        let at = child(pointer, "required");
        let required: Vec<&str> = match map.get("required") {
            Some(Value::Array(items)) => {
                let mut seen = BTreeSet::new();
                let mut listed = Vec::new();
                for (index, item) in items.iter().enumerate() {
                    let item_at = child(&at, &index.to_string());
                    match item.as_str() {
                        Some(name) if !names.contains(&name) => self.problem(
                            &item_at,
                            format!("\"{name}\" is required but is not a property"),
                        ),
                        Some(name) if !seen.insert(name) => {
                            self.problem(&item_at, format!("\"{name}\" is listed twice"))
                        }
                        Some(name) => listed.push(name),
                        None => {
                            self.problem(&item_at, "\"required\" lists property names (strings)")
                        }
                    }
                }
                listed
            }
            Some(_) => {
                self.problem(&at, "\"required\" must be an array of property names");
                return;
            }
            None if names.is_empty() => Vec::new(),
            None => {
                self.problem(
                    pointer,
                    "an object must list every property in \"required\" (OpenAI strict mode)",
                );
                return;
            }
        };
        for name in names {
            if !required.contains(&name) {
                self.problem(
                    &at,
                    format!(
                        "property \"{name}\" must be listed in \"required\": every property is \
                         (OpenAI strict mode); write an optional one as {{\"type\": [\"string\", \"null\"]}}"
                    ),
                );
            }
        }
    }

    fn array(&mut self, map: &'a Map<String, Value>, pointer: &str, def: Option<&str>) {
        match map.get("items") {
            Some(items) => self.node_in(items, &child(pointer, "items"), Place::Inner, def),
            None => self.problem(pointer, "an array must declare its \"items\" schema"),
        }
        let bound = |key: &str| {
            map.get(key)
                .map(|value| (value.as_u64(), child(pointer, key)))
        };
        let min = bound("minItems");
        let max = bound("maxItems");
        for (value, at) in [&min, &max].into_iter().flatten() {
            if value.is_none() {
                self.problem(at, "must be a non-negative integer");
            }
        }
        if let (Some((Some(min), _)), Some((Some(max), at))) = (&min, &max)
            && min > max
        {
            self.problem(
                at,
                format!("\"maxItems\" {max} is below \"minItems\" {min}"),
            );
        }
    }

    /// Reports a `$ref` that leads back to the definition it lies in (Anthropic refuses
    /// recursive schemas; OpenAI takes them, the subset does not).
    fn recursion(&mut self) {
        let mut edges: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
        for (from, to, at) in &self.refs {
            if let Some(from) = from {
                edges
                    .entry(from.as_str())
                    .or_default()
                    .push((to.as_str(), at.as_str()));
            }
        }
        let mut cyclic = Vec::new();
        for start in edges.keys() {
            // Depth-first from `start`: a path back to it closes a cycle at that edge.
            let mut stack: Vec<&str> = vec![start];
            let mut seen = BTreeSet::new();
            while let Some(current) = stack.pop() {
                for (to, at) in edges.get(current).into_iter().flatten() {
                    if to == start {
                        cyclic.push(at.to_string());
                    } else if seen.insert(*to) {
                        stack.push(to);
                    }
                }
            }
        }
        cyclic.sort();
        cyclic.dedup();
        for at in cyclic {
            self.problem(
                &at,
                "this reference makes the schema recursive; recursive schemas are not in the subset (Anthropic)",
            );
        }
    }

    fn totals(&mut self) {
        if self.properties > MAX_PROPERTIES {
            let count = self.properties;
            self.problem(
                "",
                format!("{count} object properties; at most {MAX_PROPERTIES}"),
            );
        }
        if self.enum_values > MAX_ENUM_VALUES {
            let count = self.enum_values;
            self.problem(
                "",
                format!("{count} enum values; at most {MAX_ENUM_VALUES}"),
            );
        }
        if self.string_length > MAX_STRING_LENGTH {
            let count = self.string_length;
            self.problem(
                "",
                format!(
                    "{count} characters of property names, definition names, enum and const \
                     values; at most {MAX_STRING_LENGTH}"
                ),
            );
        }
        if self.unions > MAX_UNIONS {
            let count = self.unions;
            self.problem(
                "",
                format!(
                    "{count} schemas use anyOf or a type array; at most {MAX_UNIONS} (Anthropic)"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests;
