//! The operations of the community: its API, its admin API and its pages.

use super::Access::{Admin, Public, User};
use super::dsl::*;
use super::{Answer, Body, Kind, Op, Param};

const HTML: &[Answer] = &[
    ok(200, Kind::Html, "the page"),
    ok(303, Kind::Redirect, "to sign in first"),
];
const JSON_PAGE: &[Answer] = &[ok(200, Kind::Json("Page"), "a page of the list")];
const RECORD: &[Answer] = &[ok(200, Kind::Json("Record"), "the record")];
const NO_CONTENT: &[Answer] = &[ok(204, Kind::Empty, "done")];
const LIKE: &[Answer] = &[ok(200, Kind::Json("Like"), "the like and the count")];

const AD: &str = "admin";
const C: &str = "community";
const TEXT: &str = r#"{"type":"string"}"#;
const P_POST: Param = path("post_id", r#"{"type":"integer","minimum":1}"#, "1");
const SORT: Param = query("sort", r#"{"type":"string","enum":["new","hot","top"]}"#, r#""hot""#);
const RANGE: Param = query("range", r#"{"type":"string","enum":["day","week","all"]}"#, r#""week""#);

/// An id filter; empty counts as not given (the pages' forms send every field).
const OPTIONAL_ID: &str = r#"{"anyOf":[{"type":"integer","minimum":1},{"type":"string","maxLength":0}]}"#;
/// At most 50 characters once folded (case, width, control characters dropped).
const SEARCH: &str =
    r#"{"type":"string","description":"at most 50 characters once folded (case, width; control characters dropped)"}"#;

pub(super) const OPS: &[Op] = &[
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
            query("board_id", OPTIONAL_ID, "1"),
            query("author_id", OPTIONAL_ID, "1"),
            query("q", SEARCH, r#""你好""#),
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
