//! An evaluation's lines: the eval layer builds the `eval.case` and `eval.run` fields from its
//! report and hands them here, to be queued on the engine's writer like any other event.

use chrono::{DateTime, Utc};

use super::Telemetry;
use crate::telemetry::event::{EvalCaseFields, EvalRunFields, EventBody};

impl Telemetry {
    /// Whether anything takes records: a telemetry file or a sink (OTLP, alerts). Without
    /// one, no record is built.
    pub fn writes_lines(&self) -> bool {
        self.writer.is_some() || !self.sinks.is_empty()
    }

    /// One `eval.case` line per case and version, then one `eval.run` line per version, all
    /// stamped `now` (the end of the run) and outside any request (empty `request_id`).
    pub fn evaluated(
        &self,
        now: DateTime<Utc>,
        cases: Vec<EvalCaseFields>,
        runs: Vec<EvalRunFields>,
    ) {
        for case in cases {
            self.write(now, "eval.case", "", EventBody::EvalCase(Box::new(case)));
        }
        for run in runs {
            self.write(now, "eval.run", "", EventBody::EvalRun(Box::new(run)));
        }
    }
}
