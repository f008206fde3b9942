//! `pc_status`: the status every fallible export returns. `PC_OK` is 0; every other value is the
//! fixed code of a [`crate::ErrorKind`] (`PC_TIMEOUT` is `ErrorKind::Timeout.code()`), so a new
//! kind takes a new value and none moves. The tests check the enum below against
//! `ErrorKind::ALL`, and `src/error/tests.rs` checks the generated header.

use std::ffi::{CStr, c_char, c_int};

use crate::ErrorKind;

/// What a call of the C ABI ended with. `PC_OK` is 0; every other value is a failure whose
/// error JSON (when the caller passed an `error` out-parameter) has the `kind` named in the
/// value's comment. The values are fixed codes, grouped by area with gaps (1xx configuration,
/// 2xx resolving and rendering, 3xx providers, 4xx budgets, 5xx shared state, 6xx files and
/// telemetry, 9xx the ABI's own failures): a value never changes once shipped and is never
/// reused, and a new kind adds a value without moving the others. Values 1 to 99 are retired
/// (the dense numbering of the first releases) and never returned. Treat a value you do not
/// know as a failure and read its `kind` from the error JSON or `pc_status_kind`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum pc_status {
    /// Success.
    PC_OK = 0,
    /// `config_invalid`: the configuration has problems (each `file: /pointer: message` in
    /// `details.problems`).
    PC_CONFIG_INVALID = 101,
    /// `prompt_integrity`: the only problems are released prompt files that changed.
    PC_PROMPT_INTEGRITY = 102,
    /// `invalid_dataset`: an evaluation dataset has problems (each `file:line: /pointer:
    /// message` in `details.problems`).
    PC_INVALID_DATASET = 103,
    /// `unknown_feature`: no feature of that name.
    PC_UNKNOWN_FEATURE = 201,
    /// `unknown_version`: the pinned `version` does not exist.
    PC_UNKNOWN_VERSION = 202,
    /// `missing_variable`: required template variables are missing (all named in `details`).
    PC_MISSING_VARIABLE = 203,
    /// `invalid_variable`: variables do not match their declared schema (all named).
    PC_INVALID_VARIABLE = 204,
    /// `render_failed`: a template failed while rendering.
    PC_RENDER_FAILED = 205,
    /// `invalid_messages`: the context's conversation history is not usable (a `system`
    /// turn, a tool result answering no tool call, too many messages or bytes);
    /// `details.index` names the message.
    PC_INVALID_MESSAGES = 206,
    /// `unknown_model`: a model override names no model `providers.json` lists.
    PC_UNKNOWN_MODEL = 207,
    /// `provider_error`: the only provider tried failed (details carry status and attempts).
    /// Retryable.
    PC_PROVIDER_ERROR = 301,
    /// `rate_limited`: every attempt was rate limited. Retryable.
    PC_RATE_LIMITED = 302,
    /// `timeout`: the call's deadline passed, or every attempt timed out. Retryable.
    PC_TIMEOUT = 303,
    /// `all_providers_failed`: every provider of the chain failed (details list the attempts).
    /// Retryable.
    PC_ALL_PROVIDERS_FAILED = 304,
    /// `circuit_open`: every provider of the chain has an open circuit breaker. Retryable.
    PC_CIRCUIT_OPEN = 305,
    /// `missing_api_key`: no provider of the chain has its key in the environment.
    PC_MISSING_API_KEY = 306,
    /// `stream_incomplete`: a stream broke after its first token (cut, stalled, an `error`
    /// event, no terminal event); `details.partial_text` holds the text received. Retryable.
    PC_STREAM_INCOMPLETE = 307,
    /// `cancelled`: the caller cancelled the call (a callback returned non-zero, or
    /// `pc_cancel`); `details.partial_text` holds any text received.
    PC_CANCELLED = 308,
    /// `invalid_output`: every answer (repairs included) broke the version's output schema
    /// or a tool's argument schema; `details.violations` lists why. Retryable.
    PC_INVALID_OUTPUT = 309,
    /// `refusal`: the model refused a structured-output or tool request;
    /// `details.refusal` holds its message.
    PC_REFUSAL = 310,
    /// `output_truncated`: a structured answer was cut at `max_tokens`.
    PC_OUTPUT_TRUNCATED = 311,
    /// `budget_exceeded`: a `block` budget would be passed.
    PC_BUDGET_EXCEEDED = 401,
    /// `state_unavailable`: the shared state (Redis) could not be reached or did not answer
    /// within its timeouts. Retryable.
    PC_STATE_UNAVAILABLE = 501,
    /// `io`: a file could not be read or written (for example the telemetry log).
    PC_IO = 601,
    /// `invalid_feedback`: feedback without a request id or metric, or with a value that is not
    /// a boolean, number or short string.
    PC_INVALID_FEEDBACK = 602,
    /// `alert_delivery_failed`: an alert could not be delivered to a channel (its receiver
    /// refused or was unreachable after the retries, or its secret variable is unset).
    PC_ALERT_DELIVERY_FAILED = 603,
    /// `evaluation_failed`: a release that requires a passing evaluation was refused
    /// (`details.failed_cases` names the cases).
    PC_EVALUATION_FAILED = 701,
    /// `invalid_argument`: a required pointer was NULL, a string was not UTF-8, a JSON argument
    /// did not parse or had the wrong shape (`details.argument` names the parameter,
    /// `details.reason` is `null`, `invalid_utf8`, `invalid_json` or `wrong_shape`).
    PC_INVALID_ARGUMENT = 901,
    /// `panic`: the library failed internally (a panic was caught at the boundary). The
    /// process goes on and the engine stays usable; please report it.
    PC_PANIC = 902,
}

impl pc_status {
    /// The status of a kind: the value whose number is the kind's code. The match has no
    /// wildcard, so a new kind does not compile until it has its status.
    pub(crate) const fn from_kind(kind: ErrorKind) -> pc_status {
        match kind {
            ErrorKind::ConfigInvalid => pc_status::PC_CONFIG_INVALID,
            ErrorKind::PromptIntegrity => pc_status::PC_PROMPT_INTEGRITY,
            ErrorKind::UnknownFeature => pc_status::PC_UNKNOWN_FEATURE,
            ErrorKind::UnknownVersion => pc_status::PC_UNKNOWN_VERSION,
            ErrorKind::MissingVariable => pc_status::PC_MISSING_VARIABLE,
            ErrorKind::InvalidVariable => pc_status::PC_INVALID_VARIABLE,
            ErrorKind::RenderFailed => pc_status::PC_RENDER_FAILED,
            ErrorKind::ProviderError => pc_status::PC_PROVIDER_ERROR,
            ErrorKind::RateLimited => pc_status::PC_RATE_LIMITED,
            ErrorKind::Timeout => pc_status::PC_TIMEOUT,
            ErrorKind::AllProvidersFailed => pc_status::PC_ALL_PROVIDERS_FAILED,
            ErrorKind::CircuitOpen => pc_status::PC_CIRCUIT_OPEN,
            ErrorKind::MissingApiKey => pc_status::PC_MISSING_API_KEY,
            ErrorKind::StreamIncomplete => pc_status::PC_STREAM_INCOMPLETE,
            ErrorKind::Cancelled => pc_status::PC_CANCELLED,
            ErrorKind::InvalidOutput => pc_status::PC_INVALID_OUTPUT,
            ErrorKind::Refusal => pc_status::PC_REFUSAL,
            ErrorKind::OutputTruncated => pc_status::PC_OUTPUT_TRUNCATED,
            ErrorKind::InvalidMessages => pc_status::PC_INVALID_MESSAGES,
            ErrorKind::InvalidDataset => pc_status::PC_INVALID_DATASET,
            ErrorKind::UnknownModel => pc_status::PC_UNKNOWN_MODEL,
            ErrorKind::EvaluationFailed => pc_status::PC_EVALUATION_FAILED,
            ErrorKind::AlertDeliveryFailed => pc_status::PC_ALERT_DELIVERY_FAILED,
            ErrorKind::BudgetExceeded => pc_status::PC_BUDGET_EXCEEDED,
            ErrorKind::StateUnavailable => pc_status::PC_STATE_UNAVAILABLE,
            ErrorKind::Io => pc_status::PC_IO,
            ErrorKind::InvalidFeedback => pc_status::PC_INVALID_FEEDBACK,
            ErrorKind::InvalidArgument => pc_status::PC_INVALID_ARGUMENT,
            ErrorKind::Panic => pc_status::PC_PANIC,
        }
    }

    /// The status with value `code`, if any.
    pub(crate) fn from_code(code: c_int) -> Option<pc_status> {
        if code == pc_status::PC_OK as c_int {
            return Some(pc_status::PC_OK);
        }
        let kind = u16::try_from(code).ok().and_then(ErrorKind::from_code)?;
        Some(pc_status::from_kind(kind))
    }
}

/// The `kind` name of a status as a static NUL-terminated string (`"ok"`, `"config_invalid"`,
/// ..., `"invalid_argument"`, `"panic"`), the same name the error JSON carries; NULL for a value
/// that is no status (a retired code included). Never free it. Takes an `int` so any value is
/// safe to pass.
#[unsafe(no_mangle)]
pub extern "C" fn pc_status_kind(status: c_int) -> *const c_char {
    std::panic::catch_unwind(|| match pc_status::from_code(status) {
        Some(status) => static_kind(status).as_ptr(),
        None => std::ptr::null(),
    })
    .unwrap_or(std::ptr::null())
}

/// NUL-terminated names of the statuses, for `pc_status_kind`.
fn static_kind(status: pc_status) -> &'static CStr {
    let code = status as c_int;
    match u16::try_from(code).ok().and_then(ErrorKind::from_code) {
        Some(kind) => kind.as_c_str(),
        None => c"ok",
    }
}

#[cfg(test)]
mod tests {
    use super::{pc_status, pc_status_kind, static_kind};
    use crate::{ErrorKind, RETIRED_CODES};

    #[test]
    fn every_kind_has_the_status_numbered_by_its_code() {
        for kind in ErrorKind::ALL {
            let status = pc_status::from_kind(*kind);
            assert_eq!(status as i32, i32::from(kind.code()), "{kind}");
            assert_eq!(pc_status::from_code(status as i32), Some(status));
            assert_eq!(static_kind(status).to_str().unwrap(), kind.as_str());
            assert_eq!(pc_status_kind(status as i32), static_kind(status).as_ptr());
        }
    }

    #[test]
    fn ok_is_zero_and_named_ok() {
        assert_eq!(pc_status::PC_OK as i32, 0);
        assert_eq!(pc_status::from_code(0), Some(pc_status::PC_OK));
        assert_eq!(static_kind(pc_status::PC_OK).to_str().unwrap(), "ok");
    }

    #[test]
    fn values_that_are_no_status_have_no_name() {
        for code in [-1, 19, 100, 999, i32::MAX, i32::MIN] {
            assert!(pc_status_kind(code).is_null(), "{code}");
            assert_eq!(pc_status::from_code(code), None);
        }
    }

    #[test]
    fn retired_codes_are_never_statuses() {
        for (range, _) in RETIRED_CODES {
            for code in range.clone() {
                assert_eq!(pc_status::from_code(i32::from(code)), None, "{code}");
            }
        }
    }

    #[test]
    fn invalid_argument_and_panic_are_kinds_with_their_own_statuses() {
        assert_eq!(
            pc_status::from_kind(ErrorKind::InvalidArgument),
            pc_status::PC_INVALID_ARGUMENT
        );
        assert_eq!(pc_status::from_kind(ErrorKind::Panic), pc_status::PC_PANIC);
    }
}
