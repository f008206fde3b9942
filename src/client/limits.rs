//! The rate-limit part of one attempt of `complete()`: take capacity from every limiter of the
//! model (the provider's, then the model's), waiting within the policy's bound, and later settle
//! or release it where it was taken (the fleet's shared limits on Redis or this process's
//! buckets; the two can differ between limiters when Redis fails in between).

use std::time::{Duration, Instant};

use super::clock::Clock;
use super::rate_limit::Acquired;
use super::runtime::ProviderRuntime;

/// What one attempt took from the limiters of its model, in limiter order.
#[derive(Debug, Default)]
pub(super) struct Taken {
    places: Vec<Acquired>,
}

/// Takes one request and `tokens` tokens from every limiter of `model` at `now`, waiting up to
/// their bound (`max_wait_ms`, the same wait-or-move-on policy with or without Redis); `Err`
/// when the wait would be too long or pass `deadline`. `unix_ms` gives a moment's wall-clock
/// time in Unix ms, which the fleet's shared limits count in.
pub(super) fn acquire(
    provider: &ProviderRuntime,
    model: &str,
    tokens: u64,
    mut now: Instant,
    clock: &dyn Clock,
    deadline: Instant,
    unix_ms: impl Fn(Instant) -> i64,
) -> Result<(Duration, Taken), ()> {
    let mut waited = Duration::ZERO;
    loop {
        let now_ms = unix_ms(now);
        let mut taken = Taken::default();
        let mut shortfall = None;
        for limiter in provider.limiters(model) {
            match limiter.try_acquire_at(now, now_ms, tokens) {
                Ok(acquired) => taken.places.push(acquired),
                Err(wait) => {
                    shortfall = Some((wait, limiter.max_wait()));
                    break;
                }
            }
        }
        let Some((wait, max_wait)) = shortfall else {
            return Ok((waited, taken));
        };
        for (limiter, acquired) in provider.limiters(model).zip(taken.places) {
            limiter.release_at(now, now_ms, tokens, acquired);
        }
        if waited.saturating_add(wait) > max_wait
            || now.checked_add(wait).is_none_or(|ready| ready >= deadline)
        {
            return Err(());
        }
        clock.sleep(wait);
        waited += wait;
        now = clock.now();
    }
}

/// Gives back a whole acquisition that never turned into a call.
pub(super) fn release(
    provider: &ProviderRuntime,
    model: &str,
    now: Instant,
    now_ms: i64,
    tokens: u64,
    taken: Taken,
) {
    for (limiter, acquired) in provider.limiters(model).zip(taken.places) {
        limiter.release_at(now, now_ms, tokens, acquired);
    }
}

/// Corrects the token charge of a finished call from `reserved` to `used`.
pub(super) fn settle(
    provider: &ProviderRuntime,
    model: &str,
    now: Instant,
    now_ms: i64,
    reserved: u64,
    used: u64,
    taken: &Taken,
) {
    for (limiter, acquired) in provider.limiters(model).zip(taken.places.iter().copied()) {
        limiter.settle_at(now, now_ms, reserved, used, acquired);
    }
}
