//! A streamed attempt that broke after text reached the caller: the breaker, the rate limiter
//! and the attempt's record settle it, then the call ends as `stream_incomplete` (or
//! `cancelled`), or restarts on the next model when the stream settings allow it.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::attempts::{BrokenStats, Call, Ended, ModelResult};
use crate::client::breaker::{Admission, BreakerFailure};
use crate::client::limits;
use crate::client::outcome::{AttemptOutcome, counted};
use crate::client::policy::breaker_failure;
use crate::client::runtime::ProviderRuntime;
use crate::client::types::{AttemptError, FailureKind};
use crate::config::ModelSpec;

/// The facts of an attempt that a broken stream's bookkeeping needs.
pub(super) struct Attempted<'t> {
    pub(super) prompt_tokens: u64,
    pub(super) started_at: DateTime<Utc>,
    pub(super) latency: Duration,
    pub(super) waited: Duration,
    pub(super) tokens: u64,
    pub(super) taken: &'t limits::Taken,
    pub(super) finished: Instant,
}

impl Call<'_> {
    /// A stream that broke after its first token: the breaker counts it (even for a kind the
    /// policy would not count, such as a body error the caller caused: a stream that started
    /// then broke is the provider's fault), unless the caller cancelled it; the rate limiter
    /// settles the estimated tokens; the call ends, or restarts on the next model.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn broken<'m>(
        &mut self,
        provider: &ProviderRuntime,
        model: &'m ModelSpec,
        admission: Admission,
        attempted: Attempted<'_>,
        error: AttemptError,
        stats: BrokenStats,
        partial: String,
    ) -> ModelResult<'m> {
        let BrokenStats {
            attempt: stats,
            call: call_stats,
        } = stats;
        let breaker = provider.breaker(&model.name);
        let cancelled = error.kind == FailureKind::Cancelled;
        if cancelled {
            breaker.release(&admission);
        } else {
            let failure = breaker_failure(&error).unwrap_or(BreakerFailure::Ordinary);
            let transition = breaker.record_failure(attempted.finished, &admission, failure);
            self.emit(transition);
        }
        let used = attempted.prompt_tokens + (partial.len() as u64).div_ceil(4);
        let finished_ms = self.start.utc_at(attempted.finished).timestamp_millis();
        limits::settle(
            provider,
            &model.name,
            attempted.finished,
            finished_ms,
            attempted.tokens,
            used.min(attempted.tokens),
            attempted.taken,
        );
        let mut attempt = self.attempt(
            provider,
            model,
            Some(&error),
            attempted.latency,
            attempted.waited,
        );
        attempt.stream = Some(stats);
        if !cancelled {
            attempt.outcome = AttemptOutcome::StreamIncomplete;
        }
        self.ended(attempted.started_at, attempt);
        let summary = if cancelled {
            format!(
                "stream of {}/{} cancelled by the caller after {}",
                provider.name,
                model.name,
                counted(stats.chunks as usize, "chunk")
            )
        } else {
            // Stream errors usually name the chunk count already ("... (after 3 chunks)"):
            // say it once.
            let chunks = counted(stats.chunks as usize, "chunk");
            if error.message.contains(&format!("after {chunks}")) {
                format!(
                    "stream of {}/{} incomplete: {error}",
                    provider.name, model.name
                )
            } else {
                format!(
                    "stream of {}/{} incomplete after {chunks}: {error}",
                    provider.name, model.name
                )
            }
        };
        // The last model has nowhere to restart: its break is the call's ending, with its text.
        if !cancelled
            && self.has_next_model
            && self.perform.restart(&provider.name, &model.name, &summary)
        {
            self.voided.push((model.clone(), partial));
            return ModelResult::Next;
        }
        ModelResult::Ended(Ended::Interrupted {
            kind: if cancelled {
                crate::ErrorKind::Cancelled
            } else {
                crate::ErrorKind::StreamIncomplete
            },
            summary,
            partial,
            model,
            stream: call_stats,
        })
    }
}
