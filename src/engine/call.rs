//! The call paths of [`Engine`]: `complete()` and `stream()` (with their cancellable forms)
//! share one walk: resolve, answer from the response cache (replayed as a stream when
//! streaming), else call the model chain, store a cacheable answer, and write the telemetry.

use std::time::Duration;

use super::Engine;
use crate::cache::{CacheOutcome, CachedAnswer, Lookup};
use crate::client::{
    CallRequest, CancelToken, Completion, Failure, StreamControl, StreamEvent, StreamSettings,
    complete, new_request_id, stream,
};
use crate::resolve::{Context, TraceContext};

impl Engine {
    /// Resolves `feature`, then answers from the response cache when the version caches and
    /// holds an answer for these inputs (no provider call, no budget charged), else calls its
    /// model chain with retries, failover, breakers, rate limits and budgets, inside the
    /// configured deadline, and stores a cacheable answer.
    pub fn complete(&self, feature: &str, context: &Context) -> crate::Result<Completion> {
        self.call_feature(feature, context, None)
    }

    /// `complete()` and `stream()` alike: the cache, the call, the store and the telemetry;
    /// `on_event` present makes the call streamed.
    fn call_feature(
        &self,
        feature: &str,
        context: &Context,
        on_event: Option<&mut dyn FnMut(StreamEvent<'_>) -> StreamControl>,
    ) -> crate::Result<Completion> {
        let started = self.options.clock.now();
        let state = self.state();
        let (compiled, mut resolution) = match self.resolve_in(&state.snapshot, feature, context) {
            Ok(resolved) => resolved,
            Err(error) => {
                self.refused(&state.snapshot, feature, context, &error, started);
                return Err(error);
            }
        };
        let lookup = compiled
            .cache
            .get(&resolution.version)
            .and_then(|settings| Lookup::plan(settings, &resolution, context));
        if let Some(lookup) = &lookup
            && let Some(answer) = self.cache.get(lookup)
        {
            let elapsed = self.options.clock.now().saturating_duration_since(started);
            let completion = answer.into_completion(
                resolution,
                lookup.partition.clone(),
                elapsed.as_secs_f64() * 1000.0,
            );
            // A structured version's hit carries its data parsed again; a stored text that no
            // longer validates (a draft's schema was edited) is a miss, never a data-less answer.
            let stale = completion.resolution.output.is_some()
                && completion.data.is_none()
                && completion.tool_calls.is_empty();
            if stale {
                resolution = completion.resolution;
            } else {
                return self.cache_hit(completion, lookup, started, context, compiled, on_event);
            }
        }
        let trace = self.call_trace(context, &resolution.request_id);
        let request = CallRequest {
            feature: &resolution.feature,
            version: &resolution.version,
            messages: &resolution.messages,
            model: &resolution.model,
            fallbacks: &resolution.fallbacks,
            request_id: &resolution.request_id,
            deadline: Duration::from_millis(state.client.settings.deadline_ms),
            output: resolution.output.as_ref(),
            tools: &resolution.tools,
            tool_choice: &resolution.tool_choice,
            trace: trace.as_ref(),
        };
        let answer = match on_event {
            None => complete(
                &state.client,
                &state.snapshot.providers,
                &self.client_options,
                &request,
            ),
            Some(on_event) => stream(
                &state.client,
                &state.snapshot.providers,
                &self.client_options,
                &request,
                StreamSettings::of(&state.client.settings.stream),
                on_event,
            ),
        };
        match answer {
            Ok(answer) => {
                let completion = answer.with_resolution(resolution);
                if lookup.is_none() && compiled.cache.contains_key(&completion.resolution.version) {
                    // The version caches, but this chain's temperature keeps it out.
                    self.cache.note_not_cacheable();
                }
                let outcome = lookup.map(|lookup| {
                    // Refusals, truncated answers and estimated costs are never stored.
                    match CachedAnswer::of(&completion) {
                        Ok(stored) => {
                            self.cache.put(&lookup, stored);
                        }
                        Err(_) => self.cache.note_not_cacheable(),
                    }
                    crate::cache::miss(lookup.partition)
                });
                self.telemetry.completed(
                    || self.options.clock.utc_now(),
                    &completion,
                    context,
                    &compiled.telemetry,
                    outcome.as_ref(),
                );
                Ok(completion)
            }
            Err(Failure { error, latency }) => {
                self.telemetry.failed(
                    || self.options.clock.utc_now(),
                    &resolution,
                    &error,
                    latency,
                    context,
                    &compiled.telemetry,
                );
                Err(error.into())
            }
        }
    }

    /// Writes the telemetry of a call refused before any model call, under the route the
    /// subject took. An unknown feature or pinned version writes nothing: the name is the
    /// caller's, and filing it would let any string become a metrics label.
    fn refused(
        &self,
        snapshot: &crate::snapshot::Snapshot,
        feature: &str,
        context: &Context,
        error: &crate::Error,
        started: std::time::Instant,
    ) {
        let Ok(compiled) = snapshot.feature(feature) else {
            return;
        };
        let Some(mut resolution) = compiled.routed_without_rendering(context, &snapshot.revision)
        else {
            return;
        };
        resolution.request_id = new_request_id(&*self.options.random);
        let latency = self.options.clock.now().saturating_duration_since(started);
        self.telemetry.refused(
            || self.options.clock.utc_now(),
            &resolution,
            error.kind(),
            latency,
            context,
            &compiled.telemetry,
        );
    }

    /// The trace a call's attempts belong to: the caller's (its context's `traceparent`), or,
    /// when spans are exported over OTLP, a new one rooted at the request (the trace the
    /// exporter gives the request's spans), so a provider's `traceparent` always names a span
    /// we export. `None` without either: no `traceparent` is sent.
    fn call_trace(&self, context: &Context, request_id: &str) -> Option<TraceContext> {
        match context.trace_context() {
            Some(trace) => Some(*trace),
            None if self.options.otlp.is_some() => Some(TraceContext::root_for(request_id)),
            None => None,
        }
    }

    /// Serves a cache hit: replayed as a stream when streaming (no provider call), with its
    /// telemetry.
    fn cache_hit(
        &self,
        mut completion: Completion,
        lookup: &Lookup,
        started: std::time::Instant,
        context: &Context,
        compiled: &crate::resolve::CompiledFeature,
        on_event: Option<&mut dyn FnMut(StreamEvent<'_>) -> StreamControl>,
    ) -> crate::Result<Completion> {
        if let Some(on_event) = on_event {
            // A cached answer is replayed as a stream: no provider call.
            completion = crate::cache::replay(completion, started, &*self.options.clock, on_event)?;
        }
        let outcome = CacheOutcome {
            hit: true,
            saved_usd: completion.cache.as_ref().map_or(0.0, |hit| hit.saved_usd),
            partition: lookup.partition.clone(),
        };
        self.telemetry.completed(
            || self.options.clock.utc_now(),
            &completion,
            context,
            &compiled.telemetry,
            Some(&outcome),
        );
        Ok(completion)
    }

    /// [`complete`](Engine::complete) that `cancel` can stop from another thread: the
    /// connection being read is shut down at once, a backoff sleep wakes, and the call ends
    /// with [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled).
    pub fn complete_with(
        &self,
        feature: &str,
        context: &Context,
        cancel: &CancelToken,
    ) -> crate::Result<Completion> {
        cancel.enter(|| self.complete(feature, context))
    }

    /// Streams the answer of `feature`: resolves and renders as `complete()` does, calls the
    /// model chain with `stream: true`, and hands each text delta to `on_event` as it arrives;
    /// returns the full [`Completion`] (with [`StreamStats`](crate::client::StreamStats)) once
    /// the stream ended with its terminal event.
    ///
    /// Before the first token every failure follows `complete()`'s policy (retry, back off,
    /// fail over, breakers, rate limits, budgets, deadline). After it, a cut, a stall, an
    /// `error` event or a missing terminal event is never a success: the call fails with
    /// [`ErrorKind::StreamIncomplete`](crate::ErrorKind::StreamIncomplete) carrying the text
    /// received so far. `on_event` returning [`StreamControl::Stop`] closes the connection and
    /// ends the call as [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled).
    pub fn stream(
        &self,
        feature: &str,
        context: &Context,
        on_event: impl FnMut(StreamEvent<'_>) -> StreamControl,
    ) -> crate::Result<Completion> {
        self.stream_with(feature, context, &CancelToken::new(), on_event)
    }

    /// [`stream`](Engine::stream) that `cancel` can also stop from another thread.
    pub fn stream_with(
        &self,
        feature: &str,
        context: &Context,
        cancel: &CancelToken,
        mut on_event: impl FnMut(StreamEvent<'_>) -> StreamControl,
    ) -> crate::Result<Completion> {
        cancel.enter(|| self.call_feature(feature, context, Some(&mut on_event)))
    }
}
