//! The failure policy: what each failed attempt means for the call (retry here, try the next
//! model, try the next provider) and for the provider's health (which failures count against
//! its circuit breaker). Caller mistakes (400, 404, 422, context length) say nothing about a
//! provider's health and never trip a breaker.

use super::breaker::BreakerFailure;
use super::types::{AttemptError, FailureKind};

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Transient: the same model may succeed on a retry.
    Retry,
    /// This model cannot take the request (context length): the next model may.
    NextModel,
    /// Final for this provider (bad request, auth, missing key, local limits).
    NextProvider,
}

/// Statuses worth retrying: timeouts, rate limits, server errors and overload (Anthropic 529).
const RETRYABLE_STATUSES: &[u16] = &[408, 409, 425, 429, 500, 502, 503, 504, 529];

/// Classifies a failed attempt.
pub fn next_step(error: &AttemptError) -> NextStep {
    match error.kind {
        FailureKind::Connect
        | FailureKind::Timeout
        | FailureKind::Malformed
        | FailureKind::Injected => NextStep::Retry,
        FailureKind::ContextLength => NextStep::NextModel,
        FailureKind::MissingApiKey | FailureKind::RateLimitedLocally | FailureKind::CircuitOpen => {
            NextStep::NextProvider
        }
        FailureKind::Http => match error.status {
            Some(status) if RETRYABLE_STATUSES.contains(&status) || status >= 500 => {
                NextStep::Retry
            }
            _ => NextStep::NextProvider,
        },
    }
}

/// How a failed attempt counts against the provider's breaker, if at all.
pub fn breaker_failure(error: &AttemptError) -> Option<BreakerFailure> {
    match error.kind {
        FailureKind::Connect
        | FailureKind::Timeout
        | FailureKind::Malformed
        | FailureKind::Injected => Some(BreakerFailure::Ordinary),
        FailureKind::ContextLength
        | FailureKind::MissingApiKey
        | FailureKind::RateLimitedLocally
        | FailureKind::CircuitOpen => None,
        FailureKind::Http => match error.status {
            Some(401 | 403) => Some(BreakerFailure::Misconfigured),
            // A 429 that says when to come back opens the breaker until then; one that does not
            // is an ordinary failure, so retries with backoff stay possible.
            Some(429) => Some(match error.retry_after {
                Some(retry_after) => BreakerFailure::RateLimited {
                    retry_after: Some(retry_after),
                },
                None => BreakerFailure::Ordinary,
            }),
            Some(status) if status >= 500 || status == 408 => Some(BreakerFailure::Ordinary),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16) -> AttemptError {
        AttemptError::http(status, "x")
    }

    #[test]
    fn transient_statuses_are_retried() {
        for status in [408, 429, 500, 502, 503, 504, 529] {
            assert_eq!(next_step(&http(status)), NextStep::Retry, "{status}");
        }
    }

    #[test]
    fn client_errors_are_final_for_the_provider() {
        for status in [400, 401, 403, 404, 422] {
            assert_eq!(next_step(&http(status)), NextStep::NextProvider, "{status}");
        }
    }

    #[test]
    fn transport_faults_are_retried() {
        for kind in [
            FailureKind::Connect,
            FailureKind::Timeout,
            FailureKind::Malformed,
        ] {
            assert_eq!(next_step(&AttemptError::new(kind, "x")), NextStep::Retry);
        }
    }

    #[test]
    fn context_length_moves_to_the_next_model() {
        assert_eq!(
            next_step(&AttemptError::new(FailureKind::ContextLength, "x")),
            NextStep::NextModel
        );
    }

    #[test]
    fn auth_failures_count_as_misconfiguration() {
        assert!(matches!(
            breaker_failure(&http(401)),
            Some(BreakerFailure::Misconfigured)
        ));
        assert!(matches!(
            breaker_failure(&http(403)),
            Some(BreakerFailure::Misconfigured)
        ));
    }

    #[test]
    fn caller_mistakes_never_count_against_the_breaker() {
        for status in [400, 404, 422] {
            assert!(breaker_failure(&http(status)).is_none(), "{status}");
        }
        assert!(breaker_failure(&AttemptError::new(FailureKind::ContextLength, "x")).is_none());
        assert!(breaker_failure(&AttemptError::new(FailureKind::MissingApiKey, "x")).is_none());
    }

    #[test]
    fn rate_limits_without_retry_after_count_as_ordinary_failures() {
        assert!(matches!(
            breaker_failure(&http(429)),
            Some(BreakerFailure::Ordinary)
        ));
    }

    #[test]
    fn rate_limits_carry_their_retry_after_to_the_breaker() {
        let mut error = http(429);
        error.retry_after = Some(std::time::Duration::from_secs(7));
        match breaker_failure(&error) {
            Some(BreakerFailure::RateLimited { retry_after }) => {
                assert_eq!(retry_after, Some(std::time::Duration::from_secs(7)))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
