//! The streaming and cancellation exports: `pc_stream` (text deltas to a C callback as they
//! arrive, then the completion JSON), a cancel token any thread may fire, and `pc_stream_with` /
//! `pc_complete_with` taking one.
//!
//! The callback is C code: nothing of ours unwinds through it. Our work between deltas runs
//! inside the export's `catch_unwind`, and the callback itself is an `extern "C"` function, so a
//! panic can only start in Rust frames above or below it, never inside it.

use std::ffi::{c_char, c_int, c_void};
use std::ptr;

use super::boundary::{Failure, Out, json_object_arg, null, run, text_arg};
use super::engine::{engine_arg, feature_call};
use super::pc_engine;
use super::status::pc_status;
use crate::Context;
use crate::client::{CancelToken, StreamControl, StreamEvent};

/// Receives the text of a stream as it arrives, on the thread that called `pc_stream`.
///
/// `delta` points to `len` bytes of UTF-8 text (a piece of the answer, never split inside a
/// character), followed by a NUL byte for convenience; use `len`, as the text itself may hold a
/// NUL. The bytes are the library's and valid only until the callback returns: copy what you
/// keep. A restart (the stream of one model broke and the next model of the chain starts over,
/// only when the feature's stream settings allow it) is a call with `delta` NULL and `len` 0:
/// drop every delta received so far. `user` is the pointer given to `pc_stream`. Only text
/// reaches the callback: the pieces of a tool call the model streams are not text, and the
/// parsed tool calls (and the parsed `data` of a version with an output schema) arrive whole
/// in the completion JSON's `tool_calls` (and `data`) when the stream ends.
///
/// Return 0 to go on; any other value stops the stream: the connection is closed at once and
/// `pc_stream` returns `PC_CANCELLED`. The callback must return normally (no `longjmp`, no C++
/// exception through it) and must not close the engine; it may call other `pc_*` functions.
#[allow(non_camel_case_types)]
pub type pc_stream_callback =
    Option<unsafe extern "C" fn(delta: *const c_char, len: usize, user: *mut c_void) -> c_int>;

/// A cancel token: `pc_cancel` from any thread stops every call made with it
/// (`pc_stream_with`, `pc_complete_with`), at once. Opaque to C; from `pc_cancel_token_new`,
/// freed by `pc_cancel_token_free`.
#[allow(non_camel_case_types)]
pub struct pc_cancel_token {
    token: CancelToken,
}

const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<pc_cancel_token>();
};

/// Streams the answer of `feature`: resolves and renders as `pc_complete` does, calls the model
/// chain with streaming on, and hands each text delta to `callback` (with `user`) as it arrives,
/// on the calling thread, which the call blocks until the stream ends. `request_json` is as for
/// `pc_resolve`, its `traceparent` included (sent on to the provider as `pc_complete` does).
///
/// Before the first delta every failure follows `pc_complete`'s policy (retries, failover,
/// breakers, rate limits, budgets, deadline). On success `*result_json` is the completion JSON of
/// `pc_complete` (the full text included) plus a `stream` object (`time_to_first_token_ms`,
/// `chunks`), to free with `pc_string_free`; on failure it is NULL. Statuses: those of
/// `pc_complete`, and `PC_STREAM_INCOMPLETE` (the stream broke after its first delta: cut,
/// stalled, an `error` event, no terminal event) or `PC_CANCELLED` (the callback returned
/// non-zero), both with the text received so far in the error's `details.partial_text`;
/// `PC_INVALID_ARGUMENT` for a NULL `callback` (`details.argument` is `"callback"`).
///
/// # Safety
/// `engine` is NULL or an open handle; `feature` and `request_json` are NULL or
/// NUL-terminated; `callback` is NULL or a function as `pc_stream_callback` describes;
/// `result_json` and `error` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pc_stream(
    engine: *const pc_engine,
    feature: *const c_char,
    request_json: *const c_char,
    callback: pc_stream_callback,
    user: *mut c_void,
    result_json: *mut *mut c_char,
    error: *mut *mut c_char,
) -> pc_status {
    // SAFETY: each pointer is checked or used as the contract above allows.
    unsafe {
        run("pc_stream", error, || {
            stream_call(
                engine,
                feature,
                request_json,
                None,
                callback,
                user,
                result_json,
            )
        })
    }
}

/// `pc_stream` that `pc_cancel(cancel)` can also stop from another thread: the connection is
/// closed at once and the call returns `PC_CANCELLED` (with `details.partial_text`). A NULL
/// `cancel` is `PC_INVALID_ARGUMENT`.
///
/// # Safety
/// As `pc_stream`; `cancel` is NULL or a live token, freed only after this call returned.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pc_stream_with(
    engine: *const pc_engine,
    feature: *const c_char,
    request_json: *const c_char,
    cancel: *const pc_cancel_token,
    callback: pc_stream_callback,
    user: *mut c_void,
    result_json: *mut *mut c_char,
    error: *mut *mut c_char,
) -> pc_status {
    // SAFETY: each pointer is checked or used as the contract above allows.
    unsafe {
        run("pc_stream_with", error, || {
            let token = cancel_arg(cancel)?;
            stream_call(
                engine,
                feature,
                request_json,
                Some(token),
                callback,
                user,
                result_json,
            )
        })
    }
}

/// `pc_complete` that `pc_cancel(cancel)` can stop from another thread: a blocked read returns
/// at once (the connection is closed), a backoff wait wakes, and the call returns
/// `PC_CANCELLED`. A NULL `cancel` is `PC_INVALID_ARGUMENT`.
///
/// # Safety
/// As `pc_complete`; `cancel` is NULL or a live token, freed only after this call returned.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pc_complete_with(
    engine: *const pc_engine,
    feature: *const c_char,
    request_json: *const c_char,
    cancel: *const pc_cancel_token,
    result_json: *mut *mut c_char,
    error: *mut *mut c_char,
) -> pc_status {
    // SAFETY: each pointer is checked or used as the contract above allows.
    unsafe {
        run("pc_complete_with", error, || {
            let token = cancel_arg(cancel)?;
            feature_call(
                engine,
                feature,
                request_json,
                result_json,
                |engine, feature, context| engine.complete_with(feature, context, token),
            )
        })
    }
}

/// A new cancel token, not cancelled, in `*token` (NULL on failure); free it with
/// `pc_cancel_token_free`. One token may serve any number of calls, one after another or at
/// once; cancelling is sticky, so use a new token for the next call once one was cancelled.
///
/// # Safety
/// `token` and `error` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pc_cancel_token_new(
    token: *mut *mut pc_cancel_token,
    error: *mut *mut c_char,
) -> pc_status {
    // SAFETY: each pointer is checked or used as the contract above allows.
    unsafe {
        run("pc_cancel_token_new", error, || {
            let out = Out::new(token, "token")?;
            out.set(Box::into_raw(Box::new(pc_cancel_token {
                token: CancelToken::new(),
            })));
            Ok(())
        })
    }
}

/// Cancels every call made with `token`, now and later: safe from any thread (a signal handler
/// excepted), any number of times, before, during or after the calls. Returns `PC_OK`, or
/// `PC_INVALID_ARGUMENT` for a NULL token.
///
/// # Safety
/// `token` is NULL or a live token.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pc_cancel(token: *const pc_cancel_token) -> pc_status {
    // SAFETY: each pointer is checked or used as the contract above allows.
    unsafe {
        run("pc_cancel", ptr::null_mut(), || {
            cancel_arg(token)?.cancel();
            Ok(())
        })
    }
}

/// Frees a cancel token. NULL is a no-op. Free it only after every call using it returned.
///
/// # Safety
/// `token` is NULL or a token from `pc_cancel_token_new`, freed at most once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pc_cancel_token_free(token: *mut pc_cancel_token) {
    if token.is_null() {
        return;
    }
    super::boundary::run_infallible((), || {
        // SAFETY: the caller's contract: a live token, given back exactly once.
        drop(unsafe { Box::from_raw(token) });
    });
}

/// The token behind a handle.
///
/// # Safety
/// `token` is NULL or a live token.
unsafe fn cancel_arg<'a>(token: *const pc_cancel_token) -> Result<&'a CancelToken, Failure> {
    // SAFETY: the caller's contract.
    match unsafe { token.as_ref() } {
        Some(handle) => Ok(&handle.token),
        None => Err(null("cancel")),
    }
}

/// The shared body of `pc_stream` and `pc_stream_with`.
///
/// # Safety
/// As `pc_stream`.
unsafe fn stream_call(
    engine: *const pc_engine,
    feature: *const c_char,
    request_json: *const c_char,
    cancel: Option<&CancelToken>,
    callback: pc_stream_callback,
    user: *mut c_void,
    result_json: *mut *mut c_char,
) -> Result<(), Failure> {
    // SAFETY: the caller passes on pc_stream's contract.
    unsafe {
        let out = Out::new(result_json, "result_json")?;
        let engine = engine_arg(engine)?;
        let feature = text_arg(feature, "feature")?;
        let context: Context = json_object_arg(request_json, "request_json")?;
        let Some(callback) = callback else {
            return Err(null("callback"));
        };
        let token = cancel.cloned().unwrap_or_default();
        // One buffer for every delta: the text plus the NUL the callback may rely on.
        let mut buffer: Vec<u8> = Vec::new();
        let completion = engine.stream_with(feature, &context, &token, |event| {
            let (delta, len) = match event {
                StreamEvent::Delta(text) => {
                    buffer.clear();
                    buffer.extend_from_slice(text.as_bytes());
                    buffer.push(0);
                    (buffer.as_ptr().cast::<c_char>(), text.len())
                }
                // `StreamEvent` is non_exhaustive for other crates only: a new kind fails to
                // compile here until it has its C form.
                StreamEvent::Restart { .. } => (ptr::null(), 0),
                // Tool calls reach C in the completion JSON; their pieces are not text.
                StreamEvent::ToolCallDelta { .. } => return StreamControl::Continue,
            };
            // SAFETY: `callback` is a function as pc_stream_callback describes; `delta` is NULL
            // or `len` bytes plus a NUL that live until it returns.
            let answer = callback(delta, len, user);
            // Tests make our code panic right after the callback returned: the panic unwinds
            // through Rust frames only, to this export's catch_unwind.
            super::boundary::test_hook::maybe_panic("pc_stream callback");
            match answer {
                0 => StreamControl::Continue,
                _ => StreamControl::Stop,
            }
        })?;
        out.set_json(&completion)
    }
}
