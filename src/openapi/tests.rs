//! The document against the router and against itself: every route has an operation, every
//! operation's path parses to its route, every named schema exists, every link names an
//! operation, and every example validates against its own schema.

use http::Method;
use serde_json::{Value, json};

use super::build::operation_id;
use super::{Body, In, Kind, document_value, links, operations};
use crate::http::route::{self, ROUTE_COUNT, route_name};

/// Routes that are not operations: what the router answers for paths it does not know.
const NOT_OPERATIONS: &[&str] = &["not_found", "method_not_allowed"];

/// `op.path` with each path parameter replaced by its example.
fn concrete_path(op: &super::Op) -> String {
    let mut path = op.path.to_string();
    for param in op.params.iter().filter(|p| p.at == In::Path) {
        let example: Value = serde_json::from_str(param.example).unwrap();
        let text = match example {
            Value::String(s) => s,
            other => other.to_string(),
        };
        path = path.replace(&format!("{{{}}}", param.name), &text);
    }
    path
}

#[test]
fn every_route_has_an_operation() {
    let missing: Vec<&str> = (0..ROUTE_COUNT)
        .map(route_name)
        .filter(|name| !NOT_OPERATIONS.contains(name))
        .filter(|name| !operations().any(|op| op.route == *name))
        .collect();
    assert!(
        missing.is_empty(),
        "routes without an operation in src/openapi: {missing:?}"
    );
}

#[test]
fn every_operation_parses_to_its_route() {
    for op in operations() {
        let path = concrete_path(op);
        assert!(
            !path.contains('{'),
            "{} {}: a path parameter is not declared",
            op.method,
            op.path
        );
        let method = Method::from_bytes(op.method.to_uppercase().as_bytes()).unwrap();
        let parsed = route::parse(&method, &path);
        assert_eq!(
            route_name(parsed.index()),
            op.route,
            "{} {} ({path}) is served by another route: {parsed:?}",
            op.method,
            op.path
        );
    }
}

#[test]
fn operations_are_unique_and_name_existing_schemas() {
    let doc = document_value();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut ids: Vec<String> = operations().map(|op| operation_id(op.method, op.path)).collect();
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "one operation per method and path");
    for op in operations() {
        let mut names: Vec<&str> = op
            .answers
            .iter()
            .filter_map(|a| match a.kind {
                Kind::Json(name) => Some(name),
                _ => None,
            })
            .collect();
        match op.body {
            Body::Json(name) | Body::OptionalJson(name) | Body::Form(name) => names.push(name),
            Body::JsonOrForm(name, form) => names.extend([name, form]),
            Body::None | Body::Raw(_) => {}
        }
        for name in names {
            assert!(
                schemas.contains_key(name),
                "{} {}: no schema {name}",
                op.method,
                op.path
            );
        }
    }
    for (method, path, target_method, target_path) in links::all() {
        let target = &doc["paths"][target_path][target_method];
        assert!(
            target.is_object(),
            "a link from {method} {path} to a missing {target_method} {target_path}"
        );
        assert!(
            doc["paths"][path][method].is_object(),
            "a link from a missing {method} {path}"
        );
    }
}

/// A validator of `schema` that resolves `#/components/…` in the document.
fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let mut root = schema.clone();
    if let Value::Object(map) = &mut root {
        map.insert("components".into(), doc["components"].clone());
    } else {
        root = json!({"allOf": [schema], "components": doc["components"]});
    }
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&root)
        .unwrap_or_else(|e| panic!("an invalid schema {schema}: {e}"))
}

#[test]
fn every_example_validates_against_its_schema() {
    let doc = document_value();
    let mut checked = 0;
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        let reference = json!({"$ref": format!("#/components/schemas/{name}")});
        let validator = validator(&doc, &reference);
        for example in schema["examples"].as_array().into_iter().flatten() {
            let errors: Vec<String> = validator.iter_errors(example).map(|e| e.to_string()).collect();
            assert!(
                errors.is_empty(),
                "schema {name}: example {example} is invalid: {errors:?}"
            );
            checked += 1;
        }
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for param in op["parameters"].as_array().unwrap() {
                let validator = validator(&doc, &param["schema"]);
                let example = &param["example"];
                assert!(
                    validator.is_valid(example),
                    "{method} {path}: parameter {} example {example} is invalid",
                    param["name"]
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "{checked} examples checked");
}

#[test]
fn a_broken_example_is_caught() {
    let doc = document_value();
    let validator = validator(&doc, &json!({"$ref": "#/components/schemas/PaymentStatus"}));
    let mut example = doc["components"]["schemas"]["PaymentStatus"]["examples"][0].clone();
    assert!(validator.is_valid(&example));
    example["amount_fen"] = json!("1234");
    assert!(!validator.is_valid(&example), "a wrong type must fail");
}

#[test]
fn the_document_is_openapi_3_1_with_the_session_schemes() {
    let doc = document_value();
    assert_eq!(doc["openapi"], "3.1.0");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["session_cookie"]["name"], crate::account::COOKIE);
    let me = &doc["paths"]["/api/me"]["get"];
    assert_eq!(
        me["responses"]["401"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Error"
    );
    let register = &doc["components"]["schemas"]["RegisterBody"];
    assert_eq!(
        register["additionalProperties"], false,
        "generated from the type, deny_unknown_fields included"
    );
    assert!(register["required"].as_array().unwrap().contains(&json!("password")));
}
