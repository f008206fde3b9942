//! The C ABI: a thin layer over [`Engine`](crate::Engine) for any language with a C FFI (Ruby's
//! ffi and fiddle, Python ctypes, Go cgo, ...). It converts strings and errors and calls the
//! core; no logic lives here. The header `include/prompt_config.h` is generated from this module
//! by cbindgen (`cbindgen.toml`); `tests/c_abi.rs` fails when the checked-in header differs.
//!
//! Rules, each tested from C (`tests/c/`) and Ruby's fiddle (`tests/ruby/`):
//!
//! - Every exported name starts with `pc_`. `pc_engine` is an opaque handle from
//!   `pc_engine_open`, closed with `pc_engine_close`; it is safe to share across threads.
//! - Complex values cross as UTF-8 JSON strings with the shapes of the CLI's `--json`.
//! - Every fallible function returns a [`pc_status`] (`PC_OK` is 0) and takes a last
//!   `char **error` out-parameter that may be NULL. When it is not NULL, it is set to NULL on
//!   entry and, on failure, to an error JSON `{"kind": ..., "message": ..., "details": ...}`.
//! - Every `char *` the library hands out (results and errors) is the caller's, freed exactly
//!   once with `pc_string_free`; result out-parameters are NULL after a failure. The string from
//!   `pc_version` and `pc_status_kind` is static and never freed.
//! - A NULL pointer argument, invalid UTF-8 or invalid JSON returns `PC_INVALID_ARGUMENT`;
//!   `pc_string_free(NULL)` and `pc_engine_close(NULL)` do nothing.
//! - Every export catches panics: a panic becomes `PC_PANIC` and the process goes on.
//! - `pc_stream` hands text to a C callback on the calling thread; nothing of ours unwinds
//!   through the callback's frame, and a non-zero return stops the stream (`PC_CANCELLED`).
//!   A `pc_cancel_token` stops `pc_stream_with` / `pc_complete_with` from any thread.
//!
//! `pc_test_panic` is a test hook, left out of the header and, behind the `test-hooks` cargo
//! feature, out of release builds: it panics inside the boundary so C
//! and Ruby tests can see a panic become `PC_PANIC`. No other export has a path that panics on
//! purpose; unit tests use a `cfg(test)` hook to make each export panic.

mod boundary;
mod engine;
mod eval;
mod status;
mod stream;

use std::ffi::{CString, c_char};

use crate::Engine;

// `#[unsafe(no_mangle)]` exports the functions from the shared and static libraries wherever
// they sit (and cbindgen reads every file of this module); these names serve the unit tests.
#[cfg_attr(not(test), allow(unused_imports))]
use engine::{
    pc_after_fork, pc_complete, pc_engine_close, pc_engine_open, pc_feedback, pc_metrics_json,
    pc_prometheus_text, pc_reload, pc_resolve,
};
#[cfg_attr(not(test), allow(unused_imports))]
use eval::pc_evaluate;
#[cfg_attr(not(test), allow(unused_imports))]
use status::pc_status;
#[cfg_attr(not(test), allow(unused_imports))]
use stream::{
    pc_cancel, pc_cancel_token, pc_cancel_token_free, pc_cancel_token_new, pc_complete_with,
    pc_stream, pc_stream_with,
};

/// An open engine: configuration and prompts loaded, client state and telemetry running. Opaque
/// to C; from `pc_engine_open`, freed by `pc_engine_close`. Every function taking a
/// `const pc_engine *` may be called from any number of threads at once.
#[allow(non_camel_case_types)]
pub struct pc_engine {
    engine: Engine,
}

const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<pc_engine>();
};

/// The library's version (`"0.1.0"`), a static string: never free it.
#[unsafe(no_mangle)]
pub extern "C" fn pc_version() -> *const c_char {
    const VERSION: &std::ffi::CStr = match std::ffi::CStr::from_bytes_with_nul(
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
    ) {
        Ok(version) => version,
        Err(_) => panic!("the package version contains a NUL byte"),
    };
    boundary::run_infallible(VERSION.as_ptr(), || VERSION.as_ptr())
}

/// Frees a string the library returned (a result or an error JSON). NULL is a no-op. Each
/// string is freed exactly once; never pass a string the library did not allocate, nor the
/// static strings of `pc_version` and `pc_status_kind`.
///
/// # Safety
/// `string` is NULL or a string returned by this library and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pc_string_free(string: *mut c_char) {
    if string.is_null() {
        return;
    }
    boundary::run_infallible((), || {
        // SAFETY: the caller's contract: it came from `CString::into_raw` in this library.
        drop(unsafe { CString::from_raw(string) });
    });
}

/// Test hook (not in the header, only with the `test-hooks` cargo feature, which `cargo test`
/// turns on and release builds never have): panics inside the export boundary, so tests in C
/// and Ruby can check that a panic becomes `PC_PANIC` with an error JSON of kind `panic` and the
/// process lives. Declare it yourself: `pc_status pc_test_panic(char **error);`.
///
/// # Safety
/// `error` is NULL or writable.
#[cfg(any(test, feature = "test-hooks"))]
#[doc(hidden)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pc_test_panic(error: *mut *mut c_char) -> pc_status {
    // SAFETY: `error` as the contract above allows.
    unsafe {
        boundary::run("pc_test_panic", error, || {
            panic!("pc_test_panic: a deliberate panic to test the boundary")
        })
    }
}

#[cfg(test)]
mod eval_tests;
#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod state_tests;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod tests;
