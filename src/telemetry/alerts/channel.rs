//! One configured alert channel and the HTTP request an alert becomes on it. The channel holds
//! only the *names* of the environment variables with its secrets (webhook URL, routing key,
//! signing secret); they are read at each delivery, so a rotated secret is picked up by the next
//! alert (no reopen needed) and an unset variable fails that delivery, naming the variable.
//! Nothing here ever formats a secret: the prepared request hides its URL and signature from
//! `Debug`, and every error names a variable or a status, never a value.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::Alert;
use super::config::ChannelConfig;
use super::{pagerduty, slack, webhook};

/// Reads an environment variable by name: its value, or the error naming it (unset or empty:
/// [`DeliveryError::MissingSecret`]; not UTF-8: [`DeliveryError::NotUtf8`]). The sink and the
/// CLI use the process environment ([`process_env`]); tests pass their own ([`lookup_from`]).
pub(crate) type EnvLookup = Arc<dyn Fn(&str) -> Result<String, DeliveryError> + Send + Sync>;

/// The process environment, an empty value counting as unset (an exported but blank secret
/// would otherwise be sent as an empty routing key or URL).
pub(crate) fn process_env() -> EnvLookup {
    Arc::new(|name: &str| match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        Err(std::env::VarError::NotUnicode(_)) => Err(DeliveryError::NotUtf8 {
            variable: name.to_string(),
        }),
        _ => Err(DeliveryError::MissingSecret {
            variable: name.to_string(),
        }),
    })
}

/// A lookup from a map-like function (`None`: unset), for tests and fixed environments.
#[cfg(test)]
pub(crate) fn lookup_from(
    values: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
) -> EnvLookup {
    Arc::new(move |name: &str| {
        values(name).ok_or_else(|| DeliveryError::MissingSecret {
            variable: name.to_string(),
        })
    })
}

/// A named channel of `alerts.json`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Channel {
    /// Its name in `alerts.json` (`ops-slack`).
    pub name: String,
    /// Its type and the names of its variables; holds no secret.
    pub config: ChannelConfig,
}

/// An HTTP POST ready to send: URL, headers and body. The URL (a Slack webhook URL is itself
/// the secret) and the signature never appear in `Debug`.
pub(crate) struct PreparedRequest {
    /// Where to POST; secret.
    pub url: String,
    /// Header names and values (`content-type`, the webhook's timestamp and signature).
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: String,
}

impl fmt::Debug for PreparedRequest {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| *name).collect();
        formatter
            .debug_struct("PreparedRequest")
            .field("url", &"<secret>")
            .field("headers", &names)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// Why an alert did not reach a channel. Holds no secret: variables by name, statuses, and
/// transport failures in our own words (ureq's texts can quote the URL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The variable holding the channel's URL, routing key or secret is unset or empty.
    #[error("environment variable {variable} is not set")]
    MissingSecret {
        /// The variable's name.
        variable: String,
    },
    /// The receiver answered with a status that is not success (after the retries, when the
    /// status is retryable).
    #[error("the receiver answered HTTP {status}")]
    Status {
        /// The HTTP status.
        status: u16,
    },
    /// The variable is set, but its value is not UTF-8 text (not quoted: it is the secret).
    #[error("environment variable {variable} is not UTF-8 text")]
    NotUtf8 {
        /// The variable's name.
        variable: String,
    },
    /// The variable holds something that is not an `http://` or `https://` URL (the value is
    /// not quoted: it is the secret).
    #[error("environment variable {variable} does not hold an http:// or https:// URL")]
    NotAUrl {
        /// The variable's name.
        variable: String,
    },
    /// A rule names a channel `alerts.json` does not define.
    #[error("no channel named {channel} in alerts.json")]
    UnknownChannel {
        /// The name the rule gave.
        channel: String,
    },
    /// The alert was never sent: the engine closed before the channel's turn came, or the
    /// channel's queue was full (a receiver that stays slow while alerts keep firing).
    #[error("not sent: {reason}")]
    NotSent {
        /// `the engine's close or flush deadline passed first`, `the channel's queue is full`.
        reason: &'static str,
    },
    /// The receiver could not be reached or its answer could not be read.
    #[error("{reason}")]
    Transport {
        /// What happened: `could not connect`, `timed out`, `host not found`, ...
        reason: String,
    },
}

impl DeliveryError {
    /// The HTTP status, when the receiver answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            DeliveryError::Status { status } => Some(*status),
            _ => None,
        }
    }
}

impl Channel {
    /// `slack`, `pagerduty` or `webhook`: the channel's type, as in `alerts.json`.
    pub fn kind(&self) -> &'static str {
        match &self.config {
            ChannelConfig::Slack { .. } => "slack",
            ChannelConfig::Pagerduty { .. } => "pagerduty",
            ChannelConfig::Webhook { .. } => "webhook",
        }
    }

    /// Whether `status` means the receiver took the alert: 202 for PagerDuty's Events API v2
    /// (it answers 202 Accepted), any 2xx for Slack and webhooks.
    pub fn accepts(&self, status: u16) -> bool {
        match &self.config {
            ChannelConfig::Pagerduty { .. } => status == 202 || status == 200,
            _ => (200..300).contains(&status),
        }
    }

    /// The request `alert` becomes on this channel, reading its secrets from `env` now; `now`
    /// stamps the webhook's signature.
    pub fn prepare(
        &self,
        alert: &Alert,
        env: &dyn Fn(&str) -> Result<String, DeliveryError>,
        now: DateTime<Utc>,
    ) -> Result<PreparedRequest, DeliveryError> {
        let secret = env;
        let url = |variable: &str| {
            let value = secret(variable)?;
            if is_http_url(&value) {
                Ok(value)
            } else {
                Err(DeliveryError::NotAUrl {
                    variable: variable.to_string(),
                })
            }
        };
        let json = vec![("content-type", "application/json".to_string())];
        match &self.config {
            ChannelConfig::Slack { webhook_url_env } => Ok(PreparedRequest {
                url: url(webhook_url_env)?,
                headers: json,
                body: slack::payload(alert).to_string(),
            }),
            ChannelConfig::Pagerduty {
                routing_key_env,
                url,
            } => {
                let routing_key = secret(routing_key_env)?;
                Ok(PreparedRequest {
                    url: url
                        .clone()
                        .unwrap_or_else(|| pagerduty::DEFAULT_URL.to_string()),
                    headers: json,
                    body: pagerduty::payload(alert, &routing_key, &pagerduty::source()).to_string(),
                })
            }
            ChannelConfig::Webhook {
                url_env,
                secret_env,
            } => {
                let url = url(url_env)?;
                let signing_secret = secret(secret_env)?;
                let body = webhook::body(alert);
                let mut headers = json;
                headers.extend(webhook::signature_headers(
                    signing_secret.as_bytes(),
                    now.timestamp(),
                    &body,
                ));
                Ok(PreparedRequest { url, headers, body })
            }
        }
    }
}

/// An absolute `http://` or `https://` URL with a host, as `http::Uri` parses it: checked
/// before sending, so a mistyped secret is named by its variable rather than reported as a
/// transport failure.
fn is_http_url(value: &str) -> bool {
    value.parse::<ureq::http::Uri>().is_ok_and(|uri| {
        matches!(uri.scheme_str(), Some("http" | "https"))
            && uri.host().is_some_and(|host| !host.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::alerts::tests::sample_alert;

    const SECRET: &str = "https://hooks.example/T000/SECRET-4f9a";

    fn env_with_secret(name: &str) -> Result<String, DeliveryError> {
        if name == "UNSET" {
            Err(DeliveryError::MissingSecret {
                variable: name.to_string(),
            })
        } else {
            Ok(SECRET.to_string())
        }
    }

    fn webhook() -> Channel {
        Channel {
            name: "ops".into(),
            config: ChannelConfig::Webhook {
                url_env: "HOOK_URL".into(),
                secret_env: "HOOK_SECRET".into(),
            },
        }
    }

    #[test]
    fn an_unset_variable_is_named_in_the_error() {
        let channel = Channel {
            name: "ops".into(),
            config: ChannelConfig::Slack {
                webhook_url_env: "UNSET".into(),
            },
        };
        let error = channel
            .prepare(&sample_alert(), &env_with_secret, Utc::now())
            .unwrap_err();
        assert_eq!(error.to_string(), "environment variable UNSET is not set");
    }

    #[test]
    fn a_variable_that_is_not_a_url_is_named_without_its_value() {
        let channel = Channel {
            name: "ops".into(),
            config: ChannelConfig::Slack {
                webhook_url_env: "OPS_URL".into(),
            },
        };
        for value in [
            "hooks.slack.com/T0/SECRET",
            "ftp://x/SECRET",
            "http://",
            " ",
        ] {
            let error = channel
                .prepare(
                    &sample_alert(),
                    &|_: &str| Ok(value.to_string()),
                    Utc::now(),
                )
                .unwrap_err();
            assert_eq!(
                error.to_string(),
                "environment variable OPS_URL does not hold an http:// or https:// URL",
                "{value}"
            );
        }
    }

    #[test]
    fn debug_of_a_prepared_request_hides_the_url_and_the_signature() {
        let prepared = webhook()
            .prepare(&sample_alert(), &env_with_secret, Utc::now())
            .unwrap();
        assert_eq!(prepared.url, SECRET);
        let debug = format!("{prepared:?} {:?}", webhook());
        assert!(!debug.contains("SECRET-4f9a"), "{debug}");
        assert!(!debug.contains("sha256="), "{debug}");
    }

    #[test]
    fn pagerduty_defaults_to_the_events_v2_endpoint() {
        let channel = Channel {
            name: "pd".into(),
            config: ChannelConfig::Pagerduty {
                routing_key_env: "KEY".into(),
                url: None,
            },
        };
        let prepared = channel
            .prepare(&sample_alert(), &env_with_secret, Utc::now())
            .unwrap();
        assert_eq!(prepared.url, "https://events.pagerduty.com/v2/enqueue");
        assert!(channel.accepts(202));
        assert!(!channel.accepts(400));
    }
}
