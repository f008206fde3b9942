use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{check_name, check_subset, portable_schema};
use crate::output::{OutputSchema, ToolDefinition};

/// A schema in the subset: the shipped career_paths shape.
fn career_paths() -> Value {
    json!({
        "type": "object",
        "properties": {
            "paths": {
                "type": "array",
                "minItems": 3,
                "maxItems": 3,
                "items": {
                    "type": "object",
                    "properties": {
                        "role": {"type": "string", "description": "The job title."},
                        "fit": {"type": "string"},
                        "skills_to_add": {"type": "array", "items": {"type": "string"}},
                        "first_step": {"type": "string"}
                    },
                    "required": ["role", "fit", "skills_to_add", "first_step"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["paths"],
        "additionalProperties": false
    })
}

/// The pointers of every problem, with the message for diagnosis.
fn problems(schema: &Value) -> Vec<(String, String)> {
    check_subset(schema)
        .into_iter()
        .map(|problem| (problem.pointer, problem.message))
        .collect()
}

/// Asserts exactly one problem, at `pointer`, mentioning `text`.
fn assert_only_problem(schema: Value, pointer: &str, text: &str) {
    let found = problems(&schema);
    assert!(
        found.len() == 1 && found[0].0 == pointer && found[0].1.contains(text),
        "expected one problem at {pointer:?} mentioning {text:?}, got {found:#?}"
    );
}

/// `{"type": "object", ...}` with one property `value` of schema `property`.
fn with_property(property: Value) -> Value {
    json!({
        "type": "object",
        "properties": {"value": property},
        "required": ["value"],
        "additionalProperties": false
    })
}

#[test]
fn the_shipped_shape_keeps_to_the_subset() {
    assert_eq!(problems(&career_paths()), []);
}

#[test]
fn a_tool_without_parameters_keeps_to_the_subset() {
    let empty = json!({"type": "object", "properties": {}, "additionalProperties": false});
    assert_eq!(problems(&empty), []);
}

#[test]
fn the_root_must_be_an_object() {
    assert_only_problem(
        json!({"type": "array", "items": {"type": "string"}}),
        "/type",
        "root",
    );
}

#[test]
fn the_root_may_not_be_a_type_array() {
    let mut schema = career_paths();
    schema["type"] = json!(["object", "null"]);
    assert_only_problem(schema, "/type", "root");
}

#[test]
fn the_root_may_not_be_any_of() {
    let schema = json!({"anyOf": [career_paths(), career_paths()]});
    assert_only_problem(schema, "/anyOf", "root may not be anyOf");
}

#[test]
fn a_schema_that_is_not_an_object_is_refused() {
    assert_only_problem(json!(true), "", "must be a JSON object");
    assert_only_problem(
        with_property(json!(true)),
        "/properties/value",
        "boolean schemas",
    );
}

#[test]
fn every_object_sets_additional_properties_false() {
    let mut schema = career_paths();
    let item = &mut schema["properties"]["paths"]["items"];
    item.as_object_mut().unwrap().remove("additionalProperties");
    assert_only_problem(
        schema,
        "/properties/paths/items",
        "\"additionalProperties\": false",
    );
}

#[test]
fn additional_properties_as_a_schema_is_refused_at_its_pointer() {
    let mut schema = career_paths();
    schema["additionalProperties"] = json!({"type": "string"});
    assert_only_problem(
        schema,
        "/additionalProperties",
        "\"additionalProperties\": false",
    );
}

#[test]
fn every_property_is_required() {
    let mut schema = career_paths();
    schema["properties"]["paths"]["items"]["required"] = json!(["role", "fit", "first_step"]);
    assert_only_problem(
        schema,
        "/properties/paths/items/required",
        "property \"skills_to_add\" must be listed",
    );
}

#[test]
fn an_object_without_required_is_refused() {
    let mut schema = career_paths();
    schema.as_object_mut().unwrap().remove("required");
    assert_only_problem(schema, "", "every property in \"required\"");
}

#[test]
fn required_may_not_name_an_unknown_property() {
    let mut schema = career_paths();
    schema["required"] = json!(["paths", "title"]);
    assert_only_problem(
        schema,
        "/required/1",
        "\"title\" is required but is not a property",
    );
}

#[test]
fn an_object_lists_its_properties() {
    assert_only_problem(
        with_property(json!({"type": "object", "additionalProperties": false})),
        "/properties/value",
        "must list its \"properties\"",
    );
}

#[test]
fn a_schema_declares_its_type() {
    assert_only_problem(
        with_property(json!({"enum": ["a", "b"]})),
        "/properties/value",
        "\"type\"",
    );
}

#[test]
fn an_unknown_type_is_refused() {
    assert_only_problem(
        with_property(json!({"type": "date"})),
        "/properties/value/type",
        "unknown type \"date\"",
    );
}

#[test]
fn a_nullable_type_array_is_accepted() {
    assert_eq!(
        problems(&with_property(json!({"type": ["string", "null"]}))),
        []
    );
}

#[test]
fn keywords_outside_the_subset_are_refused_each_at_its_pointer() {
    for (keyword, value) in [
        ("patternProperties", json!({"^x": {"type": "string"}})),
        ("if", json!({"type": "string"})),
        ("then", json!({"type": "string"})),
        ("else", json!({"type": "string"})),
        ("not", json!({"type": "string"})),
        ("allOf", json!([{"type": "string"}])),
        ("oneOf", json!([{"type": "string"}])),
        ("dependentSchemas", json!({})),
        ("dependentRequired", json!({})),
        ("minLength", json!(1)),
        ("maxLength", json!(9)),
        ("pattern", json!("^a+$")),
        ("minimum", json!(0)),
        ("maximum", json!(9)),
        ("multipleOf", json!(2)),
        ("uniqueItems", json!(true)),
        ("prefixItems", json!([])),
        ("title", json!("A title")),
        ("default", json!("x")),
        ("definitions", json!({})),
    ] {
        let mut property = json!({"type": "string"});
        property[keyword] = value;
        assert_only_problem(
            with_property(property),
            &format!("/properties/value/{keyword}"),
            &format!("keyword \"{keyword}\" is not supported"),
        );
    }
}

#[test]
fn a_keyword_of_another_type_is_refused() {
    assert_only_problem(
        with_property(json!({"type": "string", "items": {"type": "string"}})),
        "/properties/value/items",
        "applies to type array",
    );
}

#[test]
fn an_array_declares_its_items() {
    assert_only_problem(
        with_property(json!({"type": "array"})),
        "/properties/value",
        "\"items\"",
    );
}

#[test]
fn array_bounds_must_be_ordered_non_negative_integers() {
    let schema =
        with_property(json!({"type": "array", "items": {"type": "string"}, "minItems": -1}));
    assert_only_problem(schema, "/properties/value/minItems", "non-negative integer");
    let schema = with_property(
        json!({"type": "array", "items": {"type": "string"}, "minItems": 3, "maxItems": 2}),
    );
    assert_only_problem(schema, "/properties/value/maxItems", "below \"minItems\" 3");
}

#[test]
fn enum_values_are_primitive_and_unique() {
    assert_only_problem(
        with_property(json!({"type": "string", "enum": ["a", ["b"]]})),
        "/properties/value/enum/1",
        "strings, numbers, booleans or null",
    );
    assert_only_problem(
        with_property(json!({"type": "string", "enum": ["a", "a"]})),
        "/properties/value/enum/1",
        "listed twice",
    );
    assert_only_problem(
        with_property(json!({"type": "string", "enum": []})),
        "/properties/value/enum",
        "non-empty",
    );
}

#[test]
fn const_is_primitive() {
    assert_eq!(
        problems(&with_property(json!({"type": "string", "const": "x"}))),
        []
    );
    assert_only_problem(
        with_property(json!({"type": "string", "const": {"a": 1}})),
        "/properties/value/const",
        "string, number, boolean or null",
    );
}

#[test]
fn only_shared_string_formats_are_accepted() {
    assert_eq!(
        problems(&with_property(json!({"type": "string", "format": "date"}))),
        []
    );
    assert_only_problem(
        with_property(json!({"type": "string", "format": "uri"})),
        "/properties/value/format",
        "must be one of",
    );
}

#[test]
fn any_of_branches_are_checked_at_their_pointers() {
    let schema = with_property(json!({"anyOf": [{"type": "string"}, {"type": "object"}]}));
    let found = problems(&schema);
    assert!(
        found
            .iter()
            .all(|(pointer, _)| pointer == "/properties/value/anyOf/1"),
        "{found:#?}"
    );
    assert_eq!(found.len(), 2, "{found:#?}");
}

#[test]
fn only_a_description_stands_beside_any_of_or_ref() {
    assert_only_problem(
        with_property(json!({"anyOf": [{"type": "string"}], "type": "string"})),
        "/properties/value/type",
        "only \"description\"",
    );
}

#[test]
fn local_definitions_are_accepted() {
    let schema = json!({
        "type": "object",
        "$defs": {"step": {"type": "string", "description": "One step."}},
        "properties": {"first": {"$ref": "#/$defs/step"}, "second": {"$ref": "#/$defs/step"}},
        "required": ["first", "second"],
        "additionalProperties": false
    });
    assert_eq!(problems(&schema), []);
}

#[test]
fn a_reference_to_a_missing_or_remote_definition_is_refused() {
    assert_only_problem(
        with_property(json!({"$ref": "#/$defs/nowhere"})),
        "/properties/value/$ref",
        "no definition \"nowhere\"",
    );
    assert_only_problem(
        with_property(json!({"$ref": "https://example.com/schema.json"})),
        "/properties/value/$ref",
        "local definitions only",
    );
}

#[test]
fn a_recursive_schema_is_refused_at_the_reference_closing_the_loop() {
    let schema = json!({
        "type": "object",
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
                "required": ["children"],
                "additionalProperties": false
            }
        },
        "properties": {"tree": {"$ref": "#/$defs/node"}},
        "required": ["tree"],
        "additionalProperties": false
    });
    assert_only_problem(
        schema,
        "/$defs/node/properties/children/items/$ref",
        "recursive",
    );
}

#[test]
fn defs_belong_at_the_root_only() {
    assert_only_problem(
        with_property(json!({"type": "string", "$defs": {}})),
        "/properties/value/$defs",
        "root only",
    );
}

/// An object nested `levels` deep, counting the root.
fn nested(levels: usize) -> Value {
    let mut schema = json!({"type": "object", "properties": {}, "additionalProperties": false});
    for _ in 1..levels {
        schema = with_property(schema);
    }
    schema
}

#[test]
fn objects_nest_at_most_ten_levels() {
    assert_eq!(problems(&nested(10)), []);
    assert_only_problem(nested(11), "", "11 levels deep; at most 10");
}

#[test]
fn the_schema_holds_at_most_five_thousand_properties() {
    let mut properties = Map::new();
    for index in 0..5_001 {
        properties.insert(format!("p{index}"), json!({"type": "boolean"}));
    }
    let names: Vec<Value> = properties.keys().cloned().map(Value::String).collect();
    let schema = json!({
        "type": "object",
        "properties": properties,
        "required": names,
        "additionalProperties": false
    });
    assert_only_problem(schema, "", "5001 object properties; at most 5000");
}

#[test]
fn the_schema_holds_at_most_a_thousand_enum_values() {
    let values: Vec<Value> = (0..1_001).map(Value::from).collect();
    assert_only_problem(
        with_property(json!({"type": "integer", "enum": values})),
        "",
        "1001 enum values; at most 1000",
    );
}

#[test]
fn a_large_string_enum_holds_at_most_fifteen_thousand_characters() {
    let values: Vec<Value> = (0..251)
        .map(|index| json!(format!("{index:0>60}")))
        .collect();
    assert_only_problem(
        with_property(json!({"type": "string", "enum": values})),
        "/properties/value/enum",
        "at most 15000 characters",
    );
}

#[test]
fn at_most_sixteen_schemas_are_unions() {
    let mut properties = Map::new();
    for index in 0..17 {
        properties.insert(format!("p{index}"), json!({"type": ["string", "null"]}));
    }
    let names: Vec<Value> = properties.keys().cloned().map(Value::String).collect();
    let schema = json!({
        "type": "object",
        "properties": properties,
        "required": names,
        "additionalProperties": false
    });
    assert_only_problem(
        schema,
        "",
        "17 schemas use anyOf or a type array; at most 16",
    );
}

#[test]
fn pointers_escape_slash_and_tilde_in_property_names() {
    let schema = json!({
        "type": "object",
        "properties": {"a/b~c": {"type": "string", "pattern": "x"}},
        "required": ["a/b~c"],
        "additionalProperties": false
    });
    assert_only_problem(schema, "/properties/a~1b~0c/pattern", "pattern");
}

#[test]
fn names_are_letters_digits_underscore_and_dash_up_to_64() {
    assert_eq!(check_name("career_paths-2"), Ok(()));
    assert_eq!(check_name(&"a".repeat(64)), Ok(()));
    assert!(check_name("").is_err());
    assert!(check_name(&"a".repeat(65)).is_err());
    assert!(check_name("career paths").unwrap_err().contains("' '"));
    assert!(check_name("café").is_err());
    assert!(check_name("a\0b").is_err());
}

#[test]
fn compile_refuses_a_bad_name() {
    let error = OutputSchema::compile("career paths", career_paths(), true).unwrap_err();
    assert_eq!(error[0].pointer, "");
    assert!(error[0].message.starts_with("the name"), "{error:?}");
    let error = ToolDefinition::compile("", None, career_paths()).unwrap_err();
    assert!(error[0].message.starts_with("the name"), "{error:?}");
}

#[test]
fn the_portable_schema_drops_the_bounds_anthropic_refuses_and_validation_keeps_them() {
    let portable = portable_schema(&career_paths());
    assert_eq!(portable["properties"]["paths"]["minItems"], json!(1));
    assert!(portable["properties"]["paths"].get("maxItems").is_none());
    assert_eq!(problems(&portable), []);
    let compiled = OutputSchema::compile("career_paths", career_paths(), true).unwrap();
    assert_eq!(compiled.portable_schema(), &portable);
    assert_eq!(compiled.schema(), &career_paths());
    let two = json!({"paths": [
        {"role": "a", "fit": "b", "skills_to_add": [], "first_step": "c"},
        {"role": "a", "fit": "b", "skills_to_add": [], "first_step": "c"}
    ]});
    let invalid = compiled.validate(&two.to_string()).unwrap_err();
    assert_eq!(invalid.violations[0].pointer, "/paths");
}

#[test]
fn the_portable_schema_leaves_a_property_named_max_items_alone() {
    let schema = with_property(json!({"type": "string"}));
    let mut schema = schema;
    schema["properties"]["maxItems"] = json!({"type": "string"});
    assert_eq!(portable_schema(&schema), schema);
}

/// Arbitrary JSON, with the subset's keywords as likely keys so checks reach deep.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |number| number.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just("object".to_string()),
            Just("array".to_string()),
            Just("string".to_string()),
            Just("#/$defs/a".to_string()),
            Just("#/$defs/b".to_string()),
            ".{0,8}",
            "\\PC{0,4}",
        ]
        .prop_map(Value::String),
    ];
    let key = prop_oneof![
        Just("type".to_string()),
        Just("properties".to_string()),
        Just("required".to_string()),
        Just("additionalProperties".to_string()),
        Just("items".to_string()),
        Just("anyOf".to_string()),
        Just("$ref".to_string()),
        Just("$defs".to_string()),
        Just("a".to_string()),
        Just("b".to_string()),
        Just("enum".to_string()),
        Just("minItems".to_string()),
        Just("maxItems".to_string()),
        ".{0,6}",
    ];
    leaf.prop_recursive(6, 96, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #[test]
    fn checking_and_compiling_never_panic_on_any_json(schema in json()) {
        let found = check_subset(&schema);
        for problem in &found {
            prop_assert!(problem.pointer.is_empty() || problem.pointer.starts_with('/'));
            prop_assert!(!problem.message.is_empty());
        }
        let _ = portable_schema(&schema);
        let _ = OutputSchema::compile("x", schema.clone(), true);
        let _ = ToolDefinition::compile("x", None, schema);
    }

    #[test]
    fn every_pointer_of_a_problem_resolves_in_the_schema(schema in json()) {
        for problem in check_subset(&schema) {
            prop_assert!(
                schema.pointer(&problem.pointer).is_some(),
                "{} does not resolve", problem.pointer
            );
        }
    }

    #[test]
    fn the_portable_form_of_a_schema_in_the_subset_is_in_the_subset(
        min in 0u64..10, extra in 0u64..10,
    ) {
        let mut schema = career_paths();
        schema["properties"]["paths"]["minItems"] = json!(min);
        schema["properties"]["paths"]["maxItems"] = json!(min + extra);
        prop_assert!(check_subset(&schema).is_empty());
        prop_assert!(check_subset(&portable_schema(&schema)).is_empty());
    }

    #[test]
    fn names_are_checked_without_panicking(name in "\\PC{0,80}") {
        let valid = check_name(&name).is_ok();
        let expected = (1..=64).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        prop_assert_eq!(valid, expected);
    }
}
