//! Records to alerts. PLACEHOLDER with the agreed signatures: helper H3 replaces the bodies;
//! helper H4's delivery thread calls them.

// Placeholder until its helper lands: nothing calls it yet.
#![allow(dead_code)]

use chrono::{DateTime, Utc};

use super::Alert;
use super::config::AlertsConfig;
use super::dedup::Dedup;
use crate::telemetry::event::TelemetryRecord;

/// The rules of one `alerts.json` and their windows; lives on the alerts thread.
#[derive(Debug)]
pub(crate) struct AlertRules {
    dedup: Dedup,
}

impl AlertRules {
    /// The rules of `config`, firing each alert once per rule, scope and period as `dedup`
    /// decides (this process, or the fleet on Redis).
    pub fn new(config: &AlertsConfig, dedup: Dedup) -> AlertRules {
        let _ = config;
        AlertRules { dedup }
    }

    /// The alerts `record` fires or resolves, already claimed (each returned once).
    pub fn observe(&mut self, record: &TelemetryRecord) -> Vec<Alert> {
        let _ = (record, &self.dedup);
        Vec::new()
    }

    /// The alerts that time passing fires or resolves (a window emptied), at `now`.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<Alert> {
        let _ = now;
        Vec::new()
    }
}
