//! The mock's structured values: JSON generated from a JSON Schema, deterministically from the
//! schema and a seed taken from the prompt, valid against the schema for the subset of keywords
//! both providers' structured outputs accept (`type`, also as a list; `properties`, every one
//! included; `required`; `items`; `minItems`/`maxItems`; `uniqueItems`; `enum`; `const`;
//! `anyOf`/`oneOf`, first branch; local `$ref` into `$defs`/`definitions`; `minimum`,
//! `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf` for integers; `minLength`,
//! `maxLength`; common `format`s). Strings are made of the prompt's words, so an answer reads as
//! if it were about the request. Keywords outside the subset (`pattern`, ...) are not honoured:
//! the answer is then checked by the caller like any provider's.

use serde_json::{Map, Number, Value};

/// How deep `$ref`s and nesting are followed before the generator gives up (`null`): a
/// recursive schema must not recurse forever.
const MAX_DEPTH: u32 = 10;

/// Words used when the prompt has none.
const FALLBACK_WORDS: &[&str] = &["mock", "answer", "career", "path", "skills", "step"];

/// A generator of values: the prompt's words and a SplitMix64 state seeded from the prompt.
pub(crate) struct Generator<'a> {
    root: &'a Value,
    words: Vec<&'a str>,
    state: u64,
}

impl<'a> Generator<'a> {
    /// A generator for `root` (the schema `$ref`s resolve against) drawing words from `prompt`
    /// and choices from `seed`.
    pub(crate) fn new(root: &'a Value, prompt: &'a str, seed: u64) -> Generator<'a> {
        let mut words: Vec<&str> = prompt
            .split(|character: char| !character.is_alphanumeric())
            .filter(|word| word.chars().count() >= 3)
            .collect();
        if words.is_empty() {
            words = FALLBACK_WORDS.to_vec();
        }
        Generator {
            root,
            words,
            state: seed,
        }
    }

    /// A value of `schema` (the root, or any part of it).
    pub(crate) fn value(&mut self, schema: &'a Value) -> Value {
        self.at(schema, 0)
    }

    /// SplitMix64's next output.
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// A number in `0..bound` (0 when `bound` is 0).
    fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 { 0 } else { self.next() % bound }
    }

    fn at(&mut self, schema: &'a Value, depth: u32) -> Value {
        let Some(object) = schema.as_object() else {
            // `true` (anything) or a malformed part: an empty object is some value.
            return Value::Object(Map::new());
        };
        if depth > MAX_DEPTH {
            return Value::Null;
        }
        if let Some(target) = object
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|reference| self.resolve(reference))
        {
            return self.at(target, depth + 1);
        }
        if let Some(constant) = object.get("const") {
            return constant.clone();
        }
        if let Some(Value::Array(options)) = object.get("enum")
            && !options.is_empty()
        {
            let index = self.below(options.len() as u64) as usize;
            return options[index].clone();
        }
        for combinator in ["anyOf", "oneOf"] {
            if let Some(Value::Array(branches)) = object.get(combinator)
                && let Some(first) = branches.first()
            {
                // The first branch: with `oneOf`, a second one the value also matches would
                // make it invalid, and schemas list the main shape first.
                return self.at(first, depth + 1);
            }
        }
        match type_of(object) {
            "object" => self.object(object, depth),
            "array" => self.array(object, depth),
            "integer" => self.integer(object),
            "number" => self.number(object),
            "boolean" => Value::Bool(self.below(2) == 1),
            "null" => Value::Null,
            _ => Value::String(self.string(object)),
        }
    }

    /// `#/$defs/name`, `#/definitions/name` or any JSON pointer into the root.
    fn resolve(&self, reference: &str) -> Option<&'a Value> {
        let pointer = reference.strip_prefix('#')?;
        self.root.pointer(pointer)
    }

    fn object(&mut self, object: &'a Map<String, Value>, depth: u32) -> Value {
        let mut answer = Map::new();
        if let Some(Value::Object(properties)) = object.get("properties") {
            for (name, property) in properties {
                let value = self.at(property, depth + 1);
                answer.insert(name.clone(), value);
            }
        }
        // A required name without a declared property: any value does.
        if let Some(Value::Array(required)) = object.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                if !answer.contains_key(name) {
                    let value = Value::String(self.words(2));
                    answer.insert(name.to_string(), value);
                }
            }
        }
        Value::Object(answer)
    }

    fn array(&mut self, object: &'a Map<String, Value>, depth: u32) -> Value {
        let minimum = unsigned(object, "minItems").unwrap_or(1);
        let maximum = unsigned(object, "maxItems")
            .unwrap_or(minimum.saturating_add(2))
            .max(minimum);
        // At most a few more than the minimum: a mock answer stays short.
        let count = minimum + self.below(maximum.min(minimum.saturating_add(2)) - minimum + 1);
        let unique = object.get("uniqueItems") == Some(&Value::Bool(true));
        let items = object.get("items");
        let mut values: Vec<Value> = Vec::new();
        let mut tries = 0;
        while (values.len() as u64) < count && tries < count.saturating_mul(8).max(8) {
            tries += 1;
            let value = match items {
                Some(items) => self.at(items, depth + 1),
                None => Value::String(self.words(1)),
            };
            if unique && values.contains(&value) {
                continue;
            }
            values.push(value);
        }
        Value::Array(values)
    }

    fn integer(&mut self, object: &Map<String, Value>) -> Value {
        let float = |name: &str| object.get(name).and_then(Value::as_f64);
        let mut low = float("minimum").map(f64::ceil);
        if let Some(bound) = float("exclusiveMinimum") {
            let above = bound.floor() + 1.0;
            low = Some(low.map_or(above, |low| low.max(above)));
        }
        let mut high = float("maximum").map(f64::floor);
        if let Some(bound) = float("exclusiveMaximum") {
            let below = bound.ceil() - 1.0;
            high = Some(high.map_or(below, |high| high.min(below)));
        }
        let clamp = |value: f64| value.clamp(i64::MIN as f64 / 2.0, i64::MAX as f64 / 2.0) as i64;
        let (low, high) = match (low.map(clamp), high.map(clamp)) {
            (Some(low), Some(high)) => (low, high.max(low)),
            (Some(low), None) => (low, low.saturating_add(10)),
            (None, Some(high)) => (high.saturating_sub(10), high),
            (None, None) => (0, 10),
        };
        let span = (high as i128 - low as i128) as u64;
        let mut value = low.saturating_add(self.below(span.saturating_add(1)) as i64);
        if let Some(step) = object
            .get("multipleOf")
            .and_then(Value::as_i64)
            .filter(|step| *step > 0)
        {
            // The first multiple at or above the low bound, when one fits.
            let first = low.div_euclid(step) * step;
            let first = if first < low { first + step } else { first };
            if first <= high {
                let steps = ((high - first) / step) as u64;
                value = first + step * self.below(steps + 1) as i64;
            }
        }
        Value::Number(Number::from(value))
    }

    fn number(&mut self, object: &Map<String, Value>) -> Value {
        let float = |name: &str| {
            object
                .get(name)
                .and_then(Value::as_f64)
                .filter(|bound| bound.is_finite())
        };
        let low = float("minimum").or(float("exclusiveMinimum"));
        let high = float("maximum").or(float("exclusiveMaximum"));
        let (low, high) = match (low, high) {
            (Some(low), Some(high)) => (low, high.max(low)),
            (Some(low), None) => (low, low + 10.0),
            (None, Some(high)) => (high - 10.0, high),
            (None, None) => (0.0, 10.0),
        };
        // Strictly inside the bounds (one to nine tenths of the way), so exclusive bounds hold;
        // on a single point, the point.
        let tenths = 1 + self.below(9);
        let value = if high > low {
            low + (high - low) * tenths as f64 / 10.0
        } else {
            low
        };
        Number::from_f64(value).map_or(Value::Null, Value::Number)
    }

    fn string(&mut self, object: &Map<String, Value>) -> String {
        let minimum = unsigned(object, "minLength").unwrap_or(0) as usize;
        let maximum = unsigned(object, "maxLength").map(|maximum| maximum as usize);
        let mut text = match object.get("format").and_then(Value::as_str) {
            Some("date-time") => "2026-11-02T09:00:00Z".to_string(),
            Some("date") => "2026-11-02".to_string(),
            Some("time") => "09:00:00Z".to_string(),
            Some("email") => "mock@example.com".to_string(),
            Some("uri") => "https://example.com/mock".to_string(),
            Some("uuid") => "00000000-0000-4000-8000-000000000000".to_string(),
            _ => {
                let count = 2 + self.below(4) as usize;
                self.words(count)
            }
        };
        // JSON Schema counts characters (code points), not bytes.
        while text.chars().count() < minimum {
            let word = self.words(1);
            text.push(' ');
            text.push_str(&word);
        }
        if let Some(maximum) = maximum
            && text.chars().count() > maximum
        {
            text = text.chars().take(maximum).collect();
        }
        text
    }

    /// `count` of the prompt's words, joined by spaces.
    fn words(&mut self, count: usize) -> String {
        let mut picked = Vec::with_capacity(count);
        for _ in 0..count {
            let index = self.below(self.words.len() as u64) as usize;
            picked.push(self.words[index]);
        }
        picked.join(" ")
    }
}

/// The type the value will have: `type` (the first non-`null` entry of a list), else what the
/// keywords suggest.
fn type_of(object: &Map<String, Value>) -> &str {
    match object.get("type") {
        Some(Value::String(name)) => name,
        Some(Value::Array(names)) => {
            let names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
            names
                .iter()
                .find(|name| **name != "null")
                .or(names.first())
                .copied()
                .unwrap_or("string")
        }
        _ if object.contains_key("properties") || object.contains_key("required") => "object",
        _ if object.contains_key("items") => "array",
        _ => "string",
    }
}

fn unsigned(object: &Map<String, Value>, name: &str) -> Option<u64> {
    object.get(name).and_then(Value::as_u64)
}

/// A mangled copy of a valid `value` that breaks `schema`: the first required property of the
/// root dropped, else the first property given a value of another type; `None` when neither
/// applies (the caller then sends text that is not JSON).
pub(crate) fn break_value(schema: &Value, value: &Value) -> Option<Value> {
    let mut broken = value.clone();
    let answer = broken.as_object_mut()?;
    let required = schema
        .get("required")
        .and_then(Value::as_array)
        .and_then(|required| required.iter().find_map(Value::as_str));
    if let Some(name) = required
        && answer.remove(name).is_some()
    {
        return Some(broken);
    }
    let (name, current) = answer.iter().next()?;
    let replacement = match current {
        Value::String(_) => Value::Number(Number::from(42)),
        _ => Value::String("not the declared type".to_string()),
    };
    let name = name.clone();
    answer.insert(name, replacement);
    Some(broken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn generate(schema: &Value, prompt: &str, seed: u64) -> Value {
        Generator::new(schema, prompt, seed).value(schema)
    }

    #[test]
    fn the_same_schema_prompt_and_seed_give_the_same_value() {
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        assert_eq!(
            generate(&schema, "alpha beta gamma", 7),
            generate(&schema, "alpha beta gamma", 7)
        );
    }

    #[test]
    fn strings_are_made_of_the_prompts_words() {
        let schema = json!({"type": "string"});
        let value = generate(&schema, "nursing, analytics; leadership", 3);
        let text = value.as_str().unwrap_or_default();
        assert!(
            text.split(' ')
                .all(|word| ["nursing", "analytics", "leadership"].contains(&word)),
            "{text}"
        );
    }

    #[test]
    fn integers_respect_exclusive_bounds() {
        let schema = json!({"type": "integer", "exclusiveMinimum": 4, "exclusiveMaximum": 6});
        for seed in 0..20 {
            assert_eq!(generate(&schema, "x", seed), json!(5));
        }
    }

    #[test]
    fn a_recursive_reference_ends() {
        let schema = json!({
            "type": "object",
            "properties": {"next": {"$ref": "#"}},
        });
        let value = generate(&schema, "words here", 1);
        assert!(value.is_object());
    }

    #[test]
    fn breaking_drops_the_first_required_property() {
        let schema = json!({"type": "object", "required": ["a"], "properties": {"a": {}}});
        let broken = break_value(&schema, &json!({"a": 1, "b": 2}));
        assert_eq!(broken, Some(json!({"b": 2})));
    }
}
