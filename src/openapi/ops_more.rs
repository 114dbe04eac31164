//! The operations of the admin API and pages and of the community. Same shape as `ops_core`.

use super::Access::{Admin, Public, User};
use super::ops_core::{
    IDEMPOTENCY_KEY, P_ID, P_ORDER, PAGE, SIZE, delete, errors, get, ok, patch, path, post, put, query, with,
};
use super::{Answer, Body, Kind, Op, Param};

const HTML: &[Answer] = &[
    ok(200, Kind::Html, "the page"),
    ok(303, Kind::Redirect, "to sign in first"),
];
const JSON_PAGE: &[Answer] = &[ok(200, Kind::Json("Page"), "a page of the list")];
const RECORD: &[Answer] = &[ok(200, Kind::Json("Record"), "the record")];
const CREATED: &[Answer] = &[ok(201, Kind::Json("Record"), "the new record")];
const NO_CONTENT: &[Answer] = &[ok(204, Kind::Empty, "done")];
const LIKE: &[Answer] = &[ok(200, Kind::Json("Like"), "the like and the count")];

const AD: &str = "admin";
const C: &str = "community";
const TEXT: &str = r#"{"type":"string"}"#;
const DATE: &str = r#"{"type":"string","examples":["2026-12-01"]}"#;
const P_POST: Param = path("post_id", r#"{"type":"integer","minimum":1}"#, "1");
const SORT: Param = query("sort", r#"{"type":"string","enum":["new","hot","top"]}"#, r#""hot""#);
const RANGE: Param = query("range", r#"{"type":"string","enum":["day","week","all"]}"#, r#""week""#);
const PAYMENT_FILTERS: &[Param] = &[
    query("order_no", TEXT, r#""ZF0193""#),
    // Empty counts as not given (the admin pages' filter forms send every field).
    query(
        "status",
        r#"{"type":"string","enum":["","pending","paid","closed","refunded"]}"#,
        r#""paid""#,
    ),
    query(
        "channel",
        r#"{"type":"string","enum":["","wechat","alipay"]}"#,
        r#""wechat""#,
    ),
    query("from", DATE, r#""2026-12-01""#),
    query("to", DATE, r#""2026-12-06""#),
    PAGE,
    query("size", r#"{"type":"integer","minimum":1,"maximum":200}"#, "50"),
];

pub(super) const OPS: &[Op] = &[
    // The admin API: every route answers 401 without a session and 403 without the role.
    with(
        get(
            "admin_api",
            "/api/admin/categories",
            AD,
            "All categories",
            &[ok(200, Kind::Json("Items"), "with sort order, enabled, referenced")],
        ),
        Admin,
        &[],
        Body::None,
    ),
    errors(
        with(
            post("admin_api", "/api/admin/categories", AD, "Add a category", CREATED),
            Admin,
            &[],
            Body::Json("NewCategory"),
        ),
        &["category_name_taken", "invalid_name"],
    ),
    with(
        post(
            "admin_api",
            "/api/admin/categories/reorder",
            AD,
            "Reorder the categories",
            &[ok(200, Kind::Json("Items"), "the new order")],
        ),
        Admin,
        &[],
        Body::Json("Reorder"),
    ),
    errors(
        with(
            patch(
                "admin_api",
                "/api/admin/categories/{id}",
                AD,
                "Change a category",
                RECORD,
            ),
            Admin,
            &[P_ID],
            Body::Json("CategoryChange"),
        ),
        &["category_name_taken"],
    ),
    errors(
        with(
            delete(
                "admin_api",
                "/api/admin/categories/{id}",
                AD,
                "Delete an unused category",
                NO_CONTENT,
            ),
            Admin,
            &[P_ID],
            Body::None,
        ),
        &["category_in_use"],
    ),
    with(
        get(
            "admin_api",
            "/api/admin/settings",
            AD,
            "Payment settings: configured, overrides, effective",
            RECORD,
        ),
        Admin,
        &[],
        Body::None,
    ),
    with(
        patch(
            "admin_api",
            "/api/admin/settings",
            AD,
            "Override payment settings",
            RECORD,
        ),
        Admin,
        &[],
        Body::Json("SettingsPatch"),
    ),
    with(
        get("admin_api", "/api/admin/payments", AD, "Search payments", JSON_PAGE),
        Admin,
        PAYMENT_FILTERS,
        Body::None,
    ),
    with(
        get(
            "admin_api",
            "/api/admin/payments.csv",
            AD,
            "Search payments as CSV (every row, at most 100 000)",
            &[ok(200, Kind::Bytes("text/csv"), "the rows")],
        ),
        Admin,
        PAYMENT_FILTERS.split_at(5).0,
        Body::None,
    ),
    with(
        get(
            "admin_api",
            "/api/admin/payments/{order_no}",
            AD,
            "A payment with its donation, events and refunds",
            RECORD,
        ),
        Admin,
        &[P_ORDER],
        Body::None,
    ),
    errors(
        with(
            post(
                "admin_api",
                "/api/admin/payments/{order_no}/refund",
                AD,
                "Refund a payment, in part or in full",
                &[ok(201, Kind::Json("Refund"), "the refund")],
            ),
            Admin,
            &[P_ORDER, IDEMPOTENCY_KEY],
            Body::Json("RefundRequest"),
        ),
        &[
            "refund_exceeds_remaining",
            "payment_not_paid",
            "invalid_amount",
            "invalid_reason",
            "idempotency_key_reused",
        ],
    ),
    with(
        get("admin_api", "/api/admin/callbacks", AD, "The callback inbox", JSON_PAGE),
        Admin,
        &[
            query("order_no", TEXT, r#""ZF0193""#),
            query("accepted", r#"{"type":"boolean"}"#, "true"),
            PAGE,
        ],
        Body::None,
    ),
    with(
        get(
            "admin_api",
            "/api/admin/reconcile",
            AD,
            "Orders that need an operator",
            RECORD,
        ),
        Admin,
        &[query("pending_minutes", r#"{"type":"integer","minimum":1}"#, "30")],
        Body::None,
    ),
    with(
        get("admin_api", "/api/admin/audit", AD, "The audit log", JSON_PAGE),
        Admin,
        &[PAGE],
        Body::None,
    ),
    with(
        get("admin_api", "/api/admin/users", AD, "Users", JSON_PAGE),
        Admin,
        &[
            PAGE,
            query("size", r#"{"type":"integer","minimum":1,"maximum":200}"#, "50"),
        ],
        Body::None,
    ),
    with(
        patch(
            "admin_api",
            "/api/admin/users/{id}",
            AD,
            "Change a user's role or disable it",
            RECORD,
        ),
        Admin,
        &[P_ID],
        Body::Json("UserChange"),
    ),
    with(
        get("admin_page", "/admin", AD, "The admin dashboard", HTML),
        Admin,
        &[],
        Body::None,
    ),
    with(
        get("admin_page", "/admin/{page}", AD, "An admin page", HTML),
        Admin,
        &[path(
            "page",
            r#"{"type":"string","enum":["payments","categories","settings","callbacks","reconcile","audit","users"]}"#,
            r#""payments""#,
        )],
        Body::None,
    ),
    // The community's API.
    get(
        "community_boards",
        "/api/community/boards",
        C,
        "Boards",
        &[ok(200, Kind::Json("Items"), "in order")],
    ),
    with(
        get("community_posts", "/api/community/posts", C, "Visible posts", JSON_PAGE),
        Public,
        &[
            query("board_id", r#"{"type":"integer","minimum":1}"#, "1"),
            query("author_id", r#"{"type":"integer","minimum":1}"#, "1"),
            query("q", r#"{"type":"string","maxLength":50}"#, r#""你好""#),
            SORT,
            RANGE,
            PAGE,
            SIZE,
        ],
        Body::None,
    ),
    errors(
        with(
            post(
                "community_posts",
                "/api/community/posts",
                C,
                "Publish a post",
                &[ok(201, Kind::Json("Post"), "the post")],
            ),
            User,
            &[],
            Body::Json("NewPost"),
        ),
        &[
            "invalid_title",
            "invalid_content",
            "invalid_images",
            "invalid_image",
            "unknown_image",
            "unknown_board",
            "blocked_content",
        ],
    ),
    with(
        get(
            "community_post",
            "/api/community/posts/{id}",
            C,
            "A post (counts a view)",
            &[ok(200, Kind::Json("Post"), "the post")],
        ),
        Public,
        &[P_ID],
        Body::None,
    ),
    with(
        delete(
            "community_post",
            "/api/community/posts/{id}",
            C,
            "Delete my post (or any, as admin)",
            NO_CONTENT,
        ),
        User,
        &[P_ID],
        Body::None,
    ),
    with(
        get(
            "community_comments",
            "/api/community/posts/{id}/comments",
            C,
            "A post's comments, threads in order",
            JSON_PAGE,
        ),
        Public,
        &[P_ID, PAGE, SIZE],
        Body::None,
    ),
    errors(
        with(
            post(
                "community_comments",
                "/api/community/posts/{id}/comments",
                C,
                "Comment or reply",
                &[ok(201, Kind::Json("Comment"), "the comment")],
            ),
            User,
            &[P_ID],
            Body::Json("NewComment"),
        ),
        &["invalid_parent", "invalid_content"],
    ),
    with(
        delete(
            "community_comment",
            "/api/community/posts/{post_id}/comments/{id}",
            C,
            "Delete my comment",
            NO_CONTENT,
        ),
        User,
        &[P_POST, P_ID],
        Body::None,
    ),
    with(
        delete(
            "community_comment",
            "/api/community/comments/{id}",
            C,
            "Delete my comment",
            NO_CONTENT,
        ),
        User,
        &[P_ID],
        Body::None,
    ),
    with(
        put(
            "community_post_like",
            "/api/community/posts/{id}/like",
            C,
            "Like a post (idempotent)",
            LIKE,
        ),
        User,
        &[P_ID],
        Body::None,
    ),
    with(
        delete(
            "community_post_like",
            "/api/community/posts/{id}/like",
            C,
            "Take a like back (idempotent)",
            LIKE,
        ),
        User,
        &[P_ID],
        Body::None,
    ),
    with(
        put(
            "community_comment_like",
            "/api/community/posts/{post_id}/comments/{id}/like",
            C,
            "Like a comment",
            LIKE,
        ),
        User,
        &[P_POST, P_ID],
        Body::None,
    ),
    with(
        delete(
            "community_comment_like",
            "/api/community/posts/{post_id}/comments/{id}/like",
            C,
            "Take a comment's like back",
            LIKE,
        ),
        User,
        &[P_POST, P_ID],
        Body::None,
    ),
    with(
        put(
            "community_comment_like",
            "/api/community/comments/{id}/like",
            C,
            "Like a comment",
            LIKE,
        ),
        User,
        &[P_ID],
        Body::None,
    ),
    with(
        delete(
            "community_comment_like",
            "/api/community/comments/{id}/like",
            C,
            "Take a comment's like back",
            LIKE,
        ),
        User,
        &[P_ID],
        Body::None,
    ),
    with(
        get(
            "community_feed",
            "/api/community/feed",
            C,
            "Posts of the users I follow",
            JSON_PAGE,
        ),
        User,
        &[PAGE, SIZE],
        Body::None,
    ),
    with(
        post(
            "community_report",
            "/api/community/reports",
            C,
            "Report a post or comment",
            &[
                ok(201, Kind::Json("Record"), "the report"),
                ok(200, Kind::Json("Record"), "reported before: the first report"),
            ],
        ),
        User,
        &[],
        Body::Json("NewReport"),
    ),
    // The community's admin API.
    errors(
        with(
            post(
                "community_admin_boards",
                "/api/admin/boards",
                AD,
                "Add a board",
                &[ok(201, Kind::Json("Board"), "the board")],
            ),
            Admin,
            &[],
            Body::Json("BoardInput"),
        ),
        &["board_name_taken"],
    ),
    errors(
        with(
            patch(
                "community_admin_board",
                "/api/admin/boards/{id}",
                AD,
                "Change a board",
                &[ok(200, Kind::Json("Board"), "the board")],
            ),
            Admin,
            &[P_ID],
            Body::Json("BoardInput"),
        ),
        &["board_name_taken"],
    ),
    with(
        get(
            "community_admin_reports",
            "/api/admin/reports",
            AD,
            "The report queue",
            JSON_PAGE,
        ),
        Admin,
        &[
            query(
                "status",
                r#"{"type":"string","enum":["open","resolved","dismissed","all"]}"#,
                r#""open""#,
            ),
            PAGE,
            SIZE,
        ],
        Body::None,
    ),
    errors(
        with(
            post(
                "community_admin_dismiss",
                "/api/admin/reports/{id}/dismiss",
                AD,
                "Dismiss a report",
                RECORD,
            ),
            Admin,
            &[P_ID],
            Body::None,
        ),
        &["report_closed"],
    ),
    with(
        post(
            "community_admin_hide",
            "/api/admin/community/{target}/{id}/hide",
            AD,
            "Hide a post or comment (resolves its reports)",
            RECORD,
        ),
        Admin,
        &[
            path("target", r#"{"type":"string","enum":["post","comment"]}"#, r#""post""#),
            P_ID,
        ],
        Body::OptionalJson("HideInput"),
    ),
    with(
        post(
            "community_admin_hide",
            "/api/admin/community/{target}/{id}/unhide",
            AD,
            "Show a hidden post or comment again",
            RECORD,
        ),
        Admin,
        &[
            path("target", r#"{"type":"string","enum":["post","comment"]}"#, r#""post""#),
            P_ID,
        ],
        Body::OptionalJson("HideInput"),
    ),
    with(
        patch(
            "community_admin_post",
            "/api/admin/community/posts/{id}",
            AD,
            "Pin or unpin a post",
            RECORD,
        ),
        Admin,
        &[P_ID],
        Body::Json("PostPatch"),
    ),
    // The community's pages.
    with(
        get("community_page", "/community", C, "Boards, hot and new, search", HTML),
        Public,
        &[query("q", TEXT, r#""你好""#)],
        Body::None,
    ),
    get("community_compose_page", "/community/new", C, "Compose a post", HTML),
    with(
        get(
            "community_post_page",
            "/community/posts/{id}",
            C,
            "A post with its comments",
            HTML,
        ),
        Public,
        &[P_ID],
        Body::None,
    ),
    with(
        get(
            "community_comment_link",
            "/community/comments/{id}",
            C,
            "To a comment on its post's page",
            &[ok(303, Kind::Redirect, "to the post")],
        ),
        Public,
        &[P_ID],
        Body::None,
    ),
    with(
        get("user_page", "/users/{id}", C, "A profile and its posts", HTML),
        Public,
        &[P_ID],
        Body::None,
    ),
    with(
        get(
            "community_admin_page",
            "/admin/community",
            AD,
            "The report queue, boards and pins",
            HTML,
        ),
        Admin,
        &[],
        Body::None,
    ),
];
