//! Running Rust code with Ruby's GVL released, and keeping panics away from Ruby.
//!
//! `without_gvl` hands a closure to `rb_thread_call_without_gvl` through a small trampoline, so
//! other Ruby threads run while it blocks (a network call, a config load). The closure must not
//! touch any Ruby object: arguments are converted before, Ruby values built after. It runs under
//! `catch_unwind`, and the panic payload comes back as a value: a panic never unwinds through
//! Ruby's C frames. The call itself is wrapped in `rb_protect`, because Ruby checks for pending
//! interrupts (`Thread#raise`, Ctrl-C) when it takes the GVL back and may raise right there.
//!
//! `without_gvl_cancellable` also registers an unblock function (ubf) that cancels a
//! [`CancelToken`]: when Ruby interrupts the thread (`Thread#kill`, `Thread#raise`,
//! `Timeout.timeout`, a signal handled by `trap` on that thread) it calls the ubf, the token
//! shuts down the socket being read and wakes any backoff sleep, the core call returns
//! `cancelled` at once, and Ruby then raises the interrupt as it takes the GVL back. Calls with
//! nothing to cancel (open, reload, close) keep no ubf: they run to their end.
//!
//! `with_gvl_again` is the way back in from inside such a call: a streaming callback takes the
//! GVL only to yield a delta to Ruby (`rb_thread_call_with_gvl`), then releases it again.

use std::any::Any;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use magnus::{Error, prelude::*};
use prompt_config_core::client::CancelToken;

/// The outcome of a closure run outside the GVL: its value, or the payload of its panic.
pub type Outcome<R> = Result<R, Box<dyn Any + Send + 'static>>;

struct Payload<F, R> {
    work: Option<F>,
    outcome: Option<Outcome<R>>,
}

unsafe extern "C" fn trampoline<F, R>(data: *mut c_void) -> *mut c_void
where
    F: FnOnce() -> R,
{
    // SAFETY: `data` is the `Payload` that `without_gvl` keeps alive on its stack for the whole
    // call, and only this function touches it until `rb_thread_call_without_gvl` returns.
    let payload = unsafe { &mut *data.cast::<Payload<F, R>>() };
    if let Some(work) = payload.work.take() {
        payload.outcome = Some(catch_unwind(AssertUnwindSafe(work)));
    }
    std::ptr::null_mut()
}

/// Runs `work` with the GVL released. `Err` is a Ruby exception raised while taking the GVL
/// back (an interrupt); `Ok(Err(payload))` is a panic inside `work`.
pub fn without_gvl<F, R>(work: F) -> Result<Outcome<R>, Error>
where
    F: FnOnce() -> R,
{
    call_without_gvl(work, None)
}

/// [`without_gvl`] with an unblock function that cancels `token`: an interrupt from Ruby
/// (`Thread#kill`, `Timeout.timeout`, ...) ends a blocked read or sleep of `work` at once.
pub fn without_gvl_cancellable<F, R>(work: F, token: &CancelToken) -> Result<Outcome<R>, Error>
where
    F: FnOnce() -> R,
{
    call_without_gvl(work, Some(token))
}

/// The unblock function: Ruby calls it from another thread (the one calling `Thread#kill`, or
/// its timer thread) while `work` runs without the GVL, possibly several times.
unsafe extern "C" fn cancel_token(data: *mut c_void) {
    // SAFETY: `data` is the `CancelToken` that `call_without_gvl` borrows for the whole call;
    // Ruby calls the ubf only while that call is in its blocking region.
    let token = unsafe { &*data.cast::<CancelToken>() };
    // `cancel` takes a short lock and shuts a socket down; a panic must not reach Ruby's C frames.
    let _ = catch_unwind(AssertUnwindSafe(|| token.cancel()));
}

/// Whether this is the main thread and no other Ruby thread lives. There Ruby 3.1 starts a
/// helper thread for every call given an unblock function (to run it on a signal) and kills and
/// joins it afterwards, which costs a thread per call and never returns when the caller defers
/// interrupts (`Thread.handle_interrupt(Object => :never)`: the helper inherits the mask). So a
/// lone main thread gets no unblock function: `Timeout.timeout` and `Thread#kill` need a second
/// thread, so they still interrupt; only a signal (Ctrl-C) waits for the call to end. The GVL
/// must be held.
fn lone_main_thread() -> bool {
    // SAFETY: both return the current and main thread objects; the GVL is held.
    if unsafe { rb_sys::rb_thread_main() != rb_sys::rb_thread_current() } {
        return false;
    }
    // SAFETY: the GVL is held (our callers run on a Ruby thread, before releasing it).
    let ruby = unsafe { magnus::Ruby::get_unchecked() };
    ruby.class_thread()
        .funcall::<_, _, magnus::RArray>("list", ())
        .map(|threads| threads.len() == 1)
        .unwrap_or(false)
}

fn call_without_gvl<F, R>(work: F, token: Option<&CancelToken>) -> Result<Outcome<R>, Error>
where
    F: FnOnce() -> R,
{
    let token = token.filter(|_| !lone_main_thread());
    let (ubf, ubf_data): (rb_sys::rb_unblock_function_t, *mut c_void) = match token {
        Some(token) => (
            Some(cancel_token),
            std::ptr::from_ref(token).cast_mut().cast::<c_void>(),
        ),
        None => (None, std::ptr::null_mut()),
    };
    let mut payload = Payload {
        work: Some(work),
        outcome: None,
    };
    let data = (&raw mut payload).cast::<c_void>();
    magnus::rb_sys::protect(|| {
        // SAFETY: the trampoline matches `F` and `R`, `data` outlives the call, and the
        // trampoline neither unwinds (it catches panics) nor calls into Ruby.
        unsafe {
            rb_sys::rb_thread_call_without_gvl(Some(trampoline::<F, R>), data, ubf, ubf_data);
        }
        rb_sys::Qnil as rb_sys::VALUE
    })?;
    Ok(payload.outcome.unwrap_or_else(|| {
        Err(Box::new(
            "the call was interrupted before it started".to_string(),
        ))
    }))
}

/// Runs `work` with the GVL taken back, from inside a closure that [`without_gvl`] or
/// [`without_gvl_cancellable`] runs (never elsewhere: Ruby aborts when the thread already holds
/// the GVL). A panic in `work` comes back as a value; a Ruby exception or jump must be caught by
/// `work` itself (`magnus::rb_sys::protect`), never unwind through here.
pub fn with_gvl_again<F, R>(work: F) -> Outcome<R>
where
    F: FnOnce() -> R,
{
    let mut payload = Payload {
        work: Some(work),
        outcome: None,
    };
    let data = (&raw mut payload).cast::<c_void>();
    // SAFETY: the trampoline matches `F` and `R`, `data` outlives the call, and the trampoline
    // does not unwind (it catches panics). The caller runs inside a blocking region of this
    // thread, as `rb_thread_call_with_gvl` requires.
    unsafe {
        rb_sys::rb_thread_call_with_gvl(Some(trampoline::<F, R>), data);
    }
    payload
        .outcome
        .unwrap_or_else(|| Err(Box::new("the GVL could not be taken back".to_string())))
}

/// Runs `work` with the GVL held, catching a panic as a value.
pub fn with_gvl<F, R>(work: F) -> Outcome<R>
where
    F: FnOnce() -> R,
{
    catch_unwind(AssertUnwindSafe(work))
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&'static str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_string()
    }
}
