//! Budget spend survives restarts: on start the engine reads the current month's `llm.request`
//! lines from the telemetry log (and its rotated files) and restores each day's settled spend
//! per scope, so a deploy does not reset a budget. Unparseable lines (a partial last line after
//! a crash) are skipped.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde_json::Value;

/// Settled spend by scope (`overall`, `feature:<name>`) and UTC day, for the month of `now`.
pub fn spend_this_month(
    path: &Path,
    rotated_files: u32,
    now: DateTime<Utc>,
) -> BTreeMap<(String, NaiveDate), f64> {
    let mut spend = BTreeMap::new();
    let files = std::iter::once(path.to_path_buf()).chain(
        (1..=rotated_files).map(|index| PathBuf::from(format!("{}.{index}", path.display()))),
    );
    for file in files {
        let Ok(opened) = std::fs::File::open(&file) else {
            continue;
        };
        for line in BufReader::new(opened).lines() {
            let Ok(line) = line else { break };
            if !line.contains("\"llm.request\"") {
                continue;
            }
            let Ok(record) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            add_request(&record, now, &mut spend);
        }
    }
    spend
}

fn add_request(record: &Value, now: DateTime<Utc>, spend: &mut BTreeMap<(String, NaiveDate), f64>) {
    if record.get("event").and_then(Value::as_str) != Some("llm.request") {
        return;
    }
    let cost = record
        .get("prompt_config.cost_usd")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let Some(timestamp) = record
        .get("timestamp")
        .and_then(Value::as_str)
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|timestamp| timestamp.with_timezone(&Utc))
    else {
        return;
    };
    if cost <= 0.0 || timestamp.year() != now.year() || timestamp.month() != now.month() {
        return;
    }
    let day = timestamp.date_naive();
    *spend.entry(("overall".to_string(), day)).or_insert(0.0) += cost;
    if let Some(feature) = record.get("gen_ai.prompt.name").and_then(Value::as_str) {
        *spend
            .entry((format!("feature:{feature}"), day))
            .or_insert(0.0) += cost;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn sums_this_months_successful_spend_by_scope_and_day_and_skips_the_rest() {
        let directory =
            std::env::temp_dir().join(format!("prompt_config_rebuild_{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("log.jsonl");
        let line = |timestamp: &str, cost: f64| {
            format!(
                r#"{{"event":"llm.request","timestamp":"{timestamp}","gen_ai.prompt.name":"f","prompt_config.cost_usd":{cost}}}"#
            )
        };
        let current = [
            line("2026-11-27T10:00:00.000Z", 1.5),
            line("2026-11-27T11:00:00.000Z", 0.5),
            line("2026-11-02T11:00:00.000Z", 2.0),
            line("2026-10-31T23:59:59.000Z", 9.0),
            r#"{"event":"feedback","timestamp":"2026-11-27T10:00:00.000Z"}"#.to_string(),
            r#"{"event":"llm.request","times"#.to_string(),
        ];
        std::fs::write(&path, current.join("\n")).unwrap();
        std::fs::write(
            directory.join("log.jsonl.1"),
            line("2026-11-26T09:00:00.000Z", 4.0),
        )
        .unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
        let spend = spend_this_month(&path, 2, now);
        let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        assert_eq!(spend.get(&("feature:f".to_string(), day(27))), Some(&2.0));
        assert_eq!(spend.get(&("overall".to_string(), day(2))), Some(&2.0));
        assert_eq!(spend.get(&("overall".to_string(), day(26))), Some(&4.0));
        assert_eq!(spend.len(), 6);
        let _ = std::fs::remove_dir_all(&directory);
    }
}
