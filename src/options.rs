//! Engine options: where the configuration lives, and what drives the client (mock mode, the
//! clock, the random source, the event sink), injectable so tests are deterministic.

use std::path::PathBuf;
use std::sync::Arc;

use crate::client::{Clock, EventSink, NullSink, Random, SeededRandom, SystemClock};
use crate::telemetry::writer::WriterOptions;

/// Where the engine reads its configuration, and what drives its client.
#[derive(Clone)]
pub struct EngineOptions {
    /// The directory holding `providers.json` and `features/`.
    pub config_dir: PathBuf,
    /// The directory holding `<feature>/<version>/` template folders.
    pub prompts_dir: PathBuf,
    /// Route every provider to an offline mock (no keys, no network).
    pub mock: bool,
    /// Time for deadlines, breakers, rate limits and budgets.
    pub clock: Arc<dyn Clock>,
    /// Randomness for backoff jitter, request ids and mock faults.
    pub random: Arc<dyn Random>,
    /// Where breaker transitions and budget alerts go.
    pub event_sink: Arc<dyn EventSink>,
    /// The telemetry log and its writer settings; no log when `None`.
    pub telemetry: Option<WriterOptions>,
}

impl EngineOptions {
    /// Options reading `config_dir` and `prompts_dir`, with real time and no event sink.
    pub fn new(config_dir: impl Into<PathBuf>, prompts_dir: impl Into<PathBuf>) -> Self {
        EngineOptions {
            config_dir: config_dir.into(),
            prompts_dir: prompts_dir.into(),
            mock: false,
            clock: Arc::new(SystemClock),
            random: Arc::new(SeededRandom::from_entropy()),
            event_sink: Arc::new(NullSink),
            telemetry: None,
        }
    }

    /// Writes telemetry to `path` (JSON Lines) with the writer's default settings.
    pub fn with_telemetry(mut self, path: impl Into<PathBuf>) -> Self {
        self.telemetry = Some(WriterOptions::new(path.into()));
        self
    }

    /// Routes every provider to the offline mock.
    pub fn with_mock(mut self, mock: bool) -> Self {
        self.mock = mock;
        self
    }

    /// Uses `clock` instead of real time.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses `random` (a seeded source makes jitter reproducible).
    pub fn with_random(mut self, random: Arc<dyn Random>) -> Self {
        self.random = random;
        self
    }

    /// Sends client events to `sink`.
    pub fn with_event_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.event_sink = sink;
        self
    }
}

impl Default for EngineOptions {
    /// `./config` and `./prompts`.
    fn default() -> Self {
        EngineOptions::new("config", "prompts")
    }
}

impl std::fmt::Debug for EngineOptions {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EngineOptions")
            .field("config_dir", &self.config_dir)
            .field("prompts_dir", &self.prompts_dir)
            .field("mock", &self.mock)
            .field(
                "telemetry",
                &self.telemetry.as_ref().map(|writer| &writer.path),
            )
            .finish_non_exhaustive()
    }
}
