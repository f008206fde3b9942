//! A version's declarations beside its templates: the output schema (inline, or a file read
//! like a template), the tools and `tool_choice`, each checked against the provider subset
//! (`output::check_subset`) with problems at their pointers, and, for a released version, the
//! hashes that cover them (`config::declaration_hashes`).

use std::collections::HashMap;

use serde_json::Value;

use super::VersionCompiler;
use crate::config::{
    DECLARATION_KEYS, FileDigest, Problem, VersionStatus, declaration_hashes, parse_strict,
};
use crate::output::{OutputSchema, SchemaProblem, ToolChoice, ToolDefinition, check_subset};

/// Compiled output schemas and tools by their declaration's text, so versions (of one feature or
/// of many) that declare the same share one compiled validator, as [`super::ValidatorCache`]
/// does for variables: most versions keep their predecessor's declarations, and a fleet of
/// features may share one schema. Only declarations that passed every check are kept.
#[derive(Default)]
pub(super) struct DeclarationCache {
    outputs: HashMap<String, OutputSchema>,
    tools: HashMap<String, ToolDefinition>,
}

impl DeclarationCache {
    /// The key of an output declaration: its name, repair flag and schema text (as written;
    /// a difference in key order is merely a missed share).
    fn output_key(name: &str, repair: bool, schema: &Value) -> String {
        format!("{name}\u{0}{repair}\u{0}{schema}")
    }

    fn tool_key(name: &str, description: Option<&str>, parameters: &Value) -> String {
        format!("{name}\u{0}{description:?}\u{0}{parameters}")
    }
}

impl VersionCompiler<'_> {
    /// The version's output schema (inline, or read from its file beside the templates),
    /// checked against the provider subset and compiled; false when it is declared but broken.
    /// Problems inside an inline schema point into the feature file; problems inside a schema
    /// file point into that file; a file that cannot be read points at `output/schema`.
    pub(super) fn compile_output(&mut self) -> (Option<OutputSchema>, bool) {
        let Some(spec) = &self.spec.output else {
            return (None, true);
        };
        let pointer = format!("{}/output/schema", self.base);
        let (schema, file) = match &spec.schema {
            Value::String(file) => match self.read_schema_file(file, &pointer) {
                Some((schema, display)) => (schema, Some(display)),
                None => return (None, false),
            },
            inline => (inline.clone(), None),
        };
        let key = DeclarationCache::output_key(&spec.name, spec.repair, &schema);
        if let Some(compiled) = self.declared.outputs.get(&key) {
            return (Some(compiled.clone()), true);
        }
        let problems = check_subset(&schema);
        if !problems.is_empty() {
            self.schema_problems(file.as_deref(), &pointer, problems);
            return (None, false);
        }
        match OutputSchema::compile(spec.name.clone(), schema, spec.repair) {
            Ok(schema) => {
                self.declared.outputs.insert(key, schema.clone());
                (Some(schema), true)
            }
            Err(problems) => {
                self.schema_problems(file.as_deref(), &pointer, problems);
                (None, false)
            }
        }
    }

    /// Reads the output schema file `file` of this version (path rules, hash and revision as for
    /// a template) and parses it; `None` when that fails (the problem is pushed).
    fn read_schema_file(&mut self, file: &str, pointer: &str) -> Option<(Value, String)> {
        if DECLARATION_KEYS.contains(&file) {
            self.problem(pointer.to_string(), reserved(file));
            return None;
        }
        let feature = &self.feature.config.feature;
        let path = crate::prompt::paths::plain_template_path(
            self.prompts_dir,
            self.version_root.as_deref(),
            feature,
            self.version,
            file,
        )
        .map(Ok)
        .unwrap_or_else(|| {
            crate::prompt::paths::safe_version_file_under(
                self.prompts_dir,
                self.root,
                feature,
                self.version,
                file,
                "output schema",
            )
        });
        let path = match path {
            Ok(path) => path,
            Err(message) => {
                self.problem(pointer.to_string(), message);
                return None;
            }
        };
        let display = path.display().to_string();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) => {
                self.problem(pointer.to_string(), format!("cannot read {display}: {error}"));
                return None;
            }
        };
        let digest = FileDigest::of(display.clone(), &bytes);
        self.check_integrity(file, &display, &digest.sha256);
        self.sources.push(digest);
        match parse_strict(&bytes) {
            Ok(schema) => Some((schema, display)),
            Err(problem) => {
                for (pointer, message) in problem.located() {
                    self.problems.push(Problem::new(&display, pointer, message));
                }
                None
            }
        }
    }

    /// The version's tools, each checked against the provider subset and compiled, names
    /// unique; false when one is broken.
    pub(super) fn compile_tools(&mut self) -> (Vec<ToolDefinition>, bool) {
        let mut tools: Vec<ToolDefinition> = Vec::with_capacity(self.spec.tools.len());
        let mut complete = true;
        let output_name = self.spec.output.as_ref().map(|output| output.name.as_str());
        for (index, tool) in self.spec.tools.iter().enumerate() {
            let at = format!("{}/tools/{index}", self.base);
            if let Some(first) = self.spec.tools[..index]
                .iter()
                .position(|other| other.name == tool.name)
            {
                self.problem(
                    format!("{at}/name"),
                    format!(
                        "tool name \"{}\" is declared twice (first at {}/tools/{first}); tool names must be unique",
                        tool.name, self.base
                    ),
                );
                complete = false;
            }
            if output_name == Some(tool.name.as_str()) {
                self.problem(
                    format!("{at}/name"),
                    format!(
                        "tool name \"{}\" is the output schema's name; Anthropic's forced-tool \
                         output is sent as a tool of that name, so the two must differ",
                        tool.name
                    ),
                );
                complete = false;
            }
            let key = DeclarationCache::tool_key(
                &tool.name,
                tool.description.as_deref(),
                &tool.parameters,
            );
            if let Some(compiled) = self.declared.tools.get(&key) {
                tools.push(compiled.clone());
                continue;
            }
            let pointer = format!("{at}/parameters");
            let problems = check_subset(&tool.parameters);
            if !problems.is_empty() {
                self.schema_problems(None, &pointer, problems);
                complete = false;
                continue;
            }
            let compiled = ToolDefinition::compile(
                tool.name.clone(),
                tool.description.clone(),
                tool.parameters.clone(),
            );
            match compiled {
                Ok(tool) => {
                    self.declared.tools.insert(key, tool.clone());
                    tools.push(tool);
                }
                Err(problems) => {
                    self.schema_problems(None, &pointer, problems);
                    complete = false;
                }
            }
        }
        (tools, complete)
    }

    /// `tool_choice` must name a declared tool, and `required` needs tools to choose from.
    pub(super) fn check_tool_choice(&mut self) -> bool {
        let pointer = format!("{}/tool_choice", self.base);
        match &self.spec.tool_choice {
            Some(ToolChoice::Tool(name)) if !self.spec.tools.iter().any(|tool| tool.name == *name) => {
                let declared: Vec<&str> =
                    self.spec.tools.iter().map(|tool| tool.name.as_str()).collect();
                let declared = if declared.is_empty() {
                    "none".to_string()
                } else {
                    declared.join(", ")
                };
                self.problem(
                    format!("{pointer}/tool"),
                    format!("tool_choice names tool \"{name}\", which this version does not declare (declared: {declared})"),
                );
                false
            }
            Some(ToolChoice::Required) if self.spec.tools.is_empty() => {
                self.problem(
                    pointer,
                    "tool_choice \"required\" needs at least one tool in \"tools\"".into(),
                );
                false
            }
            _ => true,
        }
    }

    /// Pushes schema problems: into the schema `file` at their own pointers, or, for an inline
    /// schema, into the feature file under `pointer`.
    fn schema_problems(&mut self, file: Option<&str>, pointer: &str, problems: Vec<SchemaProblem>) {
        for problem in problems {
            match file {
                Some(file) => self
                    .problems
                    .push(Problem::new(file, problem.pointer, problem.message)),
                None => self.problem(format!("{pointer}{}", problem.pointer), problem.message),
            }
        }
    }

    /// For a released version: every declaration (`output`, `tools`, `tool_choice`) must have
    /// its hash recorded and match it, like a template file.
    pub(super) fn check_declarations(&mut self) {
        if self.spec.status != VersionStatus::Released {
            return;
        }
        for (key, actual) in declaration_hashes(self.spec) {
            match self.spec.sha256.get(key) {
                None => self.problem(
                    format!("{}/sha256", self.base),
                    format!("released version has no recorded hash for its {key} declaration; release it with `prompt-config release`"),
                ),
                Some(expected) if *expected != actual => self.problems.push(Problem::integrity(
                    &self.feature.file,
                    format!("{}/sha256/{key}", self.base),
                    format!(
                        "the {key} declaration of {} changed after release: recorded sha256 {expected}, \
                         it now hashes to {actual}; restore it or release the change as a new version",
                        self.version
                    ),
                )),
                Some(_) => {}
            }
        }
    }
}

/// Why a file may not be named as a declaration's hash key.
pub(super) fn reserved(file: &str) -> String {
    format!(
        "the file name \"{file}\" is reserved: the version's sha256 map records the hash of its \
         {file} declaration under that key"
    )
}
