//! The inputs file of `cache warm`: one context per line as JSON (`user`, `attributes`,
//! `variables`, `version`), blank lines skipped, a leading UTF-8 BOM ignored.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::super::Failure;
use prompt_config::Context;

/// The UTF-8 byte order mark some editors write at the start of a file; config files accept it,
/// so the inputs file does too.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// One line of the inputs file, as a context. A file that cannot be read is a usage error naming
/// `--inputs` (exit 2), as `load --inputs` has it.
pub(super) fn read_inputs(path: &Path) -> Result<Vec<(usize, Context)>, Failure> {
    let bytes = std::fs::read(path).map_err(|error| {
        Failure::invalid_argument(format!("--inputs {}: {error}", path.display()))
            .with_details(json!({"argument": "--inputs", "path": path.display().to_string()}))
    })?;
    parse_inputs(path, &bytes)
}

/// The contexts of an inputs file's bytes: one JSON object per line, blank lines skipped, a
/// leading BOM ignored; a line that is not a context is a usage error naming `file:line`.
fn parse_inputs(path: &Path, bytes: &[u8]) -> Result<Vec<(usize, Context)>, Failure> {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    let mut contexts = Vec::new();
    for (index, line) in bytes.split(|byte| *byte == b'\n').enumerate() {
        let number = index + 1;
        let at = |message: String| {
            Failure::invalid_argument(format!("{}:{number}: {message}", path.display()))
                .with_details(json!({"path": path.display().to_string(), "line": number}))
        };
        let line = std::str::from_utf8(line)
            .map_err(|error| at(format!("cannot read: not UTF-8 ({error})")))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value =
            serde_json::from_str(line).map_err(|error| at(format!("invalid JSON: {error}")))?;
        contexts.push((number, context_of(value).map_err(at)?));
    }
    if contexts.is_empty() {
        return Err(Failure::invalid_argument(format!(
            "{}: no contexts (one JSON object per line)",
            path.display()
        )));
    }
    Ok(contexts)
}

/// `{"user", "attributes", "variables", "version"}` as a context.
fn context_of(value: Value) -> Result<Context, String> {
    let Value::Object(mut fields) = value else {
        return Err("expected a JSON object {\"user\", \"attributes\", \"variables\"}".into());
    };
    let user = match fields.remove("user") {
        Some(Value::String(user)) if !user.is_empty() => user,
        Some(Value::Number(number)) => number.to_string(),
        _ => return Err("\"user\" must be a non-empty string or a number".into()),
    };
    let object = |fields: &mut Map<String, Value>, name: &str| match fields.remove(name) {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(format!("\"{name}\" must be a JSON object")),
    };
    let attributes = object(&mut fields, "attributes")?;
    let variables = object(&mut fields, "variables")?;
    let version = match fields.remove("version") {
        None | Some(Value::Null) => None,
        Some(Value::String(version)) => Some(version),
        Some(_) => return Err("\"version\" must be a string".into()),
    };
    if let Some(unknown) = fields.keys().next() {
        return Err(format!(
            "unknown field \"{unknown}\" (expected user, attributes, variables, version)"
        ));
    }
    let mut context = Context::new(user)
        .with_attributes(attributes)
        .with_variables(variables);
    if let Some(version) = version {
        context = context.pin_version(version);
    }
    Ok(context)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn no_inputs_bytes_make_the_parser_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_inputs(Path::new("in.jsonl"), &bytes);
        }

        #[test]
        fn every_context_line_is_read_with_its_line_number_bom_or_not(
            users in prop::collection::vec("[a-z0-9]{1,8}", 1..6),
            blank_after in prop::collection::vec(any::<bool>(), 6),
            bom in any::<bool>(),
        ) {
            let mut text = String::new();
            if bom {
                text.push('\u{FEFF}');
            }
            let mut expected = Vec::new();
            let mut number = 0;
            for (index, user) in users.iter().enumerate() {
                text.push_str(&json!({"user": user, "variables": {"n": index}}).to_string());
                text.push('\n');
                number += 1;
                expected.push((number, user.clone()));
                if blank_after[index] {
                    text.push_str("  \r\n");
                    number += 1;
                }
            }
            let contexts = parse_inputs(Path::new("in.jsonl"), text.as_bytes()).unwrap();
            let read: Vec<(usize, String)> = contexts
                .iter()
                .map(|(line, context)| (*line, context.subject_id().to_string()))
                .collect();
            prop_assert_eq!(read, expected);
        }
    }
}
