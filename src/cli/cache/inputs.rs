//! The inputs file of `cache warm` and `load`: one context per line as JSON (`user_id` or
//! `user`, `attributes`, `variables`, `version`), blank lines skipped, a leading UTF-8 BOM
//! ignored. One parser for both commands, so a file one accepts the other accepts too, with
//! the same messages.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::super::Failure;
use prompt_config::Context;
use prompt_config::resolve::canonical_subject_id;

/// The UTF-8 byte order mark some editors write at the start of a file; config files accept it,
/// so the inputs file does too.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The contexts of the file given to `--inputs`, each with its line number (1-based). A file
/// that cannot be read is a usage error naming `--inputs` (exit 2); so is a line that is not a
/// context, named `--inputs FILE:LINE`, and a file without any context.
pub(crate) fn read_inputs(path: &Path) -> Result<Vec<(usize, Context)>, Failure> {
    let bytes = std::fs::read(path).map_err(|error| {
        Failure::invalid_argument(format!("--inputs {}: {error}", path.display()))
            .with_details(json!({"argument": "--inputs", "path": path.display().to_string()}))
    })?;
    parse_inputs(path, &bytes)
}

/// The contexts of an inputs file's bytes: one JSON object per line, blank lines skipped, a
/// leading BOM ignored; each line is decoded on its own, so a line that is not UTF-8 is named
/// by its number like any other bad line.
fn parse_inputs(path: &Path, bytes: &[u8]) -> Result<Vec<(usize, Context)>, Failure> {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    let mut contexts = Vec::new();
    for (index, line) in bytes.split(|byte| *byte == b'\n').enumerate() {
        let number = index + 1;
        let at = |message: String| {
            Failure::invalid_argument(format!("--inputs {}:{number}: {message}", path.display()))
                .with_details(json!({
                    "argument": "--inputs",
                    "path": path.display().to_string(),
                    "line": number,
                }))
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
            "--inputs {}: no context in the file (one JSON object per line)",
            path.display()
        ))
        .with_details(json!({"argument": "--inputs", "path": path.display().to_string()})));
    }
    Ok(contexts)
}

/// `{"user_id" or "user", "attributes", "variables", "version"}` as a context. The id is a
/// string (empty allowed, as `complete --user ""`) or an integer, by the library's one rule
/// (`canonical_subject_id`); `user` is the CLI's spelling of the library's `user_id`, so
/// either is read, and both at once is refused rather than one silently winning.
fn context_of(value: Value) -> Result<Context, String> {
    let Value::Object(mut fields) = value else {
        return Err("not a context: one JSON object per line is expected \
                    {\"user_id\" (or \"user\"), \"attributes\", \"variables\", \"version\"}"
            .into());
    };
    let (name, id) = match (fields.remove("user_id"), fields.remove("user")) {
        (Some(_), Some(_)) => {
            return Err(
                "both \"user_id\" and \"user\" given: they name the same id, give one".into(),
            );
        }
        (Some(id), None) => ("user_id", id),
        (None, Some(id)) => ("user", id),
        (None, None) => {
            return Err("\"user_id\" (or \"user\") is missing: each context names its user".into());
        }
    };
    let user = canonical_subject_id(&id).map_err(|error| {
        format!(
            "\"{name}\" must be a string or an integer, not {}",
            error.found
        )
    })?;
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
            "unknown field \"{unknown}\" (expected user_id or user, attributes, variables, version)"
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

    #[test]
    fn user_and_user_id_name_the_same_id_and_both_at_once_are_refused() {
        let read = |text: &str| parse_inputs(Path::new("in.jsonl"), text.as_bytes());
        let by_user = read(r#"{"user": 7}"#).unwrap();
        let by_user_id = read(r#"{"user_id": "7"}"#).unwrap();
        assert_eq!(by_user, by_user_id);
        let error = read(r#"{"user": 7, "user_id": 7}"#).unwrap_err();
        assert!(
            error.message.contains("in.jsonl:1: both"),
            "{}",
            error.message
        );
        let error = read(r#"{"user": 2.5}"#).unwrap_err();
        assert!(
            error
                .message
                .contains(r#""user" must be a string or an integer"#),
            "{}",
            error.message
        );
    }

    proptest! {
        #[test]
        fn any_id_reads_the_same_as_user_or_user_id(id in "[a-z0-9]{0,8}") {
            let read = |field: &str| {
                parse_inputs(Path::new("in.jsonl"), json!({field: id}).to_string().as_bytes())
                    .unwrap()
            };
            prop_assert_eq!(read("user"), read("user_id"));
        }

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
