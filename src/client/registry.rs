//! Provider kinds: the `kind` of a `providers.json` entry names a factory that builds its
//! [`Provider`]. The built-in kinds (`openai`, `anthropic`, `openai_compatible`, `mock`) are
//! registered the same way a custom one is, with
//! [`EngineOptions::with_provider_kind`](crate::EngineOptions::with_provider_kind); mock mode
//! builds every provider with the factory registered as `mock`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::clock::{Clock, Random};
use super::endpoint::{AnthropicProvider, OpenAiProvider};
use super::http::HttpTransport;
use super::mock::MockProvider;
use super::table::CompiledProvider;
use super::types::Provider;

/// What a factory gets to build one provider: its name and compiled entry, and the engine's
/// clock, randomness and shared HTTP transport (use them so tests stay deterministic and
/// connections are pooled with every other provider's).
#[non_exhaustive]
pub struct ProviderSetup<'a> {
    /// The provider's name in `providers.json`.
    pub name: &'a str,
    /// Its compiled entry; kind-specific settings are in `spec.spec` (a custom kind's own
    /// settings in `spec.spec.options`).
    pub spec: &'a CompiledProvider,
    /// The engine's clock.
    pub clock: &'a Arc<dyn Clock>,
    /// The engine's random source.
    pub random: &'a Arc<dyn Random>,
    /// The engine's HTTP transport.
    pub transport: &'a Arc<HttpTransport>,
}

/// Builds the provider of one `providers.json` entry. Called when an engine opens and when a
/// reload changed the entry; an unchanged entry keeps the provider it had. Any
/// `Fn(&ProviderSetup<'_>) -> Arc<dyn Provider> + Send + Sync` closure is a factory.
pub trait ProviderFactory: Send + Sync {
    /// The provider for `setup`.
    fn build(&self, setup: &ProviderSetup<'_>) -> Arc<dyn Provider>;
}

impl<F> ProviderFactory for F
where
    F: Fn(&ProviderSetup<'_>) -> Arc<dyn Provider> + Send + Sync,
{
    fn build(&self, setup: &ProviderSetup<'_>) -> Arc<dyn Provider> {
        self(setup)
    }
}

/// The provider kinds an engine can build, by name.
#[derive(Clone)]
pub struct ProviderKinds {
    factories: BTreeMap<String, Arc<dyn ProviderFactory>>,
}

impl ProviderKinds {
    /// The built-in kinds: `openai`, `anthropic`, `openai_compatible` and `mock`.
    pub fn builtin() -> ProviderKinds {
        let mut kinds = ProviderKinds {
            factories: BTreeMap::new(),
        };
        let http = |setup: &ProviderSetup<'_>| -> Arc<dyn Provider> {
            Arc::new(
                OpenAiProvider::new(&setup.spec.spec, Arc::clone(setup.transport))
                    .with_clock(Arc::clone(setup.clock)),
            )
        };
        kinds.register("openai", http);
        kinds.register("openai_compatible", http);
        kinds.register(
            "anthropic",
            |setup: &ProviderSetup<'_>| -> Arc<dyn Provider> {
                Arc::new(
                    AnthropicProvider::new(&setup.spec.spec, Arc::clone(setup.transport))
                        .with_clock(Arc::clone(setup.clock)),
                )
            },
        );
        kinds.register("mock", |setup: &ProviderSetup<'_>| -> Arc<dyn Provider> {
            Arc::new(MockProvider::new(
                setup.name,
                setup.spec.spec.mock.clone(),
                Arc::clone(setup.clock),
                Arc::clone(setup.random),
            ))
        });
        kinds
    }

    /// Registers `factory` under `kind`, replacing what was registered under that name.
    pub fn register(&mut self, kind: impl Into<String>, factory: impl ProviderFactory + 'static) {
        self.factories.insert(kind.into(), Arc::new(factory));
    }

    /// Whether `kind` can be built.
    pub fn contains(&self, kind: &str) -> bool {
        self.factories.contains_key(kind)
    }

    /// The registered kind names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }

    pub(crate) fn get(&self, kind: &str) -> Option<&Arc<dyn ProviderFactory>> {
        self.factories.get(kind)
    }
}

impl Default for ProviderKinds {
    fn default() -> ProviderKinds {
        ProviderKinds::builtin()
    }
}

impl fmt::Debug for ProviderKinds {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.debug_list().entries(self.names()).finish()
    }
}
