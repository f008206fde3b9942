//! Running Rust code with Ruby's GVL released, and keeping panics away from Ruby.
//!
//! `without_gvl` hands a closure to `rb_thread_call_without_gvl` through a small trampoline, so
//! other Ruby threads run while it blocks (a network call, a config load). The closure must not
//! touch any Ruby object: arguments are converted before, Ruby values built after. It runs under
//! `catch_unwind`, and the panic payload comes back as a value: a panic never unwinds through
//! Ruby's C frames. The call itself is wrapped in `rb_protect`, because Ruby checks for pending
//! interrupts (`Thread#raise`, Ctrl-C) when it takes the GVL back and may raise right there.
//!
//! No unblock function is registered: a call in progress cannot be cancelled from Ruby, so an
//! interrupt is delivered when it returns (the core bounds every call by its deadline).

use std::any::Any;
use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};

use magnus::Error;

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
    let mut payload = Payload {
        work: Some(work),
        outcome: None,
    };
    let data = (&raw mut payload).cast::<c_void>();
    magnus::rb_sys::protect(|| {
        // SAFETY: the trampoline matches `F` and `R`, `data` outlives the call, and the
        // trampoline neither unwinds (it catches panics) nor calls into Ruby.
        unsafe {
            rb_sys::rb_thread_call_without_gvl(
                Some(trampoline::<F, R>),
                data,
                None,
                std::ptr::null_mut(),
            );
        }
        rb_sys::Qnil as rb_sys::VALUE
    })?;
    Ok(payload.outcome.unwrap_or_else(|| {
        Err(Box::new(
            "the call was interrupted before it started".to_string(),
        ))
    }))
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
