//! The document's links: what an answer's fields name, for a client (or schemathesis's
//! stateful phase) to follow — an order number to its status and QR, a new record's id to
//! its reads, changes and deletion.

use serde_json::{Map, Value, json};

use super::Op;
use super::build::operation_id;

/// A link's target: method, path, and each parameter with the answer's field that fills it
/// (a JSON pointer into the body, or `request:` and the source request's path parameter).
type Target = (&'static str, &'static str, &'static [(&'static str, &'static str)]);

const ID: &[(&str, &str)] = &[("id", "/id")];
const ORDER: &[(&str, &str)] = &[("order_no", "/order_no")];
/// A new comment: its post (the request's `{id}`) and its own id.
const COMMENT: &[(&str, &str)] = &[("post_id", "request:id"), ("id", "/id")];
const POST_TARGET: &[(&str, &str)] = &[("target", "const:post"), ("id", "/id")];

/// `(method, path, status)` of an answer → the operations it feeds.
const LINKS: &[(&str, &str, u16, &[Target])] = &[
    (
        "post",
        "/api/donations",
        201,
        &[
            ("get", "/api/payments/{order_no}", ORDER),
            ("get", "/api/payments/{order_no}/qr.png", ORDER),
            ("get", "/api/payments/{order_no}/qr.svg", ORDER),
            ("get", "/pay/{order_no}", ORDER),
            ("post", "/sandbox/pay/{order_no}", ORDER),
            ("get", "/api/admin/payments/{order_no}", ORDER),
            ("post", "/api/admin/payments/{order_no}/refund", ORDER),
            ("get", "/api/me/donations/{order_no}", ORDER),
        ],
    ),
    (
        "post",
        "/api/me/addresses",
        201,
        &[
            ("get", "/api/me/addresses/{id}", ID),
            ("patch", "/api/me/addresses/{id}", ID),
            ("delete", "/api/me/addresses/{id}", ID),
        ],
    ),
    (
        "post",
        "/api/community/posts",
        201,
        &[
            ("get", "/api/community/posts/{id}", ID),
            ("get", "/community/posts/{id}", ID),
            ("get", "/api/community/posts/{id}/comments", ID),
            ("post", "/api/community/posts/{id}/comments", ID),
            ("put", "/api/community/posts/{id}/like", ID),
            ("delete", "/api/community/posts/{id}/like", ID),
            ("delete", "/api/community/posts/{id}", ID),
            ("patch", "/api/admin/community/posts/{id}", ID),
            ("post", "/api/admin/community/{target}/{id}/hide", POST_TARGET),
            ("post", "/api/admin/community/{target}/{id}/unhide", POST_TARGET),
        ],
    ),
    (
        "post",
        "/api/community/posts/{id}/comments",
        201,
        &[
            ("get", "/community/comments/{id}", ID),
            ("put", "/api/community/comments/{id}/like", ID),
            ("delete", "/api/community/comments/{id}/like", ID),
            ("put", "/api/community/posts/{post_id}/comments/{id}/like", COMMENT),
            ("delete", "/api/community/posts/{post_id}/comments/{id}/like", COMMENT),
            ("delete", "/api/community/posts/{post_id}/comments/{id}", COMMENT),
            ("delete", "/api/community/comments/{id}", ID),
        ],
    ),
    (
        "post",
        "/api/community/reports",
        201,
        &[("post", "/api/admin/reports/{id}/dismiss", ID)],
    ),
    (
        "post",
        "/api/auth/register",
        201,
        &[
            ("get", "/api/users/{id}", &[("id", "/user/id")]),
            ("get", "/users/{id}", &[("id", "/user/id")]),
            ("put", "/api/users/{id}/follow", &[("id", "/user/id")]),
            ("get", "/api/users/{id}/followers", &[("id", "/user/id")]),
            ("patch", "/api/admin/users/{id}", &[("id", "/user/id")]),
        ],
    ),
    (
        "post",
        "/api/images",
        201,
        &[("get", "/media/{id}", ID), ("get", "/media/{id}/thumb", ID)],
    ),
    (
        "post",
        "/api/admin/categories",
        201,
        &[
            ("patch", "/api/admin/categories/{id}", ID),
            ("delete", "/api/admin/categories/{id}", ID),
        ],
    ),
    (
        "post",
        "/api/admin/boards",
        201,
        &[("patch", "/api/admin/boards/{id}", ID)],
    ),
];

const PROJECT_BACKING: &[(&str, &str)] = &[("id", "request:id"), ("order_no", "/backing/order_no")];
const BACKING_ORDER: &[(&str, &str)] = &[("order_no", "/backing/order_no")];
const MALL_ORDER: &[(&str, &str)] = &[("order_no", "/order/order_no")];

/// The links of crowdfunding and the mall.
const MODULE_LINKS: &[(&str, &str, u16, &[Target])] = &[
    (
        "post",
        "/api/projects",
        201,
        &[
            ("get", "/api/projects/{id}", ID),
            ("patch", "/api/projects/{id}", ID),
            ("get", "/projects/{id}", ID),
            ("get", "/projects/{id}/edit", ID),
            ("get", "/api/projects/{id}/backers", ID),
            ("get", "/api/projects/{id}/updates", ID),
            ("post", "/api/projects/{id}/updates", ID),
            ("put", "/api/projects/{id}/follow", ID),
            ("delete", "/api/projects/{id}/follow", ID),
            ("get", "/api/projects/{id}/backings", ID),
            ("post", "/api/projects/{id}/backings", ID),
            ("get", "/api/projects/{id}/report.csv", ID),
            ("post", "/api/admin/projects/{id}/review", ID),
        ],
    ),
    (
        "post",
        "/api/projects/{id}/backings",
        201,
        &[
            ("get", "/api/payments/{order_no}", BACKING_ORDER),
            ("get", "/pay/{order_no}", BACKING_ORDER),
            ("post", "/sandbox/pay/{order_no}", BACKING_ORDER),
            ("post", "/api/projects/{id}/backings/{order_no}/ship", PROJECT_BACKING),
            (
                "post",
                "/api/projects/{id}/backings/{order_no}/deliver",
                PROJECT_BACKING,
            ),
        ],
    ),
    (
        "post",
        "/api/mall/products",
        201,
        &[
            ("get", "/api/mall/products/{id}", ID),
            ("patch", "/api/mall/products/{id}", ID),
            ("get", "/mall/products/{id}", ID),
            ("get", "/merchant/products/{id}", ID),
            ("put", "/api/mall/favorites/{id}", ID),
            ("delete", "/api/mall/favorites/{id}", ID),
        ],
    ),
    (
        "post",
        "/api/mall/orders",
        201,
        &[
            ("get", "/api/mall/orders/{order_no}", MALL_ORDER),
            ("get", "/mall/orders/{order_no}", MALL_ORDER),
            ("get", "/api/payments/{order_no}", MALL_ORDER),
            ("post", "/sandbox/pay/{order_no}", MALL_ORDER),
            ("post", "/api/mall/orders/{order_no}/cancel", MALL_ORDER),
            ("post", "/api/mall/orders/{order_no}/confirm", MALL_ORDER),
            ("post", "/api/mall/orders/{order_no}/refund-request", MALL_ORDER),
            ("post", "/api/merchant/orders/{order_no}/ship", MALL_ORDER),
            ("post", "/api/merchant/orders/{order_no}/refund", MALL_ORDER),
        ],
    ),
    (
        "post",
        "/api/admin/mall/categories",
        201,
        &[
            ("patch", "/api/admin/mall/categories/{id}", ID),
            ("delete", "/api/admin/mall/categories/{id}", ID),
        ],
    ),
    (
        "post",
        "/api/admin/coupons",
        201,
        &[("post", "/api/mall/coupons/{id}/claim", ID)],
    ),
];

/// A parameter's runtime expression.
fn expression(source: &str) -> Value {
    if let Some(param) = source.strip_prefix("request:") {
        json!(format!("$request.path.{param}"))
    } else if let Some(value) = source.strip_prefix("const:") {
        json!(value)
    } else {
        json!(format!("$response.body#{source}"))
    }
}

/// The links of `op`'s answer with `status`, if it has any.
pub fn links(op: &Op, status: u16) -> Option<Value> {
    let (.., targets) = LINKS
        .iter()
        .chain(MODULE_LINKS)
        .find(|(method, path, s, _)| *method == op.method && *path == op.path && *s == status)?;
    let mut out = Map::new();
    for (method, path, params) in *targets {
        let id = operation_id(method, path);
        let parameters: Map<String, Value> = params
            .iter()
            .map(|(name, source)| (name.to_string(), expression(source)))
            .collect();
        out.insert(id.clone(), json!({"operationId": id, "parameters": parameters}));
    }
    Some(Value::Object(out))
}

/// Every link's source and target, for the test that each names an operation.
#[cfg(test)]
pub fn all() -> impl Iterator<Item = (&'static str, &'static str, &'static str, &'static str)> {
    LINKS
        .iter()
        .chain(MODULE_LINKS)
        .flat_map(|(method, path, _, targets)| targets.iter().map(move |(m, p, _)| (*method, *path, *m, *p)))
}
