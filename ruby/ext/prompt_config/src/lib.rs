//! The native part of the `prompt_config` gem: `PromptConfig::Native::Engine` around the core
//! crate's `Engine`. It converts types (Ruby Hash <-> JSON, results to frozen Hashes) and errors
//! (core `kind()` -> `PromptConfig::Error` subclasses) and nothing else; everything a user sees
//! (value objects, configuration, instrumentation, Rails, fork hooks) is Ruby in `lib/`.
//!
//! Every method runs under `catch_unwind`: a panic becomes `PromptConfig::InternalError`, never
//! Ruby's `fatal`. Calls that block (complete, stream, evaluate, open, validate, reload, close)
//! release the GVL; `complete` and `stream` can be interrupted from Ruby (`Thread#kill`, `Timeout.timeout`):
//! their unblock function cancels the call, which closes its connection at once.

mod convert;
mod errors;
mod eval;
mod gvl;
mod resolution;
mod serialize;
mod stream;
mod text;

use std::sync::Arc;

use magnus::{Error, RModule, Ruby, Value, function, method, prelude::*};
use prompt_config_core::client::CancelToken;
use prompt_config_core::{Context, Engine, EngineOptions, ErrorKind, TraceContext};

use convert::{id_string, messages, to_json, to_json_object};
use resolution::NativeResolution;
use serialize::{Keys, to_ruby};

/// `PromptConfig::Native::Engine`: one engine, shared by every Ruby thread.
#[magnus::wrap(class = "PromptConfig::Native::Engine", size)]
struct NativeEngine {
    engine: Arc<Engine>,
}

/// Runs `body` with the GVL held, turning a panic into `PromptConfig::InternalError`.
fn guard<T>(ruby: &Ruby, body: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    match gvl::with_gvl(body) {
        Ok(result) => result,
        Err(payload) => Err(errors::panic_error(ruby, &*payload)),
    }
}

/// Runs `work` with the GVL released; a panic becomes `PromptConfig::InternalError`.
fn released<R>(ruby: &Ruby, work: impl FnOnce() -> R) -> Result<R, Error> {
    match gvl::without_gvl(work)? {
        Ok(value) => Ok(value),
        Err(payload) => Err(errors::panic_error(ruby, &*payload)),
    }
}

/// Runs `work` with the GVL released and an unblock function that cancels `token`.
fn released_cancellable<R>(
    ruby: &Ruby,
    token: &CancelToken,
    work: impl FnOnce() -> R,
) -> Result<R, Error> {
    match gvl::without_gvl_cancellable(work, token)? {
        Ok(value) => Ok(value),
        Err(payload) => Err(errors::panic_error(ruby, &*payload)),
    }
}

/// Engine options from the JSON `lib/` builds. Options that do not parse are a bad argument,
/// `PromptConfig::InvalidArgument` (kind `invalid_argument`), as `pc_engine_open` reports them
/// with `PC_INVALID_ARGUMENT`, not a configuration problem.
fn parse_options(ruby: &Ruby, options_json: &str) -> Result<EngineOptions, Error> {
    EngineOptions::from_json(options_json).map_err(|error| {
        errors::invalid_argument(ruby, "options", "wrong_shape", &error.to_string())
    })
}

/// Converts a core value to Ruby (the core's types always convert).
pub(crate) fn serialized<T: serde::Serialize>(
    ruby: &Ruby,
    value: &T,
    keys: Keys,
    freeze: bool,
) -> Result<Value, Error> {
    to_ruby(ruby, value, keys, freeze).map_err(|error| {
        errors::kind_error(
            ruby,
            ErrorKind::Panic,
            &format!("conversion failed: {error}"),
        )
    })
}

/// The Ruby arguments of one request: the subject, attributes, variables, a pinned version,
/// the conversation history and the caller's W3C `traceparent` (the gem passes the current
/// OpenTelemetry span's when none is given).
struct Request {
    user_id: Value,
    attributes: Value,
    variables: Value,
    version: Option<String>,
    messages: Value,
    traceparent: Option<String>,
}

/// The request context from the Ruby arguments.
fn context(ruby: &Ruby, request: Request) -> Result<Context, Error> {
    let Request {
        user_id,
        attributes,
        variables,
        version,
        messages: history,
        traceparent,
    } = request;
    let mut context = Context::new(id_string(ruby, user_id, "user_id")?)
        .with_attributes(to_json_object(ruby, attributes, "attributes")?)
        .with_variables(to_json_object(ruby, variables, "variables")?)
        .with_messages(messages(ruby, history)?);
    if let Some(version) = version {
        context = context.pin_version(version);
    }
    if let Some(traceparent) = traceparent {
        let trace = TraceContext::parse_traceparent(&traceparent).map_err(|error| {
            errors::invalid_argument(ruby, "traceparent", "wrong_shape", &error.to_string())
        })?;
        context = context.with_trace_context(trace);
    }
    Ok(context)
}

impl NativeEngine {
    /// `Engine.open(options_json)`: loads and validates configs and prompts (GVL released).
    fn open(ruby: &Ruby, options_json: String) -> Result<NativeEngine, Error> {
        guard(ruby, || {
            let options = parse_options(ruby, &options_json)?;
            match released(ruby, move || Engine::open(options))? {
                Ok(engine) => Ok(NativeEngine {
                    engine: Arc::new(engine),
                }),
                Err(error) => Err(errors::core_error(ruby, &error)),
            }
        })
    }

    /// `#resolve(feature, user_id, attributes, variables, version, messages, traceparent)`: a frozen
    /// `PromptConfig::Native::Resolution`, whose fields become Ruby values when read. The GVL
    /// stays held: resolving is a few microseconds of CPU with no I/O, less than releasing and
    /// taking back the GVL would cost.
    #[allow(clippy::too_many_arguments)]
    fn resolve(
        ruby: &Ruby,
        rb_self: &NativeEngine,
        feature: String,
        user_id: Value,
        attributes: Value,
        variables: Value,
        version: Option<String>,
        messages: Value,
        traceparent: Option<String>,
    ) -> Result<Value, Error> {
        guard(ruby, || {
            let request = Request {
                user_id,
                attributes,
                variables,
                version,
                messages,
                traceparent,
            };
            let context = context(ruby, request)?;
            match rb_self.engine.resolve(&feature, &context) {
                Ok(resolution) => {
                    let object = ruby.obj_wrap(NativeResolution::new(resolution));
                    object.freeze();
                    Ok(object.as_value())
                }
                Err(error) => Err(errors::core_error(ruby, &error)),
            }
        })
    }

    /// `#complete(feature, user_id, attributes, variables, version, messages, traceparent)`: a frozen Hash
    /// (its `data`, `tool_calls` and `repairs` included); the model calls run with the GVL
    /// released and an unblock function that cancels the call, so `Thread#kill` or
    /// `Timeout.timeout` closes its connection at once (Ruby then raises the interrupt; a
    /// trapped signal with no exception leaves `PromptConfig::Cancelled`).
    #[allow(clippy::too_many_arguments)]
    fn complete(
        ruby: &Ruby,
        rb_self: &NativeEngine,
        feature: String,
        user_id: Value,
        attributes: Value,
        variables: Value,
        version: Option<String>,
        messages: Value,
        traceparent: Option<String>,
    ) -> Result<Value, Error> {
        guard(ruby, || {
            let request = Request {
                user_id,
                attributes,
                variables,
                version,
                messages,
                traceparent,
            };
            let context = context(ruby, request)?;
            let engine = Arc::clone(&rb_self.engine);
            let token = CancelToken::new();
            match released_cancellable(ruby, &token, || {
                engine.complete_with(&feature, &context, &token)
            })? {
                Ok(completion) => serialized(ruby, &completion, Keys::Symbols, true),
                Err(error) => Err(errors::core_error(ruby, &error)),
            }
        })
    }

    /// `#stream(feature, user_id, attributes, variables, version, messages, traceparent,
    /// on_delta, on_restart)`: calls the Proc `on_delta` with each text delta (a new unfrozen UTF-8
    /// String; tool-call deltas are not text and are not passed) and `on_restart` (a callable or
    /// nil) with `{provider:, model:, reason:}` when the chain restarts on another model;
    /// returns the frozen completion Hash (with the parsed `tool_calls`). See `stream.rs` for
    /// the GVL and unwinding.
    #[allow(clippy::too_many_arguments)]
    fn stream(
        ruby: &Ruby,
        rb_self: &NativeEngine,
        feature: String,
        user_id: Value,
        attributes: Value,
        variables: Value,
        version: Option<String>,
        messages: Value,
        traceparent: Option<String>,
        on_delta: Value,
        on_restart: Option<Value>,
    ) -> Result<Value, Error> {
        guard(ruby, || {
            let request = Request {
                user_id,
                attributes,
                variables,
                version,
                messages,
                traceparent,
            };
            let context = context(ruby, request)?;
            stream::stream(
                ruby,
                &rb_self.engine,
                feature,
                context,
                on_delta,
                on_restart,
            )
        })
    }

    /// `#evaluate_native(feature, datasets, cases, versions, repeat, concurrency, model,
    /// case_pass_rate, min_pass_rate)`: the evaluation report as a deep-frozen Hash with Symbol
    /// keys (see `eval.rs`; `PromptConfig::Native::Engine#evaluate` in `lib/` takes keywords and
    /// wraps it in `PromptConfig::EvalReport`). The whole run happens with the GVL released.
    #[allow(clippy::too_many_arguments)]
    fn evaluate(
        ruby: &Ruby,
        rb_self: &NativeEngine,
        feature: String,
        datasets: Option<Vec<String>>,
        cases: Value,
        versions: Option<Vec<String>>,
        repeat: i64,
        concurrency: i64,
        model: Option<String>,
        case_pass_rate: Option<f64>,
        min_pass_rate: f64,
    ) -> Result<Value, Error> {
        guard(ruby, || {
            let arguments = eval::Arguments {
                datasets,
                cases,
                versions,
                repeat,
                concurrency,
                model,
                case_pass_rate,
                min_pass_rate,
            };
            eval::evaluate(ruby, &rb_self.engine, feature, arguments)
        })
    }

    /// `#feedback(request_id, metric, value)`.
    fn feedback(
        ruby: &Ruby,
        rb_self: &NativeEngine,
        request_id: String,
        metric: String,
        value: Value,
    ) -> Result<(), Error> {
        guard(ruby, || {
            let value = to_json(ruby, value)?;
            rb_self
                .engine
                .feedback(&request_id, &metric, value)
                .map_err(|error| errors::core_error(ruby, &error))
        })
    }

    /// `#metrics`: the live metrics as a Hash with String keys.
    fn metrics(ruby: &Ruby, rb_self: &NativeEngine) -> Result<Value, Error> {
        guard(ruby, || {
            serialized(ruby, &rb_self.engine.metrics(), Keys::Strings, false)
        })
    }

    /// `#prometheus_text`.
    fn prometheus_text(ruby: &Ruby, rb_self: &NativeEngine) -> Result<Value, Error> {
        guard(ruby, || {
            Ok(text::string(ruby, &rb_self.engine.prometheus_text()))
        })
    }

    /// `#breaker_states`: `{"openai" => "closed", ...}`.
    fn breaker_states(ruby: &Ruby, rb_self: &NativeEngine) -> Result<Value, Error> {
        guard(ruby, || {
            let states: std::collections::BTreeMap<_, _> =
                rb_self.engine.breaker_states().into_iter().collect();
            serialized(ruby, &states, Keys::Strings, false)
        })
    }

    /// `#budget_status`: an Array of Hashes, one per scope and period.
    fn budget_status(ruby: &Ruby, rb_self: &NativeEngine) -> Result<Value, Error> {
        guard(ruby, || {
            serialized(ruby, &rb_self.engine.budget_status(), Keys::Symbols, false)
        })
    }

    /// `#reload`: the new summary, or the exception listing every problem (GVL released).
    fn reload(ruby: &Ruby, rb_self: &NativeEngine) -> Result<Value, Error> {
        guard(ruby, || {
            let engine = Arc::clone(&rb_self.engine);
            match released(ruby, move || engine.reload())? {
                Ok(summary) => serialized(ruby, &summary, Keys::Symbols, true),
                Err(error) => Err(errors::core_error(ruby, &error)),
            }
        })
    }

    /// `#reload_if_changed`: true when files changed and the new state was swapped in.
    fn reload_if_changed(ruby: &Ruby, rb_self: &NativeEngine) -> Result<bool, Error> {
        guard(ruby, || {
            let engine = Arc::clone(&rb_self.engine);
            released(ruby, move || engine.reload_if_changed())?
                .map_err(|error| errors::core_error(ruby, &error))
        })
    }

    /// `#revision`: the config revision being served.
    fn revision(ruby: &Ruby, rb_self: &NativeEngine) -> Result<Value, Error> {
        guard(ruby, || {
            Ok(text::string(ruby, rb_self.engine.snapshot().revision()))
        })
    }

    /// `#after_fork`: call in a forked child.
    fn after_fork(ruby: &Ruby, rb_self: &NativeEngine) -> Result<(), Error> {
        guard(ruby, || {
            rb_self.engine.after_fork();
            Ok(())
        })
    }

    /// `#flush_telemetry`: waits until every event so far is in the file (GVL released).
    fn flush_telemetry(ruby: &Ruby, rb_self: &NativeEngine) -> Result<(), Error> {
        guard(ruby, || {
            let engine = Arc::clone(&rb_self.engine);
            released(ruby, move || engine.flush_telemetry())
        })
    }

    /// `#close`: writes queued telemetry and stops the writer (GVL released).
    fn close(ruby: &Ruby, rb_self: &NativeEngine) -> Result<(), Error> {
        guard(ruby, || {
            let engine = Arc::clone(&rb_self.engine);
            released(ruby, move || engine.close())
        })
    }
}

/// `PromptConfig::Native.validate(options_json)`: the summary of a valid configuration.
fn validate(ruby: &Ruby, options_json: String) -> Result<Value, Error> {
    guard(ruby, || {
        let options = parse_options(ruby, &options_json)?;
        match released(ruby, move || Engine::validate(&options))? {
            Ok(summary) => serialized(ruby, &summary, Keys::Symbols, true),
            Err(error) => Err(errors::core_error(ruby, &error)),
        }
    })
}

/// `PromptConfig::Native.mask_redis_url(url)`: the URL as the core names the server in errors
/// and telemetry, password masked (`redis://:***@host:6379/`, `?password=***`); a URL that does
/// not parse is shown as a placeholder, never echoed. For `Configuration#inspect`.
fn mask_redis_url(ruby: &Ruby, url: String) -> Result<String, Error> {
    guard(ruby, || {
        Ok(prompt_config_core::state::RedisSettings::new(&url)
            .map(|settings| settings.masked_url())
            .unwrap_or_else(|_| "<a Redis URL that does not parse>".to_string()))
    })
}

/// `PromptConfig::Native.panic_for_tests(released)`: panics inside the extension, with the GVL
/// held or released, so the tests can check a panic arrives as `PromptConfig::InternalError`.
/// A test hook: only with the `test-hooks` cargo feature, never in the installed gem.
#[cfg(feature = "test-hooks")]
fn panic_for_tests(ruby: &Ruby, released_gvl: bool) -> Result<(), Error> {
    guard(ruby, || {
        if released_gvl {
            released(ruby, || -> () {
                panic!("test panic with the GVL released")
            })
        } else {
            panic!("test panic with the GVL held")
        }
    })
}

/// `PromptConfig::Native.sleep_released(ms)`: blocks in native code with the GVL released
/// (a probe for the GVL tests, independent of any network). A test hook, as `panic_for_tests`.
#[cfg(feature = "test-hooks")]
fn sleep_released(ruby: &Ruby, milliseconds: u64) -> Result<(), Error> {
    guard(ruby, || {
        released(ruby, move || {
            std::thread::sleep(std::time::Duration::from_millis(milliseconds));
        })
    })
}

#[magnus::init(name = "prompt_config")]
fn init(ruby: &Ruby) -> Result<(), Error> {
    let module: RModule = ruby.define_module("PromptConfig")?;
    let native = module.define_module("Native")?;

    let kinds = ruby.ary_from_iter(
        ErrorKind::ALL
            .iter()
            .map(|kind| ruby.str_new(kind.as_str())),
    );
    kinds.freeze();
    native.const_set("ERROR_KINDS", kinds)?;
    // Each kind's fixed code (the C ABI's `pc_status` value) and whether a retry may help, for
    // `PromptConfig::Error#code` and `#retryable?`.
    let codes = ruby.hash_new();
    for kind in ErrorKind::ALL {
        codes.aset(ruby.str_new(kind.as_str()), kind.code())?;
    }
    codes.freeze();
    native.const_set("ERROR_CODES", codes)?;
    let retryable = ruby.ary_from_iter(
        ErrorKind::ALL
            .iter()
            .filter(|kind| kind.is_retryable())
            .map(|kind| ruby.str_new(kind.as_str())),
    );
    retryable.freeze();
    native.const_set("RETRYABLE_KINDS", retryable)?;
    native.const_set("CORE_VERSION", ruby.str_new(env!("CARGO_PKG_VERSION")))?;
    native.define_module_function("validate", function!(validate, 1))?;
    native.define_module_function("mask_redis_url", function!(mask_redis_url, 1))?;
    #[cfg(feature = "test-hooks")]
    {
        native.define_module_function("panic_for_tests", function!(panic_for_tests, 1))?;
        native.define_module_function("sleep_released", function!(sleep_released, 1))?;
        native.define_module_function("yield_released", function!(stream::yield_released, 3))?;
    }

    resolution::define(ruby, native)?;
    let class = native.define_class("Engine", ruby.class_object())?;
    // Only `Engine.open` builds one. Without this, `Engine.new` made a bare object until the
    // first engine was wrapped (magnus removes the allocator then), so a test run whose first
    // test called `new` saw no TypeError.
    class.undef_default_alloc_func();
    class.define_singleton_method("open", function!(NativeEngine::open, 1))?;
    class.define_method("resolve", method!(NativeEngine::resolve, 7))?;
    class.define_method("complete", method!(NativeEngine::complete, 7))?;
    class.define_method("stream", method!(NativeEngine::stream, 9))?;
    class.define_method("evaluate_native", method!(NativeEngine::evaluate, 9))?;
    class.define_method("feedback", method!(NativeEngine::feedback, 3))?;
    class.define_method("metrics", method!(NativeEngine::metrics, 0))?;
    class.define_method("prometheus_text", method!(NativeEngine::prometheus_text, 0))?;
    class.define_method("breaker_states", method!(NativeEngine::breaker_states, 0))?;
    class.define_method("budget_status", method!(NativeEngine::budget_status, 0))?;
    class.define_method("reload", method!(NativeEngine::reload, 0))?;
    class.define_method(
        "reload_if_changed",
        method!(NativeEngine::reload_if_changed, 0),
    )?;
    class.define_method("revision", method!(NativeEngine::revision, 0))?;
    class.define_method("after_fork", method!(NativeEngine::after_fork, 0))?;
    class.define_method("flush_telemetry", method!(NativeEngine::flush_telemetry, 0))?;
    class.define_method("close", method!(NativeEngine::close, 0))?;
    Ok(())
}
