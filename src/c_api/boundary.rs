//! What every export does at the boundary: catch panics, check and convert arguments, hand out
//! strings, and turn failures into a status plus the error JSON `{"kind", "message", "details"}`.

use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::status::pc_status;
use crate::ErrorKind;

/// Why an export failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The core reported an error; its kind decides the status.
    Core(crate::Error),
    /// An argument was NULL, not UTF-8, not JSON, or JSON of the wrong shape.
    InvalidArgument {
        argument: &'static str,
        reason: &'static str,
        message: String,
    },
    /// Something the library cannot do that is no caller's fault (a caught panic): kind `panic`.
    Internal { message: String },
}

impl From<crate::Error> for Failure {
    fn from(error: crate::Error) -> Self {
        Failure::Core(error)
    }
}

impl Failure {
    pub(crate) fn invalid(
        argument: &'static str,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Failure::InvalidArgument {
            argument,
            reason,
            message: message.into(),
        }
    }

    fn status(&self) -> pc_status {
        match self {
            Failure::Core(error) => pc_status::from_kind(error.kind()),
            Failure::InvalidArgument { .. } => pc_status::from_kind(ErrorKind::InvalidArgument),
            Failure::Internal { .. } => pc_status::from_kind(ErrorKind::Panic),
        }
    }

    /// The error JSON written to the caller's `error` out-parameter.
    fn to_json(&self) -> Value {
        match self {
            Failure::Core(error) => json!({
                "kind": error.kind(),
                "message": error.to_string(),
                "details": error.details(),
            }),
            Failure::InvalidArgument {
                argument,
                reason,
                message,
            } => json!({
                "kind": ErrorKind::InvalidArgument,
                "message": message,
                "details": {"argument": argument, "reason": reason},
            }),
            Failure::Internal { message } => json!({
                "kind": ErrorKind::Panic,
                "message": message,
                "details": {},
            }),
        }
    }
}

/// Runs the body of export `function`: clears `*error` (when `error` is not NULL), runs `body`
/// under `catch_unwind`, and on failure writes the error JSON to `*error` and returns its status.
///
/// # Safety
/// `error` is NULL or valid for writing one pointer.
pub(crate) unsafe fn run(
    function: &'static str,
    error: *mut *mut c_char,
    body: impl FnOnce() -> Result<(), Failure>,
) -> pc_status {
    if !error.is_null() {
        // SAFETY: the caller's contract.
        unsafe { error.write(ptr::null_mut()) };
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        test_hook::maybe_panic(function);
        body()
    }));
    let failure = match outcome {
        Ok(Ok(())) => return pc_status::PC_OK,
        Ok(Err(failure)) => failure,
        Err(payload) => {
            let message = format!("{function} panicked: {}", panic_message(payload.as_ref()));
            // Dropping a payload may itself panic; that must not cross the boundary either.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
            Failure::Internal { message }
        }
    };
    // Rendering the error runs core code (`Display`, `details`), so it is guarded as well.
    let (status, json) = catch_unwind(AssertUnwindSafe(|| {
        (failure.status(), failure.to_json().to_string())
    }))
    .unwrap_or_else(|_| {
        let message = format!("{function} panicked while reporting an error");
        let internal = Failure::Internal { message };
        (internal.status(), internal.to_json().to_string())
    });
    if !error.is_null() {
        // SAFETY: the caller's contract.
        unsafe { error.write(into_c_string(json)) };
    }
    status
}

/// Runs the body of an export that cannot report a status (`*_free`, `*_close`, `pc_version`):
/// a panic yields `fallback`.
pub(crate) fn run_infallible<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "a panic without a message"
    }
}

/// A string handed to the caller, freed with `pc_string_free`. Interior NUL bytes (which JSON
/// never contains, as JSON escapes them) become U+FFFD so the C string is not cut short.
pub(crate) fn into_c_string(text: String) -> *mut c_char {
    let c_string = CString::new(text).unwrap_or_else(|error| {
        let text = String::from_utf8_lossy(&error.into_vec()).replace('\0', "\u{fffd}");
        CString::new(text).unwrap_or_default()
    });
    c_string.into_raw()
}

/// A borrowed NUL-terminated UTF-8 argument.
///
/// # Safety
/// `pointer` is NULL or points to a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn text_arg<'a>(
    pointer: *const c_char,
    argument: &'static str,
) -> Result<&'a str, Failure> {
    if pointer.is_null() {
        return Err(null(argument));
    }
    // SAFETY: the caller's contract.
    let bytes = unsafe { CStr::from_ptr(pointer) };
    bytes.to_str().map_err(|error| {
        Failure::invalid(
            argument,
            "invalid_utf8",
            format!("{argument} is not valid UTF-8: {error}"),
        )
    })
}

/// `text` parsed as JSON; a syntax error is `invalid_json`.
fn parse_json(text: &str, argument: &'static str) -> Result<Value, Failure> {
    serde_json::from_str(text).map_err(|error| {
        Failure::invalid(
            argument,
            "invalid_json",
            format!("{argument} is not valid JSON: {error}"),
        )
    })
}

/// A JSON argument of any type.
///
/// # Safety
/// As [`text_arg`].
pub(crate) unsafe fn json_arg(
    pointer: *const c_char,
    argument: &'static str,
) -> Result<Value, Failure> {
    // SAFETY: the caller's contract.
    parse_json(unsafe { text_arg(pointer, argument) }?, argument)
}

/// A JSON object argument: its text, checked to be UTF-8 JSON whose top level is an object
/// (serde would otherwise also accept a struct written as an array).
///
/// # Safety
/// As [`text_arg`].
pub(crate) unsafe fn json_object_text<'a>(
    pointer: *const c_char,
    argument: &'static str,
) -> Result<&'a str, Failure> {
    // SAFETY: the caller's contract.
    let text = unsafe { text_arg(pointer, argument) }?;
    require_object(&parse_json(text, argument)?, argument)?;
    Ok(text)
}

/// A JSON object argument deserialized into `T`; any mismatch is `wrong_shape`.
///
/// # Safety
/// As [`text_arg`].
pub(crate) unsafe fn json_object_arg<T: DeserializeOwned>(
    pointer: *const c_char,
    argument: &'static str,
) -> Result<T, Failure> {
    // SAFETY: the caller's contract.
    let value = unsafe { json_arg(pointer, argument) }?;
    require_object(&value, argument)?;
    serde_json::from_value(value).map_err(|error| wrong_shape(argument, error.to_string()))
}

fn require_object(value: &Value, argument: &'static str) -> Result<(), Failure> {
    if value.is_object() {
        return Ok(());
    }
    let found = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    Err(wrong_shape(
        argument,
        format!("must be a JSON object, not {found}"),
    ))
}

pub(crate) fn wrong_shape(argument: &'static str, message: impl std::fmt::Display) -> Failure {
    Failure::invalid(
        argument,
        "wrong_shape",
        format!("{argument} has the wrong shape: {message}"),
    )
}

/// A required out-parameter, set to NULL until the call succeeds.
pub(crate) struct Out<T>(*mut *mut T);

impl<T> Out<T> {
    /// Checks `pointer` and clears what it points to.
    ///
    /// # Safety
    /// `pointer` is NULL or valid for writing one pointer until the call returns.
    pub(crate) unsafe fn new(
        pointer: *mut *mut T,
        argument: &'static str,
    ) -> Result<Self, Failure> {
        if pointer.is_null() {
            return Err(null(argument));
        }
        // SAFETY: the caller's contract.
        unsafe { pointer.write(ptr::null_mut()) };
        Ok(Out(pointer))
    }

    /// Hands `value` to the caller.
    pub(crate) fn set(self, value: *mut T) {
        // SAFETY: checked non-NULL and writable in `new`.
        unsafe { self.0.write(value) };
    }
}

impl Out<c_char> {
    /// Hands `text` to the caller as a string to free with `pc_string_free`.
    pub(crate) fn set_string(self, text: String) {
        self.set(into_c_string(text));
    }

    /// Hands `value` to the caller as compact JSON.
    pub(crate) fn set_json(self, value: &impl serde::Serialize) -> Result<(), Failure> {
        let text = serde_json::to_string(value).map_err(|error| Failure::Internal {
            message: format!("could not serialize the result: {error}"),
        })?;
        self.set_string(text);
        Ok(())
    }
}

pub(crate) fn null(argument: &'static str) -> Failure {
    Failure::invalid(argument, "null", format!("{argument} must not be NULL"))
}

/// Unit tests make any export panic inside its boundary, to check each one catches it; outside
/// `cfg(test)` this is a no-op and no production path can panic through it.
pub(crate) mod test_hook {
    #[cfg(test)]
    thread_local! {
        static PANIC_IN: std::cell::Cell<Option<&'static str>> = const { std::cell::Cell::new(None) };
    }

    /// Makes the next call of `function` on this thread panic inside its boundary.
    #[cfg(test)]
    pub(crate) fn panic_next(function: &'static str) {
        PANIC_IN.with(|cell| cell.set(Some(function)));
    }

    #[cfg(test)]
    pub(crate) fn maybe_panic(function: &str) {
        if PANIC_IN.with(|cell| cell.get()) == Some(function) {
            PANIC_IN.with(|cell| cell.set(None));
            panic!("test hook: {function} panics");
        }
    }

    #[cfg(not(test))]
    #[inline(always)]
    pub(crate) fn maybe_panic(_function: &str) {}
}
