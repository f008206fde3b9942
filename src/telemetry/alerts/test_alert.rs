//! `prompt-config alerts test`: a test alert (rule type `test`) sent synchronously to each
//! configured channel, or one, with the same payloads, secrets and retries as real alerts, so a
//! misconfigured channel shows up before the incident it was meant for.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;

use super::channel::{Channel, process_env};
use super::config::{ALERTS_FILE, AlertsConfig};
use super::delivery::{Deliverer, RetryPolicy};
use super::sink::channels;
use super::{Alert, AlertAction, Severity};
use crate::ConfigError;
use crate::config::Problem;

/// The channels of one `alerts.json`, ready to receive a test alert.
pub struct TestAlerts {
    channels: BTreeMap<String, Channel>,
    deliverer: Deliverer,
}

impl std::fmt::Debug for TestAlerts {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TestAlerts")
            .field("channels", &self.channels.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// What became of the test alert on one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestDelivery {
    /// The channel's name in `alerts.json`.
    pub channel: String,
    /// `slack`, `pagerduty` or `webhook`.
    pub channel_type: &'static str,
    /// True when the receiver took it.
    pub ok: bool,
    /// HTTP requests made (0 when a secret variable was unset).
    pub attempts: u32,
    /// The receiver's last HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why it failed: a status, a transport failure, or the unset variable's name; never a
    /// secret.
    pub error: Option<String>,
}

impl TestAlerts {
    /// The channels of `config_dir/alerts.json`, checked as `Engine::open` checks it
    /// (`config_invalid` listing every problem with file and pointer); a missing file is
    /// `config_invalid` naming it.
    pub fn load(config_dir: &Path) -> Result<TestAlerts, ConfigError> {
        let config: AlertsConfig = AlertsConfig::load(config_dir)?.ok_or_else(|| {
            let file = config_dir.join(ALERTS_FILE).display().to_string();
            ConfigError::Invalid {
                problems: vec![Problem::new(
                    &file,
                    "",
                    "no such file: alerts are configured there (channels and rules; see README \
                     \"Alerts\")",
                )],
            }
        })?;
        // Fewer retries than the alerts thread: someone is waiting at a terminal.
        let policy = RetryPolicy {
            attempts: 3,
            ..RetryPolicy::default()
        };
        Ok(TestAlerts {
            channels: channels(&config),
            deliverer: Deliverer::new(policy, process_env()),
        })
    }

    /// The channel names, sorted.
    pub fn channel_names(&self) -> Vec<&str> {
        self.channels.keys().map(String::as_str).collect()
    }

    /// Sends the test alert to the channel `name`; `None` when there is no such channel.
    pub fn send(&self, name: &str) -> Option<TestDelivery> {
        let channel = self.channels.get(name)?;
        let alert = test_alert(name);
        let outcome = self.deliverer.deliver(channel, &alert, &|| None);
        Some(match outcome {
            Ok(delivered) => TestDelivery {
                channel: name.to_string(),
                channel_type: channel.kind(),
                ok: true,
                attempts: delivered.attempts,
                status: Some(delivered.status),
                error: None,
            },
            Err(failed) => TestDelivery {
                channel: name.to_string(),
                channel_type: channel.kind(),
                ok: false,
                attempts: failed.attempts,
                status: failed.error.status(),
                error: Some(failed.error.to_string()),
            },
        })
    }
}

/// The test alert for `channel`: severity `info`, its own dedup key per send (a PagerDuty
/// test incident never merges with a real one, nor with another test: the key carries the
/// millisecond and a random suffix, so two sends in the same second, from two terminals or
/// two hosts, stay two incidents).
fn test_alert(channel: &str) -> Alert {
    let now = Utc::now();
    let stamp = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    let nonce = {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_i64(now.timestamp_nanos_opt().unwrap_or_default());
        hasher.write_u32(std::process::id());
        hasher.finish() as u32
    };
    Alert {
        rule: "test".to_string(),
        rule_type: "test",
        severity: Severity::Info,
        action: AlertAction::Trigger,
        scope: channel.to_string(),
        period: stamp.clone(),
        dedup_key: format!("prompt_config/test/{channel}/{stamp}/{nonce:08x}"),
        summary: format!(
            "Test alert from prompt-config alerts test: channel {channel} is configured correctly"
        ),
        figures: BTreeMap::from([(
            "sent_by".to_string(),
            Value::from("prompt-config alerts test"),
        )]),
        channels: vec![channel.to_string()],
        fired_at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::test_alert;

    #[test]
    fn two_test_alerts_in_the_same_millisecond_have_distinct_dedup_keys() {
        let first = test_alert("oncall");
        let second = test_alert("oncall");
        assert_ne!(first.dedup_key, second.dedup_key);
        assert!(first.dedup_key.starts_with("prompt_config/test/oncall/"));
    }
}
