//! The failure policy: what each failed attempt means for the call (retry here, try the next
//! model, try the next provider) and for the provider's health (which failures count against
//! its circuit breaker). Caller mistakes (400, 404, 422, context length) say nothing about a
//! provider's health and never trip a breaker. An error object inside a 2xx body is judged by the
//! provider's error type (or numeric code) exactly as the matching HTTP status would be.

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
        // The walk makes the repair attempt itself; what is left after it is for the next model.
        FailureKind::ContextLength | FailureKind::InvalidOutput => NextStep::NextModel,
        FailureKind::MissingApiKey
        | FailureKind::RateLimitedLocally
        | FailureKind::CircuitOpen
        | FailureKind::Cancelled => NextStep::NextProvider,
        FailureKind::Http => match error.status {
            Some(status) if RETRYABLE_STATUSES.contains(&status) || status >= 500 => {
                NextStep::Retry
            }
            _ => NextStep::NextProvider,
        },
        FailureKind::ErrorInBody => match body_error_class(error) {
            BodyErrorClass::Transient => NextStep::Retry,
            BodyErrorClass::Misconfigured | BodyErrorClass::CallerMistake => NextStep::NextProvider,
        },
    }
}

/// What an error object in a 2xx body means, from its type or code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyErrorClass {
    /// Overload, rate limit, server fault, or a type we do not know: worth retrying.
    Transient,
    /// Authentication or permission: the key or account is wrong.
    Misconfigured,
    /// The request itself is wrong: another attempt at the same provider would fail the same way.
    CallerMistake,
}

/// Error types of OpenAI, Anthropic and common gateways that mean a bad key or account.
const MISCONFIGURED_TYPES: &[&str] = &[
    "authentication_error",
    "permission_error",
    "permission_denied",
    "invalid_api_key",
    "insufficient_quota",
    "billing_error",
];

/// Error types that mean the request is wrong.
const CALLER_MISTAKE_TYPES: &[&str] = &[
    "invalid_request_error",
    "not_found_error",
    "request_too_large",
    "model_not_found",
    "context_length_exceeded",
    "invalid_value",
];

fn body_error_class(error: &AttemptError) -> BodyErrorClass {
    let Some(error_type) = error.provider_error_type.as_deref() else {
        return BodyErrorClass::Transient;
    };
    // Gateways such as OpenRouter put the would-be HTTP status in `code`.
    if let Ok(status) = error_type.parse::<u16>() {
        return match status {
            401..=403 => BodyErrorClass::Misconfigured,
            status if RETRYABLE_STATUSES.contains(&status) || status >= 500 => {
                BodyErrorClass::Transient
            }
            400..=499 => BodyErrorClass::CallerMistake,
            _ => BodyErrorClass::Transient,
        };
    }
    if MISCONFIGURED_TYPES.contains(&error_type) {
        BodyErrorClass::Misconfigured
    } else if CALLER_MISTAKE_TYPES.contains(&error_type) {
        BodyErrorClass::CallerMistake
    } else {
        BodyErrorClass::Transient
    }
}

/// How a failed attempt counts against the provider's breaker, if at all.
pub fn breaker_failure(error: &AttemptError) -> Option<BreakerFailure> {
    match error.kind {
        FailureKind::Connect
        | FailureKind::Timeout
        | FailureKind::Malformed
        | FailureKind::Injected => Some(BreakerFailure::Ordinary),
        // An invalid answer is the model's, not a fault of the provider's service.
        FailureKind::ContextLength
        | FailureKind::MissingApiKey
        | FailureKind::RateLimitedLocally
        | FailureKind::CircuitOpen
        | FailureKind::Cancelled
        | FailureKind::InvalidOutput => None,
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
        FailureKind::ErrorInBody => match body_error_class(error) {
            BodyErrorClass::Transient => Some(BreakerFailure::Ordinary),
            BodyErrorClass::Misconfigured => Some(BreakerFailure::Misconfigured),
            BodyErrorClass::CallerMistake => None,
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

    fn in_body(error_type: Option<&str>) -> AttemptError {
        let mut error = AttemptError::new(FailureKind::ErrorInBody, "x");
        error.provider_error_type = error_type.map(str::to_string);
        error
    }

    #[test]
    fn overload_and_rate_limit_errors_in_a_2xx_body_are_retried_and_count_against_the_breaker() {
        for error_type in [
            Some("overloaded_error"),
            Some("rate_limit_error"),
            Some("server_error"),
            Some("429"),
            Some("502"),
            None,
        ] {
            let error = in_body(error_type);
            assert_eq!(next_step(&error), NextStep::Retry, "{error_type:?}");
            assert!(matches!(
                breaker_failure(&error),
                Some(BreakerFailure::Ordinary)
            ));
        }
    }

    #[test]
    fn auth_errors_in_a_2xx_body_are_misconfiguration() {
        for error_type in ["authentication_error", "permission_error", "401"] {
            let error = in_body(Some(error_type));
            assert_eq!(next_step(&error), NextStep::NextProvider, "{error_type}");
            assert!(matches!(
                breaker_failure(&error),
                Some(BreakerFailure::Misconfigured)
            ));
        }
    }

    #[test]
    fn request_errors_in_a_2xx_body_move_on_without_touching_the_breaker() {
        for error_type in ["invalid_request_error", "not_found_error", "400"] {
            let error = in_body(Some(error_type));
            assert_eq!(next_step(&error), NextStep::NextProvider, "{error_type}");
            assert!(breaker_failure(&error).is_none(), "{error_type}");
        }
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
