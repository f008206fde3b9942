//! One budget ledger and its arithmetic: amounts in whole nanodollars, the periods (UTC day, UTC
//! month) and their labels, the key naming a scope's ledger in a period, the threshold marks of
//! alerts already due, and opening the ledger of a new period while dropping finished ones.

use std::collections::HashMap;

use chrono::NaiveDate;

/// Alert thresholds in percent of a period's limit, in the order they fire.
pub(super) const THRESHOLDS: [u32; 4] = [80, 90, 95, 100];

/// The bit of the 100% threshold in a ledger's mask of sent alerts.
pub(super) const FULL_BIT: u8 = 1 << 3;

/// Whole nanodollars rather than floating dollars, so reserving and releasing cancel exactly and
/// totals of many small calls do not drift.
pub(super) fn to_nanodollars(usd: f64) -> i64 {
    // `max` turns NaN into zero and the cast saturates, so a junk cost cannot poison a ledger.
    (usd.max(0.0) * 1e9).round() as i64
}

pub(super) fn to_usd(nanodollars: i64) -> f64 {
    nanodollars as f64 / 1e9
}

pub(super) fn thresholds_in(mask: u8) -> impl Iterator<Item = u32> {
    let bits = (0..THRESHOLDS.len()).map(|index| 1_u8 << index);
    THRESHOLDS
        .into_iter()
        .zip(bits)
        .filter(move |(_, bit)| mask & bit != 0)
        .map(|(threshold, _)| threshold)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Period {
    Day,
    Month,
}

impl Period {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
        }
    }

    pub(super) fn label(self, start: NaiveDate) -> String {
        let format = match self {
            Period::Day => "%Y-%m-%d",
            Period::Month => "%Y-%m",
        };
        start.format(format).to_string()
    }
}

/// One ledger: a scope (index into the book's scopes) in the period beginning on `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct LedgerKey {
    pub(super) scope: usize,
    pub(super) period: Period,
    pub(super) start: NaiveDate,
}

#[derive(Debug)]
pub(super) struct Ledger {
    pub(super) limit: i64,
    pub(super) settled: i64,
    pub(super) reserved: i64,
    pub(super) alerts_sent: u8,
}

impl Ledger {
    pub(super) fn committed(&self) -> i64 {
        self.settled.saturating_add(self.reserved)
    }

    /// Marks the thresholds the committed spend has reached and not yet alerted; returns them.
    pub(super) fn mark_reached(&mut self) -> u8 {
        let committed = i128::from(self.committed());
        let mut newly = 0;
        for (index, threshold) in THRESHOLDS.into_iter().enumerate() {
            // Nothing spent never alerts, even against a zero limit; i128 keeps the products exact.
            if committed > 0 && committed * 100 >= i128::from(self.limit) * i128::from(threshold) {
                newly |= 1 << index;
            }
        }
        newly &= !self.alerts_sent;
        self.alerts_sent |= newly;
        newly
    }
}

/// Alerts decided under the lock (ledger, threshold bits, spend) and worded after releasing it.
pub(super) type Fired = Vec<(LedgerKey, u8, i64)>;

pub(super) fn open_ledger(
    ledgers: &mut HashMap<LedgerKey, Ledger>,
    key: LedgerKey,
    limit_usd: f64,
) -> &mut Ledger {
    if !ledgers.contains_key(&key) {
        // A new period began for this scope, so earlier ones can go and memory stays bounded; those
        // still holding a reservation stay, because settling must land where it was reserved.
        ledgers.retain(|held, ledger| {
            ledger.reserved != 0
                || (held.scope, held.period) != (key.scope, key.period)
                || held.start >= key.start
        });
    }
    let limit = to_nanodollars(limit_usd);
    ledgers.entry(key).or_insert(Ledger {
        limit,
        settled: 0,
        reserved: 0,
        alerts_sent: 0,
    })
}
