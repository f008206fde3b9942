//! Alert delivery outcomes from the alerts thread: one `alert.sent` or `alert.failed` line and
//! one `prompt_config_alert_deliveries_total` count per alert and channel.

use chrono::{DateTime, Utc};

use super::Telemetry;
use crate::telemetry::alerts::Alert;
use crate::telemetry::alerts::delivery::{Delivered, Failed};
use crate::telemetry::event::{AlertDeliveryFields, EventBody};

impl Telemetry {
    /// What became of `alert` on the channel `channel` (of type `channel_type`), at `now`.
    pub(crate) fn alert_delivered(
        &self,
        now: DateTime<Utc>,
        channel: &str,
        channel_type: &'static str,
        alert: &Alert,
        outcome: &Result<Delivered, Failed>,
    ) {
        let (event, outcome_label, attempts, status, error) = match outcome {
            Ok(delivered) => (
                "alert.sent",
                "sent",
                delivered.attempts,
                Some(delivered.status),
                None,
            ),
            Err(failed) => (
                "alert.failed",
                "failed",
                failed.attempts,
                failed.error.status(),
                Some(failed.error.to_string()),
            ),
        };
        self.metrics.record_alert_delivery(channel, outcome_label);
        let fields = AlertDeliveryFields {
            channel: channel.to_string(),
            channel_type,
            rule: alert.rule.clone(),
            rule_type: alert.rule_type,
            severity: alert.severity.as_str(),
            action: alert.action.as_str(),
            scope: alert.scope.clone(),
            dedup_key: alert.dedup_key.clone(),
            attempts,
            status,
            error,
        };
        self.write(now, event, "", EventBody::AlertDelivery(Box::new(fields)));
    }
}
