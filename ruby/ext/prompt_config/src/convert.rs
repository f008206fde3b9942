//! Ruby values -> JSON (`serde_json::Value`), the shape the core crate takes its inputs in.
//!
//! Ruby to JSON accepts what JSON can hold: `nil`, `true`, `false`, Integer, Float, String,
//! Symbol (as its name), Array and Hash with String or Symbol keys (anything else is a
//! `TypeError`). The conversation history (`messages:`) becomes the core's `Message`s through
//! the same JSON, read as the context JSON of the C ABI and the CLI reads it. The way back (core
//! results to Ruby) is `serialize.rs`.

use magnus::{
    Error, Float, Integer, RArray, RHash, RString, Ruby, Symbol, Value,
    prelude::*,
    r_hash::ForEach,
    value::{Qfalse, Qtrue},
};
use prompt_config_core::Message;
use serde_json::{Map, Number, Value as Json};

/// Nesting deeper than this is refused (it is almost certainly a cycle).
const MAX_DEPTH: usize = 64;

/// Converts a Ruby value to JSON.
pub fn to_json(ruby: &Ruby, value: Value) -> Result<Json, Error> {
    to_json_at(ruby, value, 0)
}

/// Converts a Ruby Hash (or `nil`) to a JSON object.
pub fn to_json_object(ruby: &Ruby, value: Value, what: &str) -> Result<Map<String, Json>, Error> {
    if value.is_nil() {
        return Ok(Map::new());
    }
    match RHash::from_value(value) {
        Some(hash) => hash_to_map(ruby, hash, 0),
        None => Err(Error::new(
            ruby.exception_type_error(),
            format!("{what} must be a Hash, not {}", class_name(value)),
        )),
    }
}

fn to_json_at(ruby: &Ruby, value: Value, depth: usize) -> Result<Json, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::new(
            ruby.exception_arg_error(),
            format!("value nested more than {MAX_DEPTH} levels deep (a cycle?)"),
        ));
    }
    if value.is_nil() {
        return Ok(Json::Null);
    }
    if let Some(string) = RString::from_value(value) {
        return Ok(Json::String(string.to_string()?));
    }
    if let Some(symbol) = Symbol::from_value(value) {
        return Ok(Json::String(symbol.name()?.into_owned()));
    }
    if let Some(integer) = Integer::from_value(value) {
        if let Ok(number) = integer.to_i64() {
            return Ok(Json::Number(number.into()));
        }
        if let Ok(number) = integer.to_u64() {
            return Ok(Json::Number(number.into()));
        }
        return Err(Error::new(
            ruby.exception_range_error(),
            "integer too large for JSON (beyond 64 bits)",
        ));
    }
    if let Some(float) = Float::from_value(value) {
        return Number::from_f64(float.to_f64())
            .map(Json::Number)
            .ok_or_else(|| {
                Error::new(
                    ruby.exception_arg_error(),
                    format!("{} is not a JSON number", float.to_f64()),
                )
            });
    }
    if Qtrue::from_value(value).is_some() {
        return Ok(Json::Bool(true));
    }
    if Qfalse::from_value(value).is_some() {
        return Ok(Json::Bool(false));
    }
    if let Some(hash) = RHash::from_value(value) {
        return hash_to_map(ruby, hash, depth + 1).map(Json::Object);
    }
    if let Some(array) = RArray::from_value(value) {
        let mut out = Vec::with_capacity(array.len());
        // Indexed each time: the conversion may call Ruby, which could change the array.
        let mut index = 0;
        while index < array.len() {
            let item: Value = array.entry(index as isize)?;
            out.push(to_json_at(ruby, item, depth + 1)?);
            index += 1;
        }
        return Ok(Json::Array(out));
    }
    Err(Error::new(
        ruby.exception_type_error(),
        format!(
            "{} is not a JSON value (use nil, true, false, Integer, Float, String, Symbol, Array or Hash)",
            class_name(value)
        ),
    ))
}

fn hash_to_map(ruby: &Ruby, hash: RHash, depth: usize) -> Result<Map<String, Json>, Error> {
    let mut map = Map::with_capacity(hash.len());
    let mut failure = None;
    hash.foreach(|key: Value, value: Value| {
        let converted = key_string(ruby, key).and_then(|key| {
            let value = to_json_at(ruby, value, depth)?;
            Ok((key, value))
        });
        match converted {
            Ok((key, value)) => {
                map.insert(key, value);
                Ok(ForEach::Continue)
            }
            Err(error) => {
                failure = Some(error);
                Ok(ForEach::Stop)
            }
        }
    })?;
    match failure {
        Some(error) => Err(error),
        None => Ok(map),
    }
}

fn key_string(ruby: &Ruby, key: Value) -> Result<String, Error> {
    if let Some(symbol) = Symbol::from_value(key) {
        return Ok(symbol.name()?.into_owned());
    }
    if let Some(string) = RString::from_value(key) {
        return string.to_string();
    }
    Err(Error::new(
        ruby.exception_type_error(),
        format!(
            "Hash keys must be Strings or Symbols, not {}",
            class_name(key)
        ),
    ))
}

/// The conversation history from Ruby: `nil` (none), or an Array of Hashes with String or
/// Symbol keys in the context JSON's message shape: `role` (`user`, `assistant`, `tool`, as a
/// String or Symbol), `content`, `tool_calls` (`[{id:, name:, arguments: {...}}]`, assistant
/// turns) and `tool_call_id` (tool results). Anything but an Array is a `TypeError`; a message
/// the core cannot read (an unknown key or role, no role, `arguments` of a call missing) is
/// `PromptConfig::InvalidArgument` (argument `messages`, reason `wrong_shape`), as the C ABI
/// reports it. Whether the history makes sense (roles, tool results answering calls, limits)
/// is the core's check at resolve (`PromptConfig::InvalidMessages`).
pub fn messages(ruby: &Ruby, value: Value) -> Result<Vec<Message>, Error> {
    if value.is_nil() {
        return Ok(Vec::new());
    }
    if RArray::from_value(value).is_none() {
        return Err(Error::new(
            ruby.exception_type_error(),
            format!(
                "messages must be an Array of Hashes, not {}",
                class_name(value)
            ),
        ));
    }
    let Json::Array(items) = to_json(ruby, value)? else {
        return Err(Error::new(
            ruby.exception_type_error(),
            "messages must be an Array of Hashes",
        ));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            serde_json::from_value::<Message>(item).map_err(|error| {
                crate::errors::invalid_argument(
                    ruby,
                    "messages",
                    "wrong_shape",
                    &format!("messages[{index}]: {error}"),
                )
            })
        })
        .collect()
}

/// A user id as the text the core hashes. The rule (strings as given, integers in decimal,
/// anything else refused) is the core's `canonical_subject_id`, shared with Rust, C and the CLI;
/// here the value only becomes JSON first (a Symbol becomes its name). Every refusal is a
/// `TypeError` naming `what`, as for other arguments of the wrong type.
pub fn id_string(ruby: &Ruby, value: Value, what: &str) -> Result<String, Error> {
    let type_error = |message: String| Error::new(ruby.exception_type_error(), message);
    let json = to_json(ruby, value).map_err(|error| {
        type_error(format!(
            "{what} must be a String or an Integer, not {}: {error}",
            class_name(value)
        ))
    })?;
    prompt_config_core::resolve::canonical_subject_id(&json).map_err(|error| {
        let message = error.to_string();
        type_error(match message.strip_prefix("user_id") {
            Some(rest) => format!("{what}{rest}"),
            None => message,
        })
    })
}

fn class_name(value: Value) -> String {
    // SAFETY: the name is copied into a Rust String at once.
    unsafe { value.classname() }.into_owned()
}
