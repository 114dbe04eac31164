//! The document's links: what an answer's fields name, for a client (or schemathesis's
//! stateful phase) to follow — an order number to its status and QR, a new record's id to
//! its reads, changes and deletion.

use serde_json::{Map, Value, json};

use super::Op;
use super::build::operation_id;

/// `(method, path, status)` of an answer → the operations its `field` feeds, as
/// `(method, path, parameter)`.
const LINKS: &[(&str, &str, u16, &str, &[(&str, &str, &str)])] = &[
    ("post", "/api/donations", 201, "order_no", &[
        ("get", "/api/payments/{order_no}", "order_no"),
        ("get", "/api/payments/{order_no}/qr.png", "order_no"),
        ("get", "/api/payments/{order_no}/qr.svg", "order_no"),
        ("get", "/pay/{order_no}", "order_no"),
        ("post", "/sandbox/pay/{order_no}", "order_no"),
        ("get", "/api/admin/payments/{order_no}", "order_no"),
        ("post", "/api/admin/payments/{order_no}/refund", "order_no"),
    ]),
    ("post", "/api/me/addresses", 201, "id", &[
        ("get", "/api/me/addresses/{id}", "id"),
        ("patch", "/api/me/addresses/{id}", "id"),
        ("delete", "/api/me/addresses/{id}", "id"),
    ]),
    ("post", "/api/community/posts", 201, "id", &[
        ("get", "/api/community/posts/{id}", "id"),
        ("get", "/api/community/posts/{id}/comments", "id"),
        ("post", "/api/community/posts/{id}/comments", "id"),
        ("put", "/api/community/posts/{id}/like", "id"),
        ("delete", "/api/community/posts/{id}", "id"),
        ("patch", "/api/admin/community/posts/{id}", "id"),
    ]),
    ("post", "/api/community/posts/{id}/comments", 201, "id", &[
        ("put", "/api/community/comments/{id}/like", "id"),
        ("delete", "/api/community/comments/{id}", "id"),
    ]),
    ("post", "/api/auth/register", 201, "user/id", &[
        ("get", "/api/users/{id}", "id"),
        ("put", "/api/users/{id}/follow", "id"),
        ("patch", "/api/admin/users/{id}", "id"),
    ]),
    ("post", "/api/images", 201, "id", &[("get", "/media/{id}", "id"), ("get", "/media/{id}/thumb", "id")]),
    ("post", "/api/admin/categories", 201, "id", &[
        ("patch", "/api/admin/categories/{id}", "id"),
        ("delete", "/api/admin/categories/{id}", "id"),
    ]),
    ("post", "/api/admin/boards", 201, "id", &[("patch", "/api/admin/boards/{id}", "id")]),
];

/// The links of `op`'s answer with `status`, if it has any.
pub fn links(op: &Op, status: u16) -> Option<Value> {
    let (.., field, targets) = LINKS
        .iter()
        .find(|(method, path, s, ..)| *method == op.method && *path == op.path && *s == status)?;
    let mut out = Map::new();
    for (method, path, param) in *targets {
        let id = operation_id(method, path);
        out.insert(
            id.clone(),
            json!({"operationId": id, "parameters": {*param: format!("$response.body#/{field}")}}),
        );
    }
    Some(Value::Object(out))
}

#[cfg(test)]
/// Every link's source and target, for the test that each names an operation.
pub fn all() -> impl Iterator<Item = (&'static str, &'static str, &'static str, &'static str)> {
    LINKS.iter().flat_map(|(method, path, _, _, targets)| {
        targets.iter().map(move |(m, p, _)| (*method, *path, *m, *p))
    })
}
