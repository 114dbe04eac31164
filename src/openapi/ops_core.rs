//! The operations of the donation core, the account module, media and notifications.
//! One entry per method and path; `route` is the router's name for it. Adding a route: add
//! its entry here (or in `ops_more`), naming its answers' schemas in `schemas.json`.

use super::Access::{Callback, Public, Sandbox, User};
use super::{Access, Answer, Body, In, Kind, Op, Param};

/// A path parameter.
pub(super) const fn path(name: &'static str, schema: &'static str, example: &'static str) -> Param {
    Param {
        name,
        at: In::Path,
        required: true,
        schema,
        example,
        description: "",
    }
}

/// An optional query parameter.
pub(super) const fn query(name: &'static str, schema: &'static str, example: &'static str) -> Param {
    Param {
        name,
        at: In::Query,
        required: false,
        schema,
        example,
        description: "",
    }
}

pub(super) const fn ok(status: u16, kind: Kind, description: &'static str) -> Answer {
    Answer {
        status,
        kind,
        description,
    }
}

pub(super) const ID: &str = r#"{"type":"integer","minimum":1}"#;
pub(super) const ORDER_NO: &str = r#"{"type":"string","pattern":"^[0-9A-Za-z_-]{6,32}$"}"#;
pub(super) const EX_ORDER: &str = r#""ZF0193A4B2C3D47E8F9A0B1C2D3E4F""#;
pub(super) const P_ID: Param = path("id", ID, "1");
pub(super) const P_ORDER: Param = path("order_no", ORDER_NO, EX_ORDER);
pub(super) const PAGE: Param = query("page", r#"{"type":"integer","minimum":1}"#, "1");
pub(super) const SIZE: Param = query("size", r#"{"type":"integer","minimum":1,"maximum":100}"#, "20");
pub(super) const IDEMPOTENCY_KEY: Param = Param {
    name: "Idempotency-Key",
    at: In::Header,
    required: false,
    schema: r#"{"type":"string","minLength":1,"maxLength":255,"pattern":"^[\\x20-\\x7e]+$"}"#,
    example: r#""order-42-try-1""#,
    description: "The same key with the same body answers what the first request answered.",
};
const CATEGORY: Param = query("category_id", ID, "1");

const HTML: &[Answer] = &[ok(200, Kind::Html, "the page")];
const JSON_PAGE: &[Answer] = &[ok(200, Kind::Json("Page"), "a page of the list")];
const NO_CONTENT: &[Answer] = &[ok(204, Kind::Empty, "done")];

/// An operation with the common defaults: public, no parameters, no body, no extra errors.
const fn op(
    route: &'static str,
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    answers: &'static [Answer],
) -> Op {
    Op {
        route,
        method,
        path,
        tag,
        summary,
        access: Access::Public,
        params: &[],
        body: Body::None,
        answers,
        errors: &[],
    }
}

/// `base` with another access, parameters and body.
pub(super) const fn with(base: Op, access: Access, params: &'static [Param], body: Body) -> Op {
    Op {
        access,
        params,
        body,
        ..base
    }
}

/// `base` naming its own error codes.
pub(super) const fn errors(base: Op, errors: &'static [&'static str]) -> Op {
    Op { errors, ..base }
}

pub(super) const fn get(
    route: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    answers: &'static [Answer],
) -> Op {
    op(route, "get", path, tag, summary, answers)
}

pub(super) const fn post(
    route: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    answers: &'static [Answer],
) -> Op {
    op(route, "post", path, tag, summary, answers)
}

pub(super) const fn put(
    route: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    answers: &'static [Answer],
) -> Op {
    op(route, "put", path, tag, summary, answers)
}

pub(super) const fn patch(
    route: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    answers: &'static [Answer],
) -> Op {
    op(route, "patch", path, tag, summary, answers)
}

pub(super) const fn delete(
    route: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    answers: &'static [Answer],
) -> Op {
    op(route, "delete", path, tag, summary, answers)
}

const D: &str = "donations";
const A: &str = "accounts";
const O: &str = "operations";
const S: &str = "sandbox";

pub(super) const OPS: &[Op] = &[
    // The donation core.
    get("index", "/", D, "The donation home page", HTML),
    get(
        "categories",
        "/api/categories",
        D,
        "Donation categories",
        &[ok(200, Kind::Json("Categories"), "the categories")],
    ),
    errors(
        with(
            post(
                "create_donation",
                "/api/donations",
                D,
                "Create a donation and its QR payment",
                &[
                    ok(201, Kind::Json("DonationCreated"), "the order, pending"),
                    ok(303, Kind::Redirect, "a form post: to the pay page"),
                ],
            ),
            Public,
            &[IDEMPOTENCY_KEY],
            Body::JsonOrForm("DonationRequest", "DonationForm"),
        ),
        &[
            "invalid_amount",
            "invalid_channel",
            "channel_disabled",
            "invalid_category",
            "invalid_donor_name",
            "invalid_message",
            "invalid_anonymous",
            "invalid_idempotency_key",
            "idempotency_key_reused",
            "idempotency_key_in_use",
            "provider_unavailable",
        ],
    ),
    with(
        get(
            "pay_page",
            "/pay/{order_no}",
            D,
            "The pay page: QR, amount, live status",
            HTML,
        ),
        Public,
        &[P_ORDER],
        Body::None,
    ),
    errors(
        with(
            get(
                "payment_status",
                "/api/payments/{order_no}",
                D,
                "Payment status; `wait` long-polls while pending",
                &[ok(200, Kind::Json("PaymentStatus"), "the status")],
            ),
            Public,
            &[
                P_ORDER,
                query("wait", r#"{"type":"integer","minimum":1,"maximum":30}"#, "5"),
            ],
            Body::None,
        ),
        &["invalid_wait"],
    ),
    with(
        get(
            "payment_qr",
            "/api/payments/{order_no}/qr.png",
            D,
            "The QR code as PNG",
            &[ok(200, Kind::Bytes("image/png"), "the QR code")],
        ),
        Public,
        &[P_ORDER],
        Body::None,
    ),
    with(
        get(
            "payment_qr",
            "/api/payments/{order_no}/qr.svg",
            D,
            "The QR code as SVG",
            &[ok(200, Kind::Bytes("image/svg+xml"), "the QR code")],
        ),
        Public,
        &[P_ORDER],
        Body::None,
    ),
    errors(
        with(
            get(
                "rankings",
                "/api/rankings",
                D,
                "Donor ranking",
                &[ok(200, Kind::Json("Ranking"), "a page of the ranking")],
            ),
            Public,
            &[
                CATEGORY,
                query(
                    "range",
                    r#"{"type":"string","enum":["day","week","month","all"]}"#,
                    r#""week""#,
                ),
                PAGE,
                SIZE,
            ],
            Body::None,
        ),
        &["invalid_range", "invalid_page", "invalid_size", "invalid_category"],
    ),
    errors(
        with(
            get(
                "recent_donations",
                "/api/donations/recent",
                D,
                "Latest paid donations",
                &[ok(200, Kind::Json("RecentDonations"), "newest first")],
            ),
            Public,
            &[
                CATEGORY,
                query("limit", r#"{"type":"integer","minimum":1,"maximum":100}"#, "20"),
            ],
            Body::None,
        ),
        &["invalid_limit", "invalid_category"],
    ),
    get(
        "stats",
        "/api/stats",
        D,
        "Totals per category and overall",
        &[ok(200, Kind::Json("Stats"), "the totals")],
    ),
    get(
        "stats_chart",
        "/api/stats/chart.svg",
        D,
        "Donations per day, last 30 days (SVG)",
        &[ok(200, Kind::Bytes("image/svg+xml"), "the chart")],
    ),
    with(
        get(
            "set_language",
            "/lang/{code}",
            D,
            "Pick the pages' language and go back",
            &[ok(303, Kind::Redirect, "back to `next`")],
        ),
        Public,
        &[
            path("code", r#"{"type":"string","enum":["zh","en"]}"#, r#""en""#),
            query("next", r#"{"type":"string"}"#, r#""/""#),
        ],
        Body::None,
    ),
    get(
        "openapi",
        "/api/openapi.json",
        O,
        "This document",
        &[ok(200, Kind::Bytes("application/json"), "the OpenAPI 3.1 document")],
    ),
    get("api_docs", "/api/docs", O, "This document as a page", HTML),
    // Operations.
    get(
        "healthz",
        "/healthz",
        O,
        "Liveness",
        &[ok(200, Kind::Json("Health"), "serving")],
    ),
    get(
        "readyz",
        "/readyz",
        O,
        "Readiness: the database answers",
        &[ok(200, Kind::Json("Health"), "ready")],
    ),
    get(
        "metrics",
        "/metrics",
        O,
        "Prometheus metrics",
        &[ok(200, Kind::Bytes("text/plain"), "the metrics")],
    ),
    with(
        get(
            "static",
            "/static/{file}",
            O,
            "An embedded file (CSS, JS, icons)",
            &[
                ok(200, Kind::Bytes("*/*"), "the file, with its own type"),
                ok(304, Kind::Empty, "not modified"),
            ],
        ),
        Public,
        &[path(
            "file",
            r#"{"type":"string","pattern":"^[A-Za-z0-9_-][A-Za-z0-9._-]*$"}"#,
            r#""app.css""#,
        )],
        Body::None,
    ),
    // Provider callbacks, in the providers' own protocols.
    with(
        post(
            "notify",
            "/notify/wechat",
            "callbacks",
            "WeChat Pay v3 notification (payment, refund)",
            &[
                ok(204, Kind::Empty, "acknowledged once durable"),
                ok(200, Kind::Empty, "acknowledged"),
                ok(400, Kind::Json("CallbackFailure"), "refused"),
                ok(401, Kind::Json("CallbackFailure"), "refused: signature"),
            ],
        ),
        Callback,
        &[],
        Body::Raw(&["application/json"]),
    ),
    with(
        post(
            "notify",
            "/notify/alipay",
            "callbacks",
            "Alipay asynchronous notification (RSA2)",
            &[ok(200, Kind::Bytes("text/plain"), "`success`, or `fail` when refused")],
        ),
        Callback,
        &[],
        Body::Raw(&["application/x-www-form-urlencoded"]),
    ),
    // The sandbox's emulators.
    with(
        post(
            "sandbox_pay",
            "/sandbox/pay/{order_no}",
            S,
            "The emulator pays the order and sends the signed callback",
            &[ok(200, Kind::Json("Any"), "paid")],
        ),
        Sandbox,
        &[P_ORDER],
        Body::None,
    ),
    with(
        post(
            "sandbox_provider",
            "/sandbox/wechat/v3/pay/transactions/native",
            S,
            "WeChat Pay emulator: create a Native order (signed)",
            &[
                ok(200, Kind::Json("Any"), "the code_url"),
                ok(401, Kind::Json("Any"), "not signed by the merchant's key"),
            ],
        ),
        Sandbox,
        &[],
        Body::Raw(&["application/json"]),
    ),
    with(
        post(
            "sandbox_provider",
            "/sandbox/alipay/gateway.do",
            S,
            "Alipay emulator's gateway (signed)",
            &[ok(
                200,
                Kind::Bytes("text/html"),
                "the gateway's answer (JSON, as Alipay's gateway labels it)",
            )],
        ),
        Sandbox,
        &[],
        Body::Raw(&["application/x-www-form-urlencoded"]),
    ),
    // Accounts.
    errors(
        with(
            post(
                "login",
                "/api/auth/login",
                A,
                "Password sign-in",
                &[ok(200, Kind::Json("Session"), "a new session, also as the cookie")],
            ),
            Public,
            &[],
            Body::Json("LoginBody"),
        ),
        &["invalid_credentials", "account_locked"],
    ),
    with(
        post(
            "wechat_login",
            "/api/auth/wechat",
            A,
            "Sign in with a WeChat code",
            &[ok(200, Kind::Json("Session"), "a new session")],
        ),
        Public,
        &[],
        Body::Json("WechatBody"),
    ),
    with(
        post("logout", "/api/auth/logout", A, "End the session", NO_CONTENT),
        User,
        &[],
        Body::None,
    ),
    errors(
        with(
            post(
                "register",
                "/api/auth/register",
                A,
                "Register a password account",
                &[ok(201, Kind::Json("UserEnvelope"), "the new user")],
            ),
            Public,
            &[],
            Body::Json("RegisterBody"),
        ),
        &[
            "username_taken",
            "email_taken",
            "invalid_username",
            "invalid_email",
            "invalid_display_name",
            "weak_password",
        ],
    ),
    get("login_page", "/login", A, "The sign-in page", HTML),
    with(
        post(
            "login_form",
            "/login",
            A,
            "The sign-in page's form",
            &[
                ok(303, Kind::Redirect, "signed in: to `next`"),
                ok(200, Kind::Html, "the page again with the reason"),
                ok(401, Kind::Html, "wrong username or password: the page again"),
                ok(429, Kind::Html, "locked or too many attempts: the page again"),
            ],
        ),
        Public,
        &[],
        Body::Form("LoginBody"),
    ),
    with(
        get(
            "wechat_authorize",
            "/auth/wechat",
            A,
            "Start the WeChat web sign-in",
            &[ok(303, Kind::Redirect, "to WeChat")],
        ),
        Public,
        &[query("next", r#"{"type":"string"}"#, r#""/""#)],
        Body::None,
    ),
    with(
        get(
            "wechat_callback",
            "/auth/wechat/callback",
            A,
            "Where WeChat sends the browser back",
            &[
                ok(303, Kind::Redirect, "signed in"),
                ok(200, Kind::Html, "refused: the page says why"),
            ],
        ),
        Public,
        &[
            query("code", r#"{"type":"string"}"#, r#""abc""#),
            query("state", r#"{"type":"string"}"#, r#""xyz""#),
        ],
        Body::None,
    ),
    with(
        get(
            "verify_email",
            "/auth/verify-email",
            A,
            "Open a verification link",
            &[
                ok(200, Kind::Html, "verified"),
                ok(404, Kind::Html, "an unknown link"),
                ok(410, Kind::Html, "used or expired"),
            ],
        ),
        Public,
        &[query("token", r#"{"type":"string"}"#, r#""t""#)],
        Body::None,
    ),
    with(
        get(
            "me",
            "/api/me",
            A,
            "The signed-in user",
            &[ok(200, Kind::Json("User"), "the profile")],
        ),
        User,
        &[],
        Body::None,
    ),
    errors(
        with(
            patch(
                "me",
                "/api/me",
                A,
                "Change the display name, avatar or bio",
                &[ok(200, Kind::Json("User"), "the profile")],
            ),
            User,
            &[],
            Body::Json("ProfilePatch"),
        ),
        &["invalid_display_name", "invalid_bio", "unknown_image", "invalid_image"],
    ),
    errors(
        with(
            post(
                "me_password",
                "/api/me/password",
                A,
                "Change the password (ends every session)",
                &[ok(200, Kind::Json("Session"), "a new session")],
            ),
            User,
            &[],
            Body::Json("PasswordBody"),
        ),
        &["invalid_credentials", "weak_password", "password_changed"],
    ),
    errors(
        with(
            post(
                "resend_verification",
                "/api/me/email/verify",
                A,
                "Mail a new verification link",
                &[ok(202, Kind::Empty, "mailed")],
            ),
            User,
            &[],
            Body::None,
        ),
        &["email_verified"],
    ),
    with(
        get("my_donations", "/api/me/donations", A, "My donations", JSON_PAGE),
        User,
        &[PAGE, SIZE],
        Body::None,
    ),
    with(
        get(
            "my_donation",
            "/api/me/donations/{order_no}",
            A,
            "One of my donations",
            &[ok(200, Kind::Json("Record"), "the donation")],
        ),
        User,
        &[P_ORDER],
        Body::None,
    ),
    get(
        "me_page",
        "/me",
        A,
        "My page",
        &[ok(200, Kind::Html, "the page"), ok(303, Kind::Redirect, "to sign in")],
    ),
    with(
        get(
            "user_profile",
            "/api/users/{id}",
            A,
            "A public profile",
            &[ok(200, Kind::Json("Profile"), "the profile")],
        ),
        Public,
        &[P_ID],
        Body::None,
    ),
    errors(
        with(
            put(
                "follow",
                "/api/users/{id}/follow",
                A,
                "Follow a user (idempotent)",
                &[ok(200, Kind::Json("Profile"), "their profile")],
            ),
            User,
            &[P_ID],
            Body::None,
        ),
        &["cannot_follow_self"],
    ),
    with(
        delete(
            "follow",
            "/api/users/{id}/follow",
            A,
            "Unfollow a user (idempotent)",
            &[
                ok(200, Kind::Json("Profile"), "their profile"),
                ok(
                    204,
                    Kind::Empty,
                    "unfollowed a disabled account, which has no public profile",
                ),
            ],
        ),
        User,
        &[P_ID],
        Body::None,
    ),
    with(
        get(
            "followers",
            "/api/users/{id}/followers",
            A,
            "Who follows a user",
            JSON_PAGE,
        ),
        Public,
        &[P_ID, PAGE, SIZE],
        Body::None,
    ),
    with(
        get(
            "following",
            "/api/users/{id}/following",
            A,
            "Whom a user follows",
            JSON_PAGE,
        ),
        Public,
        &[P_ID, PAGE, SIZE],
        Body::None,
    ),
    with(
        get(
            "addresses",
            "/api/me/addresses",
            A,
            "My address book",
            &[ok(200, Kind::Json("Items"), "default first")],
        ),
        User,
        &[],
        Body::None,
    ),
    errors(
        with(
            post(
                "addresses",
                "/api/me/addresses",
                A,
                "Add an address",
                &[ok(201, Kind::Json("Address"), "the address")],
            ),
            User,
            &[],
            Body::Json("AddressBody"),
        ),
        &["too_many_addresses"],
    ),
    with(
        get(
            "address",
            "/api/me/addresses/{id}",
            A,
            "One of my addresses",
            &[ok(200, Kind::Json("Address"), "the address")],
        ),
        User,
        &[P_ID],
        Body::None,
    ),
    errors(
        with(
            patch(
                "address",
                "/api/me/addresses/{id}",
                A,
                "Change an address",
                &[ok(200, Kind::Json("Address"), "the address")],
            ),
            User,
            &[P_ID],
            Body::Json("AddressBody"),
        ),
        &["default_required"],
    ),
    with(
        delete("address", "/api/me/addresses/{id}", A, "Delete an address", NO_CONTENT),
        User,
        &[P_ID],
        Body::None,
    ),
    with(
        get(
            "sandbox_mail",
            "/sandbox/mail",
            S,
            "The mail outbox",
            &[ok(200, Kind::Json("Mail"), "newest first")],
        ),
        Sandbox,
        &[],
        Body::None,
    ),
    with(
        get(
            "sandbox_wechat_login",
            "/sandbox/wxlogin/sns/jscode2session",
            S,
            "WeChat sign-in emulator: redeem a mini-program code",
            &[ok(200, Kind::Json("Any"), "WeChat's answer")],
        ),
        Sandbox,
        &[query("js_code", r#"{"type":"string"}"#, r#""c""#)],
        Body::None,
    ),
    with(
        post(
            "sandbox_wechat_login",
            "/sandbox/wxlogin/code",
            S,
            "WeChat sign-in emulator: mint a code",
            &[ok(200, Kind::Json("Any"), "the code")],
        ),
        Sandbox,
        &[],
        Body::Json("MintCode"),
    ),
    // Media.
    errors(
        with(
            post(
                "image_upload",
                "/api/images",
                "media",
                "Upload an image (re-encoded, metadata stripped)",
                &[ok(201, Kind::Json("Image"), "the stored image")],
            ),
            User,
            &[],
            Body::Raw(&[
                "multipart/form-data",
                "image/jpeg",
                "image/png",
                "image/webp",
                "image/gif",
            ]),
        ),
        &["unsupported_image", "image_too_large"],
    ),
    with(
        get(
            "image",
            "/media/{id}",
            "media",
            "An image",
            &[
                ok(200, Kind::Bytes("image/*"), "the image"),
                ok(304, Kind::Empty, "not modified"),
            ],
        ),
        Public,
        &[path(
            "id",
            r#"{"type":"string","pattern":"^[0-9a-f]{64}$"}"#,
            r#""9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08""#,
        )],
        Body::None,
    ),
    with(
        get(
            "image_thumb",
            "/media/{id}/thumb",
            "media",
            "An image's thumbnail",
            &[
                ok(200, Kind::Bytes("image/*"), "the thumbnail"),
                ok(304, Kind::Empty, "not modified"),
            ],
        ),
        Public,
        &[path(
            "id",
            r#"{"type":"string","pattern":"^[0-9a-f]{64}$"}"#,
            r#""9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08""#,
        )],
        Body::None,
    ),
    // Notifications.
    with(
        get(
            "notifications",
            "/api/me/notifications",
            "notifications",
            "My notifications",
            JSON_PAGE,
        ),
        User,
        &[query("unread", r#"{"type":"boolean"}"#, "true"), PAGE, SIZE],
        Body::None,
    ),
    errors(
        with(
            get(
                "notifications_unread",
                "/api/me/notifications/unread-count",
                "notifications",
                "Unread count; `wait` long-polls until it differs from `since`",
                &[ok(200, Kind::Json("UnreadCount"), "the count")],
            ),
            User,
            &[
                query("wait", r#"{"type":"integer","minimum":1,"maximum":30}"#, "5"),
                query("since", r#"{"type":"integer","minimum":0}"#, "0"),
            ],
            Body::None,
        ),
        &["invalid_wait", "invalid_since"],
    ),
    with(
        post(
            "notifications_read",
            "/api/me/notifications/read",
            "notifications",
            "Mark some or all read",
            NO_CONTENT,
        ),
        User,
        &[],
        Body::Json("ReadBody"),
    ),
    get(
        "notifications_page",
        "/me/notifications",
        "notifications",
        "My notifications page",
        &[ok(200, Kind::Html, "the page"), ok(303, Kind::Redirect, "to sign in")],
    ),
];
