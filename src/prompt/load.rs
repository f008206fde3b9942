//! Compiles every version's templates into one MiniJinja environment, checking paths, hashes,
//! syntax and declared variables, and pre-rendering templates that use no variables.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use super::{CompiledMessage, CompiledPrompt, MessageBody, Role, safe_template_path, sha256_hex};
use crate::config::{LoadedFeature, Problem, VersionSpec, VersionStatus, pointer_token};

/// Compiled prompts by feature, then version.
pub(crate) type PromptTable = HashMap<String, HashMap<String, Arc<CompiledPrompt>>>;

struct PendingVersion {
    feature: String,
    version: String,
    messages: Vec<(Role, String)>,
    variables: Arc<jsonschema::Validator>,
}

/// Variable validators by schema text, so versions (of one feature or of many) that declare the
/// same variables share one compiled validator: compiling one costs hundreds of microseconds and
/// tens of kilobytes, and most versions of a feature keep their predecessor's variables.
#[derive(Default)]
struct ValidatorCache(HashMap<String, Result<Arc<jsonschema::Validator>, String>>);

impl ValidatorCache {
    /// The compiled validator for `schema`, or jsonschema's description of why it does not compile.
    fn get(&mut self, schema: &serde_json::Value) -> Result<Arc<jsonschema::Validator>, String> {
        // Key order is kept (`preserve_order`), so the text is the schema as written; two schemas
        // that differ only in key order compile twice, which is merely a missed share.
        let key = schema.to_string();
        self.0
            .entry(key)
            .or_insert_with(|| {
                jsonschema::validator_for(schema)
                    .map(Arc::new)
                    .map_err(|error| error.to_string())
            })
            .clone()
    }
}

/// Compiles the templates of every version of `features`; problems are pushed, file bytes are
/// appended to `sources` for the config revision.
pub(crate) fn compile_prompts(
    prompts_dir: &Path,
    features: &[LoadedFeature],
    problems: &mut Vec<Problem>,
    sources: &mut Vec<(String, Vec<u8>)>,
) -> PromptTable {
    let mut environment = Environment::new();
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    environment.set_auto_escape_callback(|_| AutoEscape::None);
    // Block tags on lines of their own leave no blank lines behind in the prompt.
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        environment.set_syntax(syntax);
    }

    let mut pending = Vec::new();
    let mut validators = ValidatorCache::default();
    for feature in features {
        for (version, spec) in &feature.config.versions {
            let mut compiler = VersionCompiler {
                prompts_dir,
                feature,
                version,
                spec,
                base: format!("/versions/{}", pointer_token(version)),
                problems: &mut *problems,
                sources: &mut *sources,
                validators: &mut validators,
            };
            if let Some(version) = compiler.compile(&mut environment) {
                pending.push(version);
            }
        }
    }

    let static_bodies = prerender_static(&environment, &pending, problems);
    let environment = Arc::new(environment);
    let mut table = PromptTable::new();
    for version in pending {
        let messages = version
            .messages
            .into_iter()
            .map(|(role, name)| CompiledMessage {
                role,
                body: match static_bodies.get(&name) {
                    Some(text) => MessageBody::Static(text.clone()),
                    None => MessageBody::Template { name },
                },
            })
            .collect();
        let compiled = CompiledPrompt {
            feature: version.feature.clone(),
            version: version.version.clone(),
            messages,
            variables: version.variables,
            environment: Arc::clone(&environment),
        };
        table
            .entry(version.feature)
            .or_default()
            .insert(version.version, Arc::new(compiled));
    }
    table
}

/// Templates that use no variable render the same every time, so they are rendered once here.
fn prerender_static(
    environment: &Environment<'static>,
    pending: &[PendingVersion],
    problems: &mut Vec<Problem>,
) -> HashMap<String, String> {
    let mut bodies = HashMap::new();
    for (_, name) in pending.iter().flat_map(|version| &version.messages) {
        let Ok(template) = environment.get_template(name) else {
            continue;
        };
        if template.undeclared_variables(false).is_empty() {
            match template.render(minijinja::context! {}) {
                Ok(text) => {
                    bodies.insert(name.clone(), text);
                }
                Err(error) => problems.push(Problem::new(name.as_str(), "", format!("{error:#}"))),
            }
        }
    }
    bodies
}

struct VersionCompiler<'a> {
    prompts_dir: &'a Path,
    feature: &'a LoadedFeature,
    version: &'a str,
    spec: &'a VersionSpec,
    base: String,
    problems: &'a mut Vec<Problem>,
    sources: &'a mut Vec<(String, Vec<u8>)>,
    validators: &'a mut ValidatorCache,
}

impl VersionCompiler<'_> {
    fn problem(&mut self, pointer: String, message: String) {
        self.problems
            .push(Problem::new(&self.feature.file, pointer, message));
    }

    fn compile(&mut self, environment: &mut Environment<'static>) -> Option<PendingVersion> {
        let variables = match self.validators.get(&self.spec.variables) {
            Ok(validator) => Some(validator),
            Err(error) => {
                self.problem(
                    format!("{}/variables", self.base),
                    format!("not a valid JSON Schema: {error}"),
                );
                None
            }
        };
        let declared: BTreeSet<&str> = self
            .spec
            .variables
            .get("properties")
            .and_then(|properties| properties.as_object())
            .map(|properties| properties.keys().map(String::as_str).collect())
            .unwrap_or_default();

        let mut messages = Vec::new();
        let mut complete = true;
        for (index, message) in self.spec.messages.iter().enumerate() {
            match self.compile_message(environment, index, &message.template, &declared) {
                Some(name) => {
                    let role = Role::parse(&message.role).unwrap_or(Role::User);
                    messages.push((role, name));
                }
                None => complete = false,
            }
        }
        self.check_unlisted_hashes();
        let feature = self.feature.config.feature.clone();
        Some(PendingVersion {
            feature,
            version: self.version.to_string(),
            messages,
            variables: variables?,
        })
        .filter(|_| complete)
    }

    /// Reads, verifies and compiles one template; returns its name in the environment.
    fn compile_message(
        &mut self,
        environment: &mut Environment<'static>,
        index: usize,
        template: &str,
        declared: &BTreeSet<&str>,
    ) -> Option<String> {
        let feature = &self.feature.config.feature;
        let pointer = format!("{}/messages/{index}/template", self.base);
        let path = match safe_template_path(self.prompts_dir, feature, self.version, template) {
            Ok(path) => path,
            Err(message) => {
                self.problem(pointer, message);
                return None;
            }
        };
        let display = path.display().to_string();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) => {
                self.problem(pointer, format!("cannot read {display}: {error}"));
                return None;
            }
        };
        self.check_integrity(template, &display, &bytes);
        let source = match String::from_utf8(bytes.clone()) {
            Ok(source) => source,
            Err(_) => {
                self.problems
                    .push(Problem::new(&display, "", "template is not valid UTF-8"));
                return None;
            }
        };
        self.sources.push((display.clone(), bytes));

        let name = format!("{feature}/{}/{template}", self.version);
        if let Err(error) = environment.add_template_owned(name.clone(), source) {
            self.problems.push(Problem::new(
                &display,
                "",
                format!("template syntax error: {error:#}"),
            ));
            return None;
        }
        let used = match environment.get_template(&name) {
            Ok(compiled) => compiled.undeclared_variables(false),
            Err(error) => {
                self.problems
                    .push(Problem::new(&display, "", format!("{error:#}")));
                return None;
            }
        };
        let globals: BTreeSet<&str> = environment.globals().map(|(global, _)| global).collect();
        let mut undeclared: Vec<&String> = used
            .iter()
            .filter(|variable| {
                !declared.contains(variable.as_str()) && !globals.contains(variable.as_str())
            })
            .collect();
        undeclared.sort();
        for variable in undeclared {
            self.problem(
                format!("{}/variables/properties", self.base),
                format!("template {display} uses variable \"{variable}\", which this version does not declare"),
            );
        }
        Some(name)
    }

    fn check_integrity(&mut self, template: &str, display: &str, bytes: &[u8]) {
        if self.spec.status != VersionStatus::Released {
            return;
        }
        let actual = sha256_hex(bytes);
        match self.spec.sha256.get(template) {
            None => self.problem(
                format!("{}/sha256", self.base),
                format!("released version has no recorded hash for {template}; release it with `prompt-config release`"),
            ),
            Some(expected) if *expected != actual => self.problems.push(Problem::integrity(
                &self.feature.file,
                format!("{}/sha256/{}", self.base, pointer_token(template)),
                format!(
                    "{display} changed after release: recorded sha256 {expected}, file has {actual}; \
                     restore the file or release the change as a new version"
                ),
            )),
            Some(_) => {}
        }
    }

    fn check_unlisted_hashes(&mut self) {
        let listed: BTreeSet<&str> = self
            .spec
            .messages
            .iter()
            .map(|message| message.template.as_str())
            .collect();
        let stale: Vec<String> = self
            .spec
            .sha256
            .keys()
            .filter(|file| !listed.contains(file.as_str()))
            .cloned()
            .collect();
        for file in stale {
            self.problem(
                format!("{}/sha256/{}", self.base, pointer_token(&file)),
                format!("hash recorded for {file}, which no message of this version uses"),
            );
        }
    }
}
