//! The document from the operation table and the components: paths, parameters, bodies,
//! every answer (the ones an operation names, and the errors its kind may answer), the
//! session's security schemes and the links a stateful client follows.

use serde_json::{Map, Value, json};

use super::{Access, Body, In, Kind, Op, operations, schemas};

const TAGS: &[&str] = &[
    "donations",
    "accounts",
    "media",
    "notifications",
    "community",
    "crowdfunding",
    "mall",
    "admin",
    "callbacks",
    "sandbox",
    "operations",
];

/// The OpenAPI 3.1 document.
pub fn document_value() -> Value {
    let mut paths = Map::new();
    for op in operations() {
        let item = paths.entry(op.path).or_insert_with(|| json!({}));
        item[op.method] = operation(op);
    }
    let tags: Vec<Value> = TAGS.iter().map(|t| json!({"name": t})).collect();
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "zhifu",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Donations paid by WeChat Pay and Alipay QR codes, accounts, media, \
                notifications, crowdfunding, the mall, the community and the admin API. Money is exchanged as yuan strings \
                and integer fen; times are RFC 3339. Errors are `{\"error\":{\"code\",\"message\"}}`.",
        },
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": schemas::components(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                    "description": "A session token (`zf_…`) from `POST /api/auth/login`."},
                "session_cookie": {"type": "apiKey", "in": "cookie", "name": crate::account::COOKIE,
                    "description": "The pages' HttpOnly cookie; believed on a POST/PATCH/PUT/DELETE only from the site's own pages."},
            },
        },
    })
}

/// A name OpenAPI tools can use: the method and the path's words.
pub fn operation_id(method: &str, path: &str) -> String {
    let mut id = String::from(method);
    for word in path
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        id.push('_');
        id.push_str(word);
    }
    if path == "/" {
        id.push_str("_root");
    }
    id
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("JSON in the operation table: {text}: {e}"))
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn operation(op: &Op) -> Value {
    let params: Vec<Value> = op
        .params
        .iter()
        .map(|p| {
            let at = match p.at {
                In::Path => "path",
                In::Query => "query",
                In::Header => "header",
            };
            let mut param = json!({"name": p.name, "in": at, "required": p.required,
                "schema": parse(p.schema), "example": parse(p.example)});
            if !p.description.is_empty() {
                param["description"] = json!(p.description);
            }
            param
        })
        .collect();
    let mut value = json!({
        "operationId": operation_id(op.method, op.path),
        "summary": op.summary,
        "tags": [op.tag],
        "x-route": op.route,
        "parameters": params,
        "responses": responses(op),
        "security": security(op.access),
    });
    if !op.errors.is_empty() {
        value["x-error-codes"] = json!(op.errors);
    }
    if let Some(body) = request_body(op.body) {
        value["requestBody"] = body;
    }
    value
}

fn security(access: Access) -> Value {
    match access {
        Access::Public | Access::Sandbox => json!([{}, {"bearer": []}, {"session_cookie": []}]),
        Access::Callback => json!([]),
        Access::User | Access::Reviewer | Access::Merchant | Access::Admin => {
            json!([{"bearer": []}, {"session_cookie": []}])
        }
    }
}

fn request_body(body: Body) -> Option<Value> {
    let json_of = |name: &str| json!({"schema": schema_ref(name)});
    let content = match body {
        Body::None => return None,
        Body::Json(name) | Body::OptionalJson(name) => json!({"application/json": json_of(name)}),
        Body::JsonOrForm(name, form) => json!({
            "application/json": json_of(name),
            "application/x-www-form-urlencoded": json_of(form),
        }),
        Body::Form(name) => json!({"application/x-www-form-urlencoded": json_of(name)}),
        Body::Raw(types) => {
            let mut content = Map::new();
            for ty in types {
                let media = if *ty == "application/x-www-form-urlencoded" {
                    json!({"schema": {"type": "object", "additionalProperties": {"type": "string"}}})
                } else if *ty == "multipart/form-data" {
                    json!({"schema": {"type": "object", "required": ["file"],
                        "properties": {"file": {"type": "string", "contentMediaType": "application/octet-stream"}}}})
                } else {
                    json!({"schema": {}})
                };
                content.insert(ty.to_string(), media);
            }
            Value::Object(content)
        }
    };
    let required = !matches!(body, Body::OptionalJson(_));
    Some(json!({"required": required, "content": content}))
}

fn responses(op: &Op) -> Value {
    let mut out = Map::new();
    for answer in op.answers {
        let mut response = json!({"description": answer.description});
        match answer.kind {
            Kind::Json(name) => response["content"] = json!({"application/json": {"schema": schema_ref(name)}}),
            Kind::Html => response["content"] = json!({"text/html": {"schema": {"type": "string"}}}),
            Kind::Bytes(ty) => response["content"] = json!({ty: {"schema": {}}}),
            Kind::Empty => {}
            Kind::Redirect => {
                response["headers"] = json!({"Location": {"schema": {"type": "string"}, "description": "where to go"}})
            }
        }
        if let Some(links) = super::links::links(op, answer.status) {
            response["links"] = links;
        }
        out.insert(answer.status.to_string(), response);
    }
    for (status, description) in error_statuses(op) {
        out.entry(status.to_string())
            .or_insert_with(|| error_answer(op, description));
    }
    Value::Object(out)
}

/// The error statuses an operation of this kind may answer, with what they mean here.
fn error_statuses(op: &Op) -> Vec<(u16, String)> {
    let signed_in = matches!(
        op.access,
        Access::User | Access::Reviewer | Access::Merchant | Access::Admin
    );
    let has_body = !matches!(op.body, Body::None);
    let has_path = op.params.iter().any(|p| p.at == In::Path);
    let codes = |status: u16| -> String {
        let named: Vec<&str> = op.errors.iter().copied().filter(|c| code_status(c) == status).collect();
        if named.is_empty() {
            String::new()
        } else {
            format!(": `{}`", named.join("`, `"))
        }
    };
    let mut out = vec![(400, format!("malformed request (`malformed_request`){}", codes(400)))];
    if signed_in || op.errors.iter().any(|c| code_status(c) == 401) {
        out.push((401, format!("no valid session (`unauthorized`){}", codes(401))));
    }
    if signed_in {
        out.push((403, "the role or ownership is wrong (`forbidden`)".to_string()));
    }
    if has_path || signed_in || op.access == Access::Sandbox {
        out.push((404, "no such record, or someone else's (`not_found`)".to_string()));
    }
    if has_body {
        out.push((408, "the body did not arrive in time (`body_timeout`)".to_string()));
        out.push((413, "the body is too large (`payload_too_large`)".to_string()));
        out.push((
            415,
            format!("wrong content type (`unsupported_media_type`){}", codes(415)),
        ));
    }
    if op.errors.iter().any(|c| code_status(c) == 409) {
        out.push((409, format!("conflict{}", codes(409))));
    }
    out.push((422, format!("an invalid field{}", codes(422))));
    out.push((
        429,
        format!("rate limited (`rate_limited`, with `Retry-After`){}", codes(429)),
    ));
    out.push((
        503,
        format!(
            "the database or provider is unavailable (`service_unavailable`){}",
            codes(503)
        ),
    ));
    out
}

/// The status an operation-specific error code is answered with.
pub fn code_status(code: &str) -> u16 {
    match code {
        "invalid_credentials" => 401,
        "account_locked" => 429,
        "unsupported_image" => 415,
        "provider_unavailable" => 503,
        c if c.ends_with("_taken")
            || c.ends_with("_in_use")
            || c.ends_with("_closed")
            || c.ends_with("_not_paid")
            || c.starts_with("too_many")
            || super::ops_crowdfunding::CONFLICTS.contains(&c)
            || super::ops_mall::CONFLICTS.contains(&c)
            || matches!(
                c,
                "email_verified" | "password_changed" | "registration_in_progress" | "sandbox_refused"
            ) =>
        {
            409
        }
        _ => 422,
    }
}

fn error_answer(op: &Op, description: String) -> Value {
    let error = json!({"schema": schema_ref("Error")});
    let content = match op.access {
        // Provider callbacks answer in the provider's own format.
        Access::Callback => {
            json!({"application/json": {"schema": schema_ref("CallbackFailure")}, "text/plain": {"schema": {"type": "string"}}})
        }
        _ if op.answers.iter().any(|a| matches!(a.kind, Kind::Html | Kind::Redirect)) => {
            json!({"application/json": error, "text/html": {"schema": {"type": "string"}}})
        }
        _ => json!({"application/json": error}),
    };
    json!({"description": description, "content": content})
}
