//! Alert delivery metrics: `prompt_config_alert_deliveries_total{channel, outcome}` (outcome
//! `sent` or `failed`, after the retries) and the records the alerts' queue dropped because it
//! was full. Channel labels are the names in `alerts.json`, never a URL or key.

use std::collections::BTreeMap;
use std::fmt::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// `prompt_config_alert_deliveries_total{channel,outcome}`.
pub(super) const DELIVERIES: &str = "prompt_config_alert_deliveries_total";
/// `prompt_config_alert_records_dropped_total`.
pub(super) const DROPPED: &str = "prompt_config_alert_records_dropped_total";

/// Deliveries by channel, then outcome.
#[derive(Debug, Default)]
pub(super) struct AlertCounters {
    deliveries: Mutex<BTreeMap<String, BTreeMap<&'static str, u64>>>,
    /// Telemetry records the alerts' queue dropped because it was full.
    dropped: AtomicU64,
}

impl AlertCounters {
    pub(super) fn record(&self, channel: &str, outcome: &'static str) {
        let mut series = self.deliveries.lock();
        let outcomes = match series.get_mut(channel) {
            Some(outcomes) => outcomes,
            None => series.entry(channel.to_string()).or_default(),
        };
        *outcomes.entry(outcome).or_default() += 1;
    }

    /// The alerts queue's running total of dropped records (never lowered).
    pub(super) fn set_dropped(&self, total: u64) {
        self.dropped.fetch_max(total, Ordering::Relaxed);
    }

    pub(super) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(super) fn snapshot(&self) -> Vec<AlertDeliverySnapshot> {
        let series = self.deliveries.lock();
        series
            .iter()
            .flat_map(|(channel, outcomes)| {
                outcomes
                    .iter()
                    .map(|(outcome, count)| AlertDeliverySnapshot {
                        channel: channel.clone(),
                        outcome: (*outcome).to_string(),
                        deliveries: *count,
                    })
            })
            .collect()
    }
}

/// The families in Prometheus text, each only once something was counted, so engines without
/// alerts expose nothing new.
pub(super) fn render(
    series: &[AlertDeliverySnapshot],
    dropped: u64,
    out: &mut impl Write,
) -> fmt::Result {
    if dropped > 0 {
        writeln!(
            out,
            "# HELP {DROPPED} Telemetry records the alert rules never saw: their queue was \
             full.\n# TYPE {DROPPED} counter\n{DROPPED} {dropped}"
        )?;
    }
    if series.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "# HELP {DELIVERIES} Alerts delivered to a channel (outcome sent) or given up on after \
         the retries (outcome failed).\n# TYPE {DELIVERIES} counter"
    )?;
    for entry in series {
        let channel = entry
            .channel
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        writeln!(
            out,
            "{DELIVERIES}{{channel=\"{channel}\",outcome=\"{}\"}} {}",
            entry.outcome, entry.deliveries
        )?;
    }
    Ok(())
}

/// Deliveries of one channel with one outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertDeliverySnapshot {
    /// The channel's name in `alerts.json`.
    pub channel: String,
    /// `sent` or `failed`.
    pub outcome: String,
    /// How many alerts.
    pub deliveries: u64,
}
