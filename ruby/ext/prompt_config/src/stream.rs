//! `PromptConfig::Native::Engine#stream`: the core's `Engine::stream_with` with the GVL
//! released, taking it back only to hand each delta to a Ruby Proc.
//!
//! The shape of a call:
//! - the whole stream runs in `rb_thread_call_without_gvl` with an unblock function that
//!   cancels the call's `CancelToken` (`gvl::without_gvl_cancellable`): `Thread#kill` or
//!   `Timeout.timeout` while it waits for bytes shuts the socket, the core returns, and Ruby
//!   raises the interrupt as it takes the GVL back;
//! - each delta takes the GVL back (`rb_thread_call_with_gvl`), builds a String and calls the
//!   Proc under `rb_protect`: an exception, `break`, `throw` or a kill inside the block is caught
//!   there as a magnus `Error` (a raise, or a jump tag), the callback answers
//!   `StreamControl::Stop`, the core closes the connection and unwinds normally, and only then is
//!   the caught error raised again (`rb_exc_raise` / `rb_jump_tag`, done by magnus when the
//!   method returns `Err`) with the GVL held and no Rust frame left above Ruby's.
//!
//! Interrupts: after each callback, pending interrupts are delivered under `rb_protect`
//! (`rb_thread_check_ints`), so one that came while the block ran is caught like an exception
//! in it. Ruby also checks for interrupts as `rb_thread_call_with_gvl` releases the GVL again;
//! after that check of ours, only an interrupt sent by another thread in that instant (after a
//! thread switch there) could still be raised at that point: see the gem's README.
//!
//! No Ruby object is touched without the GVL: the Procs are plain `VALUE`s kept alive by the
//! calling Ruby frame (`lib/prompt_config.rb` holds the block) and used only inside
//! `with_gvl_again`.

use std::cell::RefCell;
use std::sync::Arc;

use magnus::{Error, Ruby, Value, rb_sys::AsRawValue, rb_sys::protect};
use prompt_config_core::client::{CancelToken, StreamControl, StreamEvent};
use prompt_config_core::{Context, Engine, ErrorKind};

use crate::errors;
use crate::gvl;
use crate::serialize::{Keys, to_ruby};
use crate::text;

/// What stopped the stream from the Ruby side, raised once the core call has returned.
enum Stopped {
    /// An exception or a non-local exit (`break`, `throw`, `Thread#kill`) in a callback.
    Ruby(Error),
    /// A panic while building the Ruby values (a bug).
    Panic(Box<dyn std::any::Any + Send + 'static>),
}

/// Calls `callback` with one argument under `rb_protect`, then lets Ruby deliver any interrupt
/// that arrived meanwhile (`Thread#raise`, `Thread#kill`, `Timeout`) under `rb_protect` too, so
/// it is caught here rather than raised as the GVL is released again. The GVL must be held.
fn call(callback: Value, argument: Value) -> Result<(), Error> {
    let argument = argument.as_raw();
    protect(|| {
        // SAFETY: the GVL is held (we run inside `rb_thread_call_with_gvl`), `callback` is a
        // live Proc (its Ruby frame holds it) and `argument` one valid VALUE; `rb_protect`
        // catches any raise or jump, so nothing longjmps through Rust frames.
        unsafe {
            rb_sys::rb_proc_call_with_block(
                callback.as_raw(),
                1,
                &raw const argument,
                rb_sys::Qnil as rb_sys::VALUE,
            )
        }
    })?;
    protect(|| {
        // SAFETY: the GVL is held; an interrupt raised here is caught by `rb_protect`.
        unsafe { rb_sys::rb_thread_check_ints() };
        rb_sys::Qnil as rb_sys::VALUE
    })
    .map(|_| ())
}

/// Hands one event to Ruby: a delta to `on_delta` as a new unfrozen UTF-8 String, a restart to
/// `on_restart` (when given) as a frozen `{provider:, model:, reason:}` Hash.
fn deliver(
    event: StreamEvent<'_>,
    on_delta: Value,
    on_restart: Option<Value>,
) -> Result<(), Error> {
    // SAFETY: called only inside `with_gvl_again`, on a Ruby thread holding the GVL.
    let ruby = unsafe { Ruby::get_unchecked() };
    match event {
        StreamEvent::Delta(delta) => call(on_delta, text::string(&ruby, delta)),
        StreamEvent::Restart {
            provider,
            model,
            reason,
        } => match on_restart {
            Some(on_restart) => {
                let restart = serde_json::json!({
                    "provider": provider, "model": model, "reason": reason
                });
                let restart = to_ruby(&ruby, &restart, Keys::Symbols, true).map_err(|error| {
                    errors::kind_error(
                        &ruby,
                        ErrorKind::Panic,
                        &format!("conversion failed: {error}"),
                    )
                })?;
                call(on_restart, restart)
            }
            None => Ok(()),
        },
        // A kind of event this build does not know: not for Ruby.
        _ => Ok(()),
    }
}

/// Streams `feature`: calls `on_delta` with each text delta and `on_restart` (a callable or
/// nil) when the chain restarts on another model; returns the frozen completion Hash.
pub fn stream(
    ruby: &Ruby,
    engine: &Arc<Engine>,
    feature: String,
    context: Context,
    on_delta: Value,
    on_restart: Option<Value>,
) -> Result<Value, Error> {
    let token = CancelToken::new();
    let stopped: RefCell<Option<Stopped>> = RefCell::new(None);
    let on_event = |event: StreamEvent<'_>| -> StreamControl {
        if stopped.borrow().is_some() {
            return StreamControl::Stop;
        }
        // Tool-call pieces are not text: the parsed calls arrive whole in the completion, so
        // there is nothing to hand Ruby and no reason to take the GVL back.
        if matches!(event, StreamEvent::ToolCallDelta { .. }) {
            return StreamControl::Continue;
        }
        let outcome = gvl::with_gvl_again(|| deliver(event, on_delta, on_restart));
        let failure = match outcome {
            Ok(Ok(())) => return StreamControl::Continue,
            Ok(Err(error)) => Stopped::Ruby(error),
            Err(payload) => Stopped::Panic(payload),
        };
        *stopped.borrow_mut() = Some(failure);
        StreamControl::Stop
    };
    let engine = Arc::clone(engine);
    let outcome = gvl::without_gvl_cancellable(
        || engine.stream_with(&feature, &context, &token, on_event),
        &token,
    )?;
    // The block's own exception or jump wins over the `cancelled` error it caused.
    match stopped.into_inner() {
        Some(Stopped::Ruby(error)) => return Err(error),
        Some(Stopped::Panic(payload)) => return Err(errors::panic_error(ruby, &*payload)),
        None => {}
    }
    match outcome {
        Ok(Ok(completion)) => crate::serialized(ruby, &completion, Keys::Symbols, true),
        Ok(Err(error)) => Err(errors::core_error(ruby, &error)),
        Err(payload) => Err(errors::panic_error(ruby, &*payload)),
    }
}

/// `PromptConfig::Native.yield_released(count, text, on_delta)`: hands `text` to `on_delta`
/// `count` times the way `stream` hands deltas (GVL released, taken back for each yield under
/// `rb_protect`), with no engine or network: the bench's probe of the per-chunk cost of the
/// GVL dance. A test hook (the `test-hooks` cargo feature), never in the installed gem.
#[cfg(feature = "test-hooks")]
pub fn yield_released(
    ruby: &Ruby,
    count: u64,
    text: String,
    on_delta: Value,
) -> Result<u64, Error> {
    let stopped: RefCell<Option<Error>> = RefCell::new(None);
    let yielded = gvl::without_gvl(|| {
        let mut yielded = 0;
        for _ in 0..count {
            let outcome =
                gvl::with_gvl_again(|| deliver(StreamEvent::Delta(&text), on_delta, None));
            match outcome {
                Ok(Ok(())) => yielded += 1,
                Ok(Err(error)) => {
                    *stopped.borrow_mut() = Some(error);
                    break;
                }
                Err(_) => break,
            }
        }
        yielded
    })?;
    if let Some(error) = stopped.into_inner() {
        return Err(error);
    }
    yielded.map_err(|payload| errors::panic_error(ruby, &*payload))
}
