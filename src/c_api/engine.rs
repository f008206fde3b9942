//! The engine's exports: open, resolve, complete, feedback, reload, metrics, after_fork, close.
//! Each converts its arguments, calls the one matching [`Engine`] method and converts the result.

use std::ffi::c_char;

use super::boundary::{
    Failure, Out, json_arg, json_object_arg, json_object_text, null, run, text_arg, wrong_shape,
};
use super::pc_engine;
use super::status::pc_status;
use crate::{Context, Engine, EngineOptions};

/// The engine behind a handle.
///
/// # Safety
/// `engine` is NULL or a handle from `pc_engine_open` not yet closed.
pub(super) unsafe fn engine_arg<'a>(engine: *const pc_engine) -> Result<&'a Engine, Failure> {
    // SAFETY: the caller's contract.
    match unsafe { engine.as_ref() } {
        Some(handle) => Ok(&handle.engine),
        None => Err(null("engine")),
    }
}

/// Opens an engine: reads and validates the configuration and prompts, starts the telemetry
/// writer if asked to.
///
/// `options_json` is a JSON object, every key optional:
/// `{"config_dir": "config", "prompts_dir": "prompts", "mock": false, "telemetry": null,
/// "state": null, "otlp": null}`.
/// `"{}"` opens `./config` and `./prompts` (relative to the working directory) with real
/// providers and no telemetry log. `mock: true` routes every provider to the offline mock (no
/// keys, no network). `telemetry` is the path of a JSON Lines log, or
/// `{"path", "queue_capacity", "flush_interval_ms", "rotate_bytes", "rotated_files"}`. `state`
/// is `"memory"` or `{"backend": "redis", "url", ...}`. `otlp` exports spans, metrics and logs
/// over OTLP/HTTP: `true` (the standard `OTEL_EXPORTER_OTLP_*`, `OTEL_SERVICE_NAME` and
/// `OTEL_RESOURCE_ATTRIBUTES` environment variables; no export when they name no endpoint),
/// `false`, or `{"endpoint": "http://collector:4318", "traces_endpoint", "metrics_endpoint",
/// "logs_endpoint" (full URLs), "protocol": "http/protobuf" | "http/json", "headers": {"name":
/// "value"}, "service_name", "resource_attributes": {"key": "value"}, "compression": "gzip" |
/// "none", "timeout_ms", "batch_delay_ms", "max_queue", "max_batch", "metrics_interval_ms"}`,
/// every key optional; with it on, calls without a caller's `traceparent` start their own trace.
///
/// On success `*engine` is a handle to close with `pc_engine_close`; on failure it is NULL.
/// Statuses: `PC_CONFIG_INVALID` or `PC_PROMPT_INTEGRITY` (every problem in the error's
/// `details`), `PC_IO` (the telemetry log cannot be opened), `PC_INVALID_ARGUMENT` (NULL
/// `options_json` or `engine`, invalid UTF-8, invalid JSON, unknown keys or wrong types; a
/// refused `otlp` setting is named by its pointer, such as `/otlp/headers/x-api-key`, its value
/// never quoted).
///
/// # Safety
/// `options_json` is NULL or a NUL-terminated string; `engine` is NULL or writable; `error` is
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pc_engine_open(
    options_json: *const c_char,
    engine: *mut *mut pc_engine,
    error: *mut *mut c_char,
) -> pc_status {
    // SAFETY: each pointer is checked or used as the contract above allows.
    unsafe {
        run("pc_engine_open", error, || {
            let out = Out::new(engine, "engine")?;
            let text = json_object_text(options_json, "options_json")?;
            let options = EngineOptions::from_json(text)
                .map_err(|rejected| wrong_shape("options_json", rejected))?;
            let opened = Engine::open(options)?;
            out.set(Box::into_raw(Box::new(pc_engine { engine: opened })));
            Ok(())
        })
    }
}

/// Resolves `feature` for the request and renders its messages, without calling a model.
///
/// `request_json` is `{"user_id": "42", "attributes": {...}, "variables": {...},
/// "version": "2.1.0", "messages": [...], "traceparent": "00-...-...-01"}`: `user_id` (a string
/// or an integer) is required, the rest optional; `version` pins a version (drafts included);
/// `messages` is the conversation so far, oldest first, appended after the rendered template:
/// `{"role": "user" | "assistant" | "tool", "content": "...", "tool_calls": [{"id", "name",
/// "arguments": {...}}] (assistant only), "tool_call_id": "..." (tool only)}`; `traceparent`
/// is the caller's W3C Trace Context header (`00-<32 hex trace-id>-<16 hex parent-id>-<2 hex
/// flags>`): the request's spans join that trace, and every provider attempt is sent a
/// `traceparent` in it. On success `*result_json` is the resolution as
/// JSON (the shape of `prompt-config resolve --json`: `feature`, `version`, `source`,
/// `experiment`, `variant`, `rule`, `bucket`, `model`, `fallbacks`, `messages` (template, then
/// history), `prompt_hash`, `config_revision`, `request_id`), to free with `pc_string_free`; on
/// failure it is NULL. Statuses: `PC_UNKNOWN_FEATURE`, `PC_UNKNOWN_VERSION`,
/// `PC_MISSING_VARIABLE`, `PC_INVALID_VARIABLE`, `PC_RENDER_FAILED`, `PC_INVALID_MESSAGES` (a
/// history that breaks a rule or the feature's `history` limits; `details` has `index`,
/// `field`, `message`), `PC_INVALID_ARGUMENT` (a message of the wrong shape: unknown key or
/// role, `arguments` not JSON; a malformed `traceparent`, the message naming it).
///
/// # Safety
/// `engine` is NULL or an open handle; `feature` and `request_json` are NULL or
/// NUL-terminated; `result_json` and `error` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pc_resolve(
    engine: *const pc_engine,
    feature: *const c_char,
    request_json: *const c_char,
    result_json: *mut *mut c_char,
    error: *mut *mut c_char,
) -> pc_status {
    // SAFETY: each pointer is checked or used as the contract above allows.
    unsafe {
        run("pc_resolve", error, || {
            feature_call(
                engine,
                feature,
                request_json,
                result_json,
                |engine, feature, context| engine.resolve(feature, context),
            )
        })
    }
}

/// Resolves `feature` for the request, then calls its model chain (retries, failover, circuit
/// breakers, rate limits, budgets, deadline). Blocks the calling thread for the call.
///
/// The request is as for `pc_resolve` (its `traceparent`, or a trace of the request's own when
/// the engine exports over OTLP, is sent to the provider with each attempt). On success
/// `*result_json` is the completion as JSON (the shape of `prompt-config complete --json`: `text`, `provider`, `model`, `response_model`,
/// `response_id`, `finish_reason`, `raw_finish_reason`, `refusal`, `usage`, `cost_usd`,
/// `cost_estimated`, `cost_estimated_parts`, `latency_ms`, `request_id`, `downgraded`,
/// `resolution`, `attempts`, `cache`, `stream`, and `data` (the parsed answer of a version with
/// an output schema, else null), `tool_calls` (`[{"id", "name", "arguments": {...}}]`, the
/// calls the model asked for, when `finish_reason` is `tool_calls`), `repairs` (repair attempts
/// made)), to free with `pc_string_free`; on failure it is
/// NULL. Statuses: those of `pc_resolve`, and `PC_PROVIDER_ERROR`, `PC_RATE_LIMITED`,
/// `PC_TIMEOUT`, `PC_ALL_PROVIDERS_FAILED`, `PC_CIRCUIT_OPEN`, `PC_BUDGET_EXCEEDED`,
/// `PC_MISSING_API_KEY` (the error's `details` list every attempt); for a version with an
/// output schema or tools also `PC_INVALID_OUTPUT` (`details.violations`, `details.raw_text`),
/// `PC_REFUSAL` (`details.refusal`) and `PC_OUTPUT_TRUNCATED` (`details.partial_text`).
///
/// # Safety
/// As `pc_resolve`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pc_complete(
    engine: *const pc_engine,
    feature: *const c_char,
    request_json: *const c_char,
    result_json: *mut *mut c_char,
    error: *mut *mut c_char,
) -> pc_status {
    // SAFETY: each pointer is checked or used as the contract above allows.
    unsafe {
        run("pc_complete", error, || {
            feature_call(
                engine,
                feature,
                request_json,
                result_json,
                |engine, feature, context| engine.complete(feature, context),
            )
        })
    }
}

/// Records a quality signal against a request: `request_id` from a resolution or completion,
/// `metric` a name such as `"thumbs_up"` or `"rating"`, `value_json` a JSON boolean, number or
/// short string (`"true"`, `"4"`, `"\"converted\""`).
///
/// Statuses: `PC_INVALID_FEEDBACK` (empty request id or metric, or a value of another JSON
/// type), `PC_INVALID_ARGUMENT` (NULL, invalid UTF-8, `value_json` not JSON).
///
/// # Safety
/// `engine` is NULL or an open handle; the strings are NULL or NUL-terminated; `error` is NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pc_feedback(
    engine: *const pc_engine,
    request_id: *const c_char,
    metric: *const c_char,
    value_json: *const c_char,
    error: *mut *mut c_char,
) -> pc_status {
    // SAFETY: each pointer is checked or used as the contract above allows.
    unsafe {
        run("pc_feedback", error, || {
            let engine = engine_arg(engine)?;
            let request_id = text_arg(request_id, "request_id")?;
            let metric = text_arg(metric, "metric")?;
            let value = json_arg(value_json, "value_json")?;
            engine.feedback(request_id, metric, value)?;
            Ok(())
        })
    }
}

/// Re-reads and validates the configuration and prompts, then swaps them in atomically. On
/// failure the previous configuration keeps serving and the error lists every problem
/// (`PC_CONFIG_INVALID`, `PC_PROMPT_INTEGRITY`).
///
/// # Safety
/// `engine` is NULL or an open handle; `error` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pc_reload(engine: *const pc_engine, error: *mut *mut c_char) -> pc_status {
    // SAFETY: each pointer is checked or used as the contract above allows.
    unsafe {
        run("pc_reload", error, || {
            engine_arg(engine)?.reload()?;
            Ok(())
        })
    }
}

/// The live metrics as JSON (`requests`, `resolves`, `feedback`, `breakers`,
/// `dropped_events`), to free with `pc_string_free`.
///
/// # Safety
/// `engine` is NULL or an open handle; `metrics_json` and `error` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pc_metrics_json(
    engine: *const pc_engine,
    metrics_json: *mut *mut c_char,
    error: *mut *mut c_char,
) -> pc_status {
    // SAFETY: each pointer is checked or used as the contract above allows.
    unsafe {
        run("pc_metrics_json", error, || {
            let out = Out::new(metrics_json, "metrics_json")?;
            out.set_json(&engine_arg(engine)?.metrics())
        })
    }
}

/// The live metrics in the Prometheus text exposition format, to free with `pc_string_free`.
///
/// # Safety
/// `engine` is NULL or an open handle; `text` and `error` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pc_prometheus_text(
    engine: *const pc_engine,
    text: *mut *mut c_char,
    error: *mut *mut c_char,
) -> pc_status {
    // SAFETY: each pointer is checked or used as the contract above allows.
    unsafe {
        run("pc_prometheus_text", error, || {
            let out = Out::new(text, "text")?;
            out.set_string(engine_arg(engine)?.prometheus_text());
            Ok(())
        })
    }
}

/// Call in the child right after `fork()` (Puma, Unicorn, Resque workers): drops the pooled
/// connections inherited from the parent and starts the child's own telemetry writer. Returns
/// `PC_INVALID_ARGUMENT` for a NULL engine.
///
/// # Safety
/// `engine` is NULL or an open handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pc_after_fork(engine: *const pc_engine) -> pc_status {
    // SAFETY: each pointer is checked or used as the contract above allows.
    unsafe {
        run("pc_after_fork", std::ptr::null_mut(), || {
            engine_arg(engine)?.after_fork();
            Ok(())
        })
    }
}

/// Closes an engine: writes every queued telemetry event, joins the writer's threads and frees
/// the handle. NULL is a no-op. No call may use the handle during or after this one.
///
/// # Safety
/// `engine` is NULL or a handle from `pc_engine_open`, closed at most once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pc_engine_close(engine: *mut pc_engine) {
    if engine.is_null() {
        return;
    }
    super::boundary::run_infallible((), || {
        // SAFETY: the caller's contract: a live handle, given back exactly once.
        drop(unsafe { Box::from_raw(engine) });
    });
}

/// The shared body of `pc_resolve` and `pc_complete`: check and convert the arguments, call the
/// engine, write the result JSON.
///
/// # Safety
/// As `pc_resolve`.
pub(super) unsafe fn feature_call<T: serde::Serialize>(
    engine: *const pc_engine,
    feature: *const c_char,
    request_json: *const c_char,
    result_json: *mut *mut c_char,
    call: impl FnOnce(&Engine, &str, &Context) -> crate::Result<T>,
) -> Result<(), Failure> {
    // SAFETY: the caller passes on pc_resolve's contract.
    unsafe {
        let out = Out::new(result_json, "result_json")?;
        let engine = engine_arg(engine)?;
        let feature = text_arg(feature, "feature")?;
        let context: Context = json_object_arg(request_json, "request_json")?;
        out.set_json(&call(engine, feature, &context)?)
    }
}
