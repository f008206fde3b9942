//! `pc_status`: the status every fallible export returns. `PC_OK` is 0; then one value per
//! crate error kind, in [`crate::ERROR_KINDS`] order (kind `i` is status `i + 1`); then the two
//! statuses only the ABI can produce.

use std::ffi::{CStr, c_char, c_int};

/// What a call of the C ABI ended with. `PC_OK` is 0; every other value is a failure whose
/// error JSON (when the caller passed an `error` out-parameter) has the `kind` named in the
/// value's comment. Values 1 to 16 follow the crate's error kinds in order, then come the two
/// ABI-only statuses; a future error kind would take the value after `PC_INVALID_FEEDBACK` and
/// move the ABI-only ones up, so compile against the header of the library you load.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum pc_status {
    /// Success.
    PC_OK = 0,
    /// `config_invalid`: the configuration has problems (each `file: /pointer: message` in
    /// `details.problems`).
    PC_CONFIG_INVALID = 1,
    /// `prompt_integrity`: the only problems are released prompt files that changed.
    PC_PROMPT_INTEGRITY = 2,
    /// `io`: a file could not be read or written (for example the telemetry log).
    PC_IO = 3,
    /// `unknown_feature`: no feature of that name.
    PC_UNKNOWN_FEATURE = 4,
    /// `unknown_version`: the pinned `version` does not exist.
    PC_UNKNOWN_VERSION = 5,
    /// `missing_variable`: required template variables are missing (all named in `details`).
    PC_MISSING_VARIABLE = 6,
    /// `invalid_variable`: variables do not match their declared schema (all named).
    PC_INVALID_VARIABLE = 7,
    /// `render_failed`: a template failed while rendering.
    PC_RENDER_FAILED = 8,
    /// `provider_error`: the only provider tried failed (details carry status and attempts).
    PC_PROVIDER_ERROR = 9,
    /// `rate_limited`: every attempt was rate limited.
    PC_RATE_LIMITED = 10,
    /// `timeout`: the call's deadline passed, or every attempt timed out.
    PC_TIMEOUT = 11,
    /// `all_providers_failed`: every provider of the chain failed (details list the attempts).
    PC_ALL_PROVIDERS_FAILED = 12,
    /// `circuit_open`: every provider of the chain has an open circuit breaker.
    PC_CIRCUIT_OPEN = 13,
    /// `budget_exceeded`: a `block` budget would be passed.
    PC_BUDGET_EXCEEDED = 14,
    /// `missing_api_key`: no provider of the chain has its key in the environment.
    PC_MISSING_API_KEY = 15,
    /// `invalid_feedback`: feedback without a request id or metric, or with a value that is not
    /// a boolean, number or short string.
    PC_INVALID_FEEDBACK = 16,
    /// `invalid_argument` (ABI only): a required pointer was NULL, a string was not UTF-8, a
    /// JSON argument did not parse or had the wrong shape (`details.argument` names the
    /// parameter, `details.reason` is `null`, `invalid_utf8`, `invalid_json` or `wrong_shape`).
    PC_INVALID_ARGUMENT = 17,
    /// `panic` (ABI only): the library failed internally (a panic was caught at the boundary).
    /// The process goes on and the engine stays usable; please report it.
    PC_PANIC = 18,
}

/// Every status, in numeric order (`ALL_STATUSES[n]` has the value `n`).
pub(crate) const ALL_STATUSES: [pc_status; 19] = [
    pc_status::PC_OK,
    pc_status::PC_CONFIG_INVALID,
    pc_status::PC_PROMPT_INTEGRITY,
    pc_status::PC_IO,
    pc_status::PC_UNKNOWN_FEATURE,
    pc_status::PC_UNKNOWN_VERSION,
    pc_status::PC_MISSING_VARIABLE,
    pc_status::PC_INVALID_VARIABLE,
    pc_status::PC_RENDER_FAILED,
    pc_status::PC_PROVIDER_ERROR,
    pc_status::PC_RATE_LIMITED,
    pc_status::PC_TIMEOUT,
    pc_status::PC_ALL_PROVIDERS_FAILED,
    pc_status::PC_CIRCUIT_OPEN,
    pc_status::PC_BUDGET_EXCEEDED,
    pc_status::PC_MISSING_API_KEY,
    pc_status::PC_INVALID_FEEDBACK,
    pc_status::PC_INVALID_ARGUMENT,
    pc_status::PC_PANIC,
];

/// The `kind` of `PC_INVALID_ARGUMENT` in error JSON.
pub(crate) const INVALID_ARGUMENT_KIND: &str = "invalid_argument";
/// The `kind` of `PC_PANIC` in error JSON.
pub(crate) const PANIC_KIND: &str = "panic";

impl pc_status {
    /// The status of a crate error kind: its position in [`crate::ERROR_KINDS`] plus one. A
    /// kind missing there (a bug the tests rule out) is reported as an internal failure.
    pub(crate) fn from_kind(kind: &str) -> pc_status {
        crate::ERROR_KINDS
            .iter()
            .position(|known| *known == kind)
            .and_then(|index| ALL_STATUSES.get(index + 1).copied())
            .filter(|status| !status.is_abi_only())
            .unwrap_or(pc_status::PC_PANIC)
    }

    /// Whether only the ABI produces this status (no crate error kind has it).
    pub(crate) fn is_abi_only(self) -> bool {
        matches!(self, pc_status::PC_INVALID_ARGUMENT | pc_status::PC_PANIC)
    }

    /// The status with value `code`, if any.
    pub(crate) fn from_code(code: c_int) -> Option<pc_status> {
        usize::try_from(code)
            .ok()
            .and_then(|index| ALL_STATUSES.get(index).copied())
    }
}

/// The `kind` name of a status as a static NUL-terminated string (`"ok"`, `"config_invalid"`,
/// ..., `"invalid_argument"`, `"panic"`), the same name the error JSON carries; NULL for a value
/// that is no status. Never free it. Takes an `int` so any value is safe to pass.
#[unsafe(no_mangle)]
pub extern "C" fn pc_status_kind(status: c_int) -> *const c_char {
    std::panic::catch_unwind(|| match pc_status::from_code(status) {
        Some(status) => static_kind(status).as_ptr(),
        None => std::ptr::null(),
    })
    .unwrap_or(std::ptr::null())
}

/// NUL-terminated copies of the kind names, for `pc_status_kind`.
fn static_kind(status: pc_status) -> &'static CStr {
    const NAMES: [&CStr; 19] = [
        c"ok",
        c"config_invalid",
        c"prompt_integrity",
        c"io",
        c"unknown_feature",
        c"unknown_version",
        c"missing_variable",
        c"invalid_variable",
        c"render_failed",
        c"provider_error",
        c"rate_limited",
        c"timeout",
        c"all_providers_failed",
        c"circuit_open",
        c"budget_exceeded",
        c"missing_api_key",
        c"invalid_feedback",
        c"invalid_argument",
        c"panic",
    ];
    NAMES[status as usize]
}

#[cfg(test)]
mod tests {
    use super::{ALL_STATUSES, pc_status, pc_status_kind, static_kind};
    use crate::ERROR_KINDS;

    #[test]
    fn statuses_and_error_kinds_correspond_one_to_one() {
        let kind_statuses: Vec<_> = ALL_STATUSES
            .iter()
            .filter(|status| **status != pc_status::PC_OK && !status.is_abi_only())
            .collect();
        assert_eq!(
            kind_statuses.len(),
            ERROR_KINDS.len(),
            "pc_status needs exactly one value per crate error kind: update src/c_api/status.rs \
             and regenerate include/prompt_config.h"
        );
        for (index, kind) in ERROR_KINDS.iter().enumerate() {
            let status = pc_status::from_kind(kind);
            assert_eq!(status as usize, index + 1, "{kind} is ERROR_KINDS[{index}]");
            assert_eq!(static_kind(status).to_str().unwrap(), *kind);
        }
        // The ABI-only statuses come after every kind.
        assert_eq!(
            pc_status::PC_INVALID_ARGUMENT as usize,
            ERROR_KINDS.len() + 1
        );
        assert_eq!(pc_status::PC_PANIC as usize, ERROR_KINDS.len() + 2);
        assert!(!ERROR_KINDS.contains(&"invalid_argument") && !ERROR_KINDS.contains(&"panic"));
    }

    #[test]
    fn values_are_dense_and_named() {
        for (index, status) in ALL_STATUSES.iter().enumerate() {
            assert_eq!(*status as usize, index);
            assert_eq!(pc_status::from_code(index as i32), Some(*status));
            let name = pc_status_kind(index as i32);
            assert_eq!(name, static_kind(*status).as_ptr());
        }
        assert!(pc_status_kind(-1).is_null());
        assert!(pc_status_kind(ALL_STATUSES.len() as i32).is_null());
        assert_eq!(pc_status::from_kind("no_such_kind"), pc_status::PC_PANIC);
    }
}
