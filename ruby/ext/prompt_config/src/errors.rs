//! Core errors and panics as Ruby exceptions.
//!
//! The exception classes live in Ruby (`lib/prompt_config/errors.rb`);
//! `PromptConfig::Error.build(kind, message, details)` picks the subclass for the core's stable
//! `kind()`. This file only gathers the kind, the message and the details.

use std::any::Any;

use magnus::{Error, Exception, RClass, RModule, Ruby, prelude::*};
use prompt_config_core::ErrorKind;
use serde_json::Value as Json;

use crate::gvl::panic_message;
use crate::serialize::{Keys, to_ruby};
use crate::text;

/// The Ruby exception for a core error.
pub fn core_error(ruby: &Ruby, error: &prompt_config_core::Error) -> Error {
    build(
        ruby,
        error.kind().as_str(),
        &error.to_string(),
        &error.details(),
    )
}

/// The Ruby exception for a panic caught in the extension.
pub fn panic_error(ruby: &Ruby, payload: &(dyn Any + Send)) -> Error {
    let message = panic_message(payload);
    build(
        ruby,
        ErrorKind::Panic.as_str(),
        &format!("prompt_config panicked (a bug, please report it): {message}"),
        &serde_json::json!({ "panic": message }),
    )
}

/// The Ruby exception for a failure with a kind but no core error (a failed conversion, ...).
pub fn kind_error(ruby: &Ruby, kind: ErrorKind, message: &str) -> Error {
    build(ruby, kind.as_str(), message, &serde_json::json!({}))
}

/// `PromptConfig::InvalidArgument` (kind `invalid_argument`, as the C ABI's
/// `PC_INVALID_ARGUMENT`): `argument` names the parameter at fault, `reason` says how
/// (`wrong_shape`, ...), the same details the C ABI's error JSON carries.
pub fn invalid_argument(ruby: &Ruby, argument: &str, reason: &str, message: &str) -> Error {
    build(
        ruby,
        ErrorKind::InvalidArgument.as_str(),
        message,
        &serde_json::json!({ "argument": argument, "reason": reason }),
    )
}

fn build(ruby: &Ruby, kind: &str, message: &str, details: &Json) -> Error {
    let exception = (|| -> Result<Exception, Error> {
        let details = to_ruby(ruby, details, Keys::Symbols, true)
            .map_err(|error| Error::new(ruby.exception_runtime_error(), error.to_string()))?;
        let module: RModule = ruby.class_object().const_get("PromptConfig")?;
        let class: RClass = module.const_get("Error")?;
        // Through `text::string`: an empty message must not reach Ruby as a dangling pointer.
        let (kind, message) = (text::string(ruby, kind), text::string(ruby, message));
        class.funcall("build", (kind, message, details))
    })();
    match exception {
        Ok(exception) => exception.into(),
        Err(error) => error,
    }
}
