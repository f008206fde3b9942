//! Sending one alert to one channel: the HTTP POST with our own ureq agent (not the providers':
//! alerts must not queue behind model calls, nor share their connection limits), retried with
//! exponential backoff and jitter on connection failures, timeouts, 408, 429 (honouring
//! `Retry-After`) and 5xx, a bounded number of times and never past a deadline. Runs on the
//! alerts thread or in `prompt-config alerts test`, never on a request's thread.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::thread;
use std::time::{Duration, Instant};

use chrono::Utc;
use ureq::Agent;

use super::Alert;
use super::channel::{Channel, DeliveryError, EnvLookup};

/// The largest answer body read (and thrown away, so the connection can be reused).
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RetryPolicy {
    /// Requests per alert and channel, the first included (at least 1).
    pub attempts: u32,
    /// The wait before the first retry; doubled for each further one.
    pub base_delay: Duration,
    /// The longest wait between two requests, `Retry-After` included.
    pub max_delay: Duration,
    /// The longest one request may take, connect to last byte.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    /// 5 requests, waits of about 0.25, 0.5, 1 and 2 s between them (at most 30 s when the
    /// receiver asks for more with `Retry-After`), 10 s per request.
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// The receiver took the alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Delivered {
    /// Requests made, the successful one included.
    pub attempts: u32,
    /// Its status (200, 202, ...).
    pub status: u16,
}

/// The alert did not get through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failed {
    /// Requests made (0 when a secret variable was unset).
    pub attempts: u32,
    /// The last failure.
    pub error: DeliveryError,
}

/// Sends alerts; one per alerts thread (or CLI command).
pub(crate) struct Deliverer {
    agent: Agent,
    policy: RetryPolicy,
    env: EnvLookup,
    jitter: RandomState,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Deliverer")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Deliverer {
    /// A deliverer reading secrets through `env`.
    pub fn new(policy: RetryPolicy, env: EnvLookup) -> Deliverer {
        let config = Agent::config_builder()
            // Error statuses are answers to classify (retry or not), not transport errors.
            .http_status_as_error(false)
            // A redirect would send the alert somewhere the configuration does not name.
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_global(Some(policy.request_timeout))
            .user_agent(concat!(
                "prompt_config/",
                env!("CARGO_PKG_VERSION"),
                " (alerts)"
            ))
            .build();
        Deliverer {
            agent: Agent::new_with_config(config),
            policy,
            env,
            jitter: RandomState::new(),
        }
    }

    /// Sends `alert` to `channel`, retrying as the policy says, and stopping early at the
    /// instant `deadline` gives (a closing engine's timeout), which is asked again before and
    /// during each wait: an engine that starts closing while a retry waits out a long
    /// `Retry-After` does not wait for it.
    pub fn deliver(
        &self,
        channel: &Channel,
        alert: &Alert,
        deadline: &dyn Fn() -> Option<Instant>,
    ) -> Result<Delivered, Failed> {
        let mut attempts = 0;
        loop {
            // Prepared for each request: the webhook's signature is stamped with the time it
            // is sent, and a secret rotated meanwhile is picked up.
            let prepared = channel
                .prepare(alert, &*self.env, Utc::now())
                .map_err(|error| Failed { attempts, error })?;
            attempts += 1;
            let (error, retry_after) = match self.send(&prepared) {
                Ok((status, _)) if channel.accepts(status) => {
                    return Ok(Delivered { attempts, status });
                }
                Ok((status, retry_after)) => {
                    let error = DeliveryError::Status { status };
                    if !retryable(status) {
                        return Err(Failed { attempts, error });
                    }
                    (error, retry_after)
                }
                Err(error) => (error, None),
            };
            if attempts >= self.policy.attempts.max(1) {
                return Err(Failed { attempts, error });
            }
            let wait = retry_after
                .unwrap_or_else(|| self.backoff(attempts))
                .min(self.policy.max_delay);
            if !wait_unless_past(wait, deadline) {
                return Err(Failed { attempts, error });
            }
        }
    }

    /// One POST: the status and the `Retry-After` it asked for, or a transport failure.
    fn send(
        &self,
        prepared: &super::channel::PreparedRequest,
    ) -> Result<(u16, Option<Duration>), DeliveryError> {
        let mut request = self.agent.post(&prepared.url);
        for (name, value) in &prepared.headers {
            request = request.header(*name, value.as_str());
        }
        let mut response = request
            .send(prepared.body.as_bytes())
            .map_err(transport_error)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_retry_after);
        // Read to the end so the connection goes back to the pool; what it says is not used.
        let _ = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_vec();
        Ok((status, retry_after))
    }

    /// The wait after `attempts` failed requests: `base * 2^(attempts-1)`, times a random
    /// factor between 0.5 and 1 so a fleet's retries do not arrive together.
    fn backoff(&self, attempts: u32) -> Duration {
        let exponential = self
            .policy
            .base_delay
            .saturating_mul(1u32 << attempts.saturating_sub(1).min(16));
        let mut hasher = self.jitter.build_hasher();
        hasher.write_u32(attempts);
        hasher.write_u128(Instant::now().elapsed().as_nanos());
        let fraction = (hasher.finish() % 1000) as f64 / 1000.0;
        exponential.mul_f64(0.5 + fraction / 2.0)
    }
}

/// The longest sleep between two looks at the deadline.
const DEADLINE_POLL: Duration = Duration::from_millis(50);

/// Sleeps `wait`, unless the deadline (asked every [`DEADLINE_POLL`]) falls before it ends:
/// then returns false at once, since a request after the deadline could not be waited for.
fn wait_unless_past(wait: Duration, deadline: &dyn Fn() -> Option<Instant>) -> bool {
    let until = Instant::now() + wait;
    loop {
        if deadline().is_some_and(|deadline| until >= deadline) {
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        thread::sleep(left.min(DEADLINE_POLL));
    }
}

/// `Retry-After` in delay-seconds (RFC 9110 §10.2.3); an HTTP-date or anything else is `None`
/// (the backoff applies). The policy's `max_delay` caps what it asks for.
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// Statuses worth another try: request timeout, too many requests, and server errors.
fn retryable(status: u16) -> bool {
    status == 408 || status == 429 || (500..600).contains(&status)
}

/// A ureq failure in our words: its own texts can quote the URL, which for Slack is the secret.
fn transport_error(error: ureq::Error) -> DeliveryError {
    let reason = match error {
        ureq::Error::Timeout(_) => "timed out",
        ureq::Error::HostNotFound => "host not found",
        ureq::Error::ConnectionFailed => "could not connect",
        ureq::Error::Io(_) => "connection failed",
        ureq::Error::BadUri(_) | ureq::Error::Http(_) => "invalid URL or header value",
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => "TLS error",
        ureq::Error::Protocol(_) => "invalid HTTP response",
        _ => "transport error",
    };
    DeliveryError::Transport {
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::alerts::config::ChannelConfig;
    use crate::telemetry::alerts::tests::sample_alert;

    fn deliverer(env: EnvLookup) -> Deliverer {
        Deliverer::new(
            RetryPolicy {
                attempts: 3,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
                request_timeout: Duration::from_secs(2),
            },
            env,
        )
    }

    proptest::proptest! {
        #[test]
        fn retry_after_is_delay_seconds_or_nothing(text in "\\PC{0,30}", seconds in 0u64..100_000) {
            let _ = parse_retry_after(&text);
            proptest::prop_assert_eq!(
                parse_retry_after(&format!(" {seconds} ")),
                Some(Duration::from_secs(seconds))
            );
        }
    }

    #[test]
    fn an_http_date_retry_after_falls_back_to_the_backoff() {
        assert_eq!(parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after(""), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn an_unset_secret_fails_before_any_request() {
        let channel = Channel {
            name: "ops".into(),
            config: ChannelConfig::Slack {
                webhook_url_env: "PC_TEST_UNSET_HOOK".into(),
            },
        };
        let failed = deliverer(crate::telemetry::alerts::channel::lookup_from(|_: &str| {
            None
        }))
        .deliver(&channel, &sample_alert(), &|| None)
        .unwrap_err();
        assert_eq!(failed.attempts, 0);
        assert!(matches!(failed.error, DeliveryError::MissingSecret { .. }));
    }

    #[test]
    fn a_refused_connection_is_retried_then_reported_without_the_url() {
        // A port nothing listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .unwrap();
        let url = format!("http://127.0.0.1:{port}/secret-path-77");
        let channel = Channel {
            name: "ops".into(),
            config: ChannelConfig::Slack {
                webhook_url_env: "HOOK".into(),
            },
        };
        let failed = deliverer(crate::telemetry::alerts::channel::lookup_from(
            move |_: &str| Some(url.clone()),
        ))
        .deliver(&channel, &sample_alert(), &|| None)
        .unwrap_err();
        assert_eq!(failed.attempts, 3);
        assert!(!failed.error.to_string().contains("secret-path-77"));
        assert!(matches!(failed.error, DeliveryError::Transport { .. }));
    }

    #[test]
    fn backoff_doubles_within_its_jitter_and_statuses_retry_as_documented() {
        let deliverer = Deliverer::new(
            RetryPolicy::default(),
            crate::telemetry::alerts::channel::lookup_from(|_: &str| None),
        );
        for attempts in 1..=4u32 {
            let full = Duration::from_millis(250) * (1 << (attempts - 1));
            let wait = deliverer.backoff(attempts);
            assert!(wait >= full / 2 && wait <= full, "{attempts}: {wait:?}");
        }
        assert!(retryable(429) && retryable(503) && retryable(408));
        assert!(!retryable(400) && !retryable(404) && !retryable(403));
    }
}
