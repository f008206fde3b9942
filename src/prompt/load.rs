//! Checks every version's templates (paths, hashes, syntax, declared variables) and builds the
//! one MiniJinja environment they render from, pre-rendering templates that use no variables.
//!
//! Memory: MiniJinja reserves room for 256 instructions and 128 line and span records for every
//! template it compiles and never gives it back, about 12 KiB per template however short it
//! is. So the serving environment keeps only each template's text (shared between templates
//! with the same text) and compiles a template the first time it renders; loading compiles
//! each distinct text once, in a scratch environment that is emptied as it goes.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use serde_json::Value;

use super::{CompiledMessage, CompiledPrompt, MessageBody, Role, hex};
use crate::config::{
    DECLARATION_KEYS, FileDigest, LoadedFeature, Problem, VersionSpec, VersionStatus,
    declaration_hashes, pointer_token,
};
use crate::output::{OutputSchema, ToolChoice, ToolDefinition};
use declarations::{DeclarationCache, reserved};

mod declarations;

/// Compiled prompts by feature, then version.
pub(crate) type PromptTable = HashMap<String, HashMap<String, Arc<CompiledPrompt>>>;

struct PendingVersion {
    feature: String,
    version: String,
    messages: Vec<(Role, String, Arc<Checked>)>,
    variables: Arc<jsonschema::Validator>,
    output: Option<OutputSchema>,
    tools: Vec<ToolDefinition>,
    tool_choice: ToolChoice,
}

/// What compiling one template text showed; shared by every template with that text.
struct Checked {
    /// The text, shared with the serving environment's loader.
    source: Arc<str>,
    /// The variables it reads.
    used: HashSet<String>,
    /// For a template that reads no variable: its output, or why rendering failed (then the
    /// message names this template, so a failure is never shared).
    rendered: Option<Result<Arc<str>, String>>,
}

/// The environment every template is compiled in: strict undefined, no auto-escaping, block
/// tags on lines of their own leave no blank lines behind.
fn environment() -> Environment<'static> {
    let mut environment = Environment::new();
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    environment.set_auto_escape_callback(|_| AutoEscape::None);
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
    {
        environment.set_syntax(syntax);
    }
    environment
}

/// Compiles template texts once each, in a scratch environment emptied after each compile.
struct TemplateChecker {
    scratch: Environment<'static>,
    globals: BTreeSet<String>,
    by_text: HashMap<Arc<str>, Arc<Checked>>,
}

impl TemplateChecker {
    fn new() -> TemplateChecker {
        let scratch = environment();
        let globals = scratch
            .globals()
            .map(|(global, _)| global.to_string())
            .collect();
        TemplateChecker {
            scratch,
            globals,
            by_text: HashMap::new(),
        }
    }

    /// What `text` uses and renders to; an error is MiniJinja's message naming `name`.
    fn check(&mut self, name: &str, text: &str) -> Result<Arc<Checked>, String> {
        if let Some(checked) = self.by_text.get(text) {
            return Ok(Arc::clone(checked));
        }
        let result = self.compile(name, text);
        self.scratch.remove_template(name);
        let checked = Arc::new(result?);
        if !matches!(checked.rendered, Some(Err(_))) {
            self.by_text
                .insert(Arc::clone(&checked.source), Arc::clone(&checked));
        }
        Ok(checked)
    }

    fn compile(&mut self, name: &str, text: &str) -> Result<Checked, String> {
        self.scratch
            .add_template_owned(name.to_string(), text.to_string())
            .map_err(|error| format!("template syntax error: {error:#}"))?;
        let template = self
            .scratch
            .get_template(name)
            .map_err(|error| format!("{error:#}"))?;
        let used = template.undeclared_variables(false);
        // Templates that use no variable render the same every time, so they render once here.
        let rendered = used.is_empty().then(|| {
            template
                .render(minijinja::context! {})
                .map(Arc::from)
                .map_err(|error| format!("{error:#}"))
        });
        Ok(Checked {
            source: Arc::from(text),
            used,
            rendered,
        })
    }
}

/// Compiles the templates of every version of `features`; problems are pushed, file digests are
/// appended to `sources` for the config revision.
pub(crate) fn compile_prompts(
    prompts_dir: &Path,
    features: &[LoadedFeature],
    problems: &mut Vec<Problem>,
    sources: &mut Vec<FileDigest>,
) -> PromptTable {
    // Canonicalized once for every template's containment check, not once per template.
    let root = prompts_dir.canonicalize().map_err(|error| {
        format!(
            "prompts directory {} cannot be opened: {error}",
            prompts_dir.display()
        )
    });
    let mut checker = TemplateChecker::new();
    let mut pending = Vec::new();
    let mut validators = ValidatorCache::default();
    let mut declared = DeclarationCache::default();
    for feature in features {
        for (version, spec) in &feature.config.versions {
            let mut compiler = VersionCompiler {
                prompts_dir,
                root: &root,
                version_root: super::paths::version_root(
                    prompts_dir,
                    &root,
                    &feature.config.feature,
                    version,
                ),
                feature,
                version,
                spec,
                base: format!("/versions/{}", pointer_token(version)),
                problems: &mut *problems,
                sources: &mut *sources,
                validators: &mut validators,
                declared: &mut declared,
            };
            if let Some(version) = compiler.compile(&mut checker) {
                pending.push(version);
            }
        }
    }
    drop(checker);

    // Templates that read variables, by name: the serving environment compiles each from its
    // shared text the first time it renders.
    let mut templates: HashMap<String, Arc<str>> = HashMap::new();
    let mut ready = Vec::with_capacity(pending.len());
    for version in pending {
        let messages: Vec<CompiledMessage> = version
            .messages
            .into_iter()
            .map(|(role, name, checked)| {
                let body = match &checked.rendered {
                    Some(Ok(text)) => MessageBody::Static(Arc::clone(text)),
                    other => {
                        if let Some(Err(message)) = other {
                            problems.push(Problem::new(name.as_str(), "", message.clone()));
                        }
                        templates.insert(name.clone(), Arc::clone(&checked.source));
                        MessageBody::Template { name }
                    }
                };
                CompiledMessage { role, body }
            })
            .collect();
        ready.push((
            version.feature,
            version.version,
            messages,
            version.variables,
            (version.output, version.tools, version.tool_choice),
        ));
    }

    let environment = Arc::new(serving_environment(templates));
    let mut table = PromptTable::new();
    for (feature, version, messages, variables, (output, tools, tool_choice)) in ready {
        let compiled = CompiledPrompt {
            feature: feature.clone(),
            version: version.clone(),
            messages,
            variables,
            environment: Arc::clone(&environment),
            output,
            tools,
            tool_choice,
        };
        table
            .entry(feature)
            .or_default()
            .insert(version, Arc::new(compiled));
    }
    table
}

/// The environment prompts render from: it holds only template texts and compiles each on its
/// first render (MiniJinja caches the result, so later renders find it compiled).
fn serving_environment(templates: HashMap<String, Arc<str>>) -> Environment<'static> {
    let mut environment = environment();
    // Texts never change within a snapshot (a reload builds a new one): no staleness checks.
    environment.set_auto_reload(false);
    environment.set_loader(move |name| Ok(templates.get(name).map(|text| text.to_string())));
    environment
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

struct VersionCompiler<'a> {
    prompts_dir: &'a Path,
    /// The canonical prompts directory, or why it cannot be opened.
    root: &'a Result<PathBuf, String>,
    /// The canonical version folder when it lies inside the prompts directory.
    version_root: Option<PathBuf>,
    feature: &'a LoadedFeature,
    version: &'a str,
    spec: &'a VersionSpec,
    base: String,
    problems: &'a mut Vec<Problem>,
    sources: &'a mut Vec<FileDigest>,
    validators: &'a mut ValidatorCache,
    declared: &'a mut DeclarationCache,
}

impl VersionCompiler<'_> {
    fn problem(&mut self, pointer: String, message: String) {
        self.problems
            .push(Problem::new(&self.feature.file, pointer, message));
    }

    fn compile(&mut self, checker: &mut TemplateChecker) -> Option<PendingVersion> {
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
            match self.compile_message(checker, index, &message.template, &declared) {
                Some((name, checked)) => {
                    let role = Role::parse(&message.role).unwrap_or(Role::User);
                    messages.push((role, name, checked));
                }
                None => complete = false,
            }
        }
        self.check_unlisted_hashes();
        self.check_declarations();
        let (output, output_complete) = self.compile_output();
        let (tools, tools_complete) = self.compile_tools();
        let choice_complete = self.check_tool_choice();
        let feature = self.feature.config.feature.clone();
        Some(PendingVersion {
            feature,
            version: self.version.to_string(),
            messages,
            variables: variables?,
            output,
            tools,
            tool_choice: self.spec.tool_choice.clone().unwrap_or_default(),
        })
        .filter(|_| complete && output_complete && tools_complete && choice_complete)
    }

    /// Reads, verifies and compiles one template; returns its name in the environment and
    /// what compiling its text showed.
    fn compile_message(
        &mut self,
        checker: &mut TemplateChecker,
        index: usize,
        template: &str,
        declared: &BTreeSet<&str>,
    ) -> Option<(String, Arc<Checked>)> {
        let feature = &self.feature.config.feature;
        let pointer = format!("{}/messages/{index}/template", self.base);
        if DECLARATION_KEYS.contains(&template) {
            self.problem(pointer, reserved(template));
            return None;
        }
        let fast = super::paths::plain_template_path(
            self.prompts_dir,
            self.version_root.as_deref(),
            feature,
            self.version,
            template,
        );
        let path = match fast.map(Ok).unwrap_or_else(|| {
            super::paths::safe_template_path_under(
                self.prompts_dir,
                self.root,
                feature,
                self.version,
                template,
            )
        }) {
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
        // One hash serves both the release check and the config revision.
        let digest = FileDigest::of(display.clone(), &bytes);
        self.check_integrity(template, &display, &digest.sha256);
        let name = format!("{feature}/{}/{template}", self.version);
        let checked = match std::str::from_utf8(&bytes) {
            Ok(text) => checker.check(&name, text),
            Err(_) => {
                self.problems
                    .push(Problem::new(&display, "", "template is not valid UTF-8"));
                return None;
            }
        };
        self.sources.push(digest);
        let checked = match checked {
            Ok(checked) => checked,
            Err(message) => {
                self.problems.push(Problem::new(&display, "", message));
                return None;
            }
        };
        let mut undeclared: Vec<&String> = checked
            .used
            .iter()
            .filter(|variable| {
                !declared.contains(variable.as_str())
                    && !checker.globals.contains(variable.as_str())
            })
            .collect();
        undeclared.sort();
        for variable in undeclared {
            self.problem(
                format!("{}/variables/properties", self.base),
                format!("template {display} uses variable \"{variable}\", which this version does not declare"),
            );
        }
        Some((name, checked))
    }

    fn check_integrity(&mut self, template: &str, display: &str, sha256: &[u8; 32]) {
        if self.spec.status != VersionStatus::Released {
            return;
        }
        let actual = hex(sha256);
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

    /// Hashes recorded for nothing this version has: a plain problem for a file, an integrity
    /// problem for a declaration a released version no longer makes (it changed after release).
    fn check_unlisted_hashes(&mut self) {
        let mut listed: BTreeSet<&str> = self
            .spec
            .messages
            .iter()
            .map(|message| message.template.as_str())
            .collect();
        if let Some(Value::String(file)) = self.spec.output.as_ref().map(|output| &output.schema) {
            listed.insert(file.as_str());
        }
        let declared = declaration_hashes(self.spec);
        let stale: Vec<String> = self
            .spec
            .sha256
            .keys()
            .filter(|key| !listed.contains(key.as_str()) && !declared.contains_key(key.as_str()))
            .cloned()
            .collect();
        for key in stale {
            let pointer = format!("{}/sha256/{}", self.base, pointer_token(&key));
            if DECLARATION_KEYS.contains(&key.as_str()) {
                let message = format!(
                    "hash recorded for the {key} declaration, which this version no longer makes"
                );
                if self.spec.status == VersionStatus::Released {
                    self.problems.push(Problem::integrity(
                        &self.feature.file,
                        pointer,
                        format!("{message}: it was removed after release; restore it or release the change as a new version"),
                    ));
                } else {
                    self.problem(pointer, message);
                }
            } else {
                self.problem(
                    pointer,
                    format!(
                        "hash recorded for {key}, which no message of this version uses, nor its output schema"
                    ),
                );
            }
        }
    }
}
