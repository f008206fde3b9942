//! The cost of checking a structured answer (issue 13's figure, target under 20 µs): parsing
//! and validating a typical three-path answer against the shipped JSON version's output schema
//! (`OutputSchema::validate`), and normalising the tool call of a small tool
//! (`normalise_tool_calls`: parse plus validate of its arguments).
//!
//! The schema is the one the shipped configuration's JSON version declares (resolved through
//! the engine; the same shape inline when none is shipped); the answer is a hand-written one when it fits that schema,
//! else the mock provider's answer to a demo subject (valid by construction).

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use prompt_config::output::{OutputSchema, RawToolCall, ToolDefinition, normalise_tool_calls};
use prompt_config::{Context, Engine, EngineOptions};
use serde_json::json;

const FEATURE: &str = "career_path_navigator";
const JSON_VERSION: &str = "2.2.0";

/// A realistic answer: three paths with a reason, skills to add and a first step each.
const ANSWER: &str = r#"{"paths":[
{"role":"Senior Data Analyst","fit":"Builds on four years of SQL and reporting in the same sector, with more ownership of analyses.","skills_to_add":["Python","dbt","stakeholder management"],"first_step":"Lead the next quarterly KPI review end to end."},
{"role":"Product Analyst","fit":"Moves the same skills closer to product decisions, which matches the goal of more ownership.","skills_to_add":["experimentation","product metrics","Amplitude"],"first_step":"Ask to own the analysis of one running A/B test."},
{"role":"Product Manager","fit":"A larger change that uses presenting and analysis to own a roadmap within two years.","skills_to_add":["discovery interviews","roadmapping","Jira"],"first_step":"Take a product management fundamentals course this quarter."}
]}"#;

fn subject(user: &str) -> Context {
    Context::new(user)
        .attribute("sector", "technology")
        .attribute("degree", "BSc Economics")
        .variable("current_role", "Data Analyst")
        .variable("degree", "BSc Economics")
        .variable("skills", json!(["SQL", "Excel", "Tableau"]))
        .variable("sector", "technology")
        .variable("goals", "Move into product management within two years")
        .variable("years_experience", 4)
}

/// The shipped JSON version's schema and a typical answer valid against it.
fn shipped_schema_and_answer() -> (OutputSchema, String) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let options = EngineOptions::new(root.join("config"), root.join("prompts")).with_mock(true);
    let engine = Engine::open(options).expect("the shipped configuration opens");
    let shipped = engine
        .resolve(FEATURE, &subject("bench").pin_version(JSON_VERSION))
        .ok()
        .and_then(|resolution| resolution.output);
    let Some(schema) = shipped else {
        println!("output: no {JSON_VERSION} with an output schema is shipped: its shape inline");
        let schema = OutputSchema::compile("career_paths", shipped_shape(), true)
            .expect("the schema compiles");
        return (schema, ANSWER.to_string());
    };
    if schema.validate(ANSWER).is_ok() {
        return (schema, ANSWER.to_string());
    }
    // The shipped schema changed shape: the mock answer fits it.
    let answer = (0..100)
        .filter_map(|n| {
            let context = subject(&format!("user-{n}")).pin_version(JSON_VERSION);
            engine.complete(FEATURE, &context).ok()
        })
        .map(|completion| completion.text)
        .find(|text| schema.validate(text).is_ok())
        .expect("a valid mock answer");
    (schema, answer)
}

/// The shipped shape: `paths: [{role, fit, skills_to_add, first_step}]`, three of them.
fn shipped_shape() -> serde_json::Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["paths"],
        "properties": {"paths": {
            "type": "array", "minItems": 3, "maxItems": 3,
            "items": {
                "type": "object",
                "additionalProperties": false,
                "required": ["role", "fit", "skills_to_add", "first_step"],
                "properties": {
                    "role": {"type": "string"},
                    "fit": {"type": "string"},
                    "skills_to_add": {"type": "array", "items": {"type": "string"}},
                    "first_step": {"type": "string"}
                }
            }
        }}
    })
}

fn validate(criterion: &mut Criterion) {
    let (schema, answer) = shipped_schema_and_answer();
    println!(
        "output/validate: schema {} ({} bytes of answer)",
        schema.name(),
        answer.len()
    );
    criterion.bench_function("output/validate_three_paths", |bencher| {
        bencher.iter(|| black_box(schema.validate(black_box(&answer))).is_ok())
    });
}

fn tool_calls(criterion: &mut Criterion) {
    let tools = [ToolDefinition::compile(
        "lookup_salary",
        Some("Median salary of a role in a sector.".to_string()),
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["role", "sector"],
            "properties": {
                "role": {"type": "string", "minLength": 1},
                "sector": {"enum": ["technology", "finance", "healthcare", "education", "retail"]},
                "years": {"type": "integer", "minimum": 0}
            }
        }),
    )
    .expect("a valid tool")];
    let call = RawToolCall {
        id: "call_abc123".to_string(),
        name: "lookup_salary".to_string(),
        arguments: r#"{"role":"Product Analyst","sector":"technology","years":4}"#.to_string(),
    };
    criterion.bench_function("output/normalise_tool_calls_small", |bencher| {
        bencher
            .iter(|| black_box(normalise_tool_calls(black_box(&tools), vec![call.clone()])).is_ok())
    });
}

criterion_group!(benches, validate, tool_calls);
criterion_main!(benches);
