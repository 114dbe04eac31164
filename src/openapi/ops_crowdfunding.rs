//! The operations of crowdfunding: projects, backings, updates, follows, shipping, the
//! reviewers' queue, and its pages.

use super::Access::{Public, Reviewer, User};
use super::dsl::*;
use super::{Answer, Body, Kind, Op, Param};

/// The module's error codes answered with `409` (the state of a project or backing clashes).
pub(super) const CONFLICTS: &[&str] = &[
    "project_not_editable",
    "project_not_live",
    "project_not_pending",
    "project_not_public",
    "project_not_succeeded",
    "project_changed",
    "deadline_passed",
    "reward_sold_out",
    "not_shippable",
    "nothing_to_ship",
    "not_shipped",
    "already_delivered",
    "too_early",
];

const HTML: &[Answer] = &[
    ok(200, Kind::Html, "the page"),
    ok(303, Kind::Redirect, "to sign in first"),
];
const PUBLIC_HTML: &[Answer] = &[ok(200, Kind::Html, "the page")];
const JSON_PAGE: &[Answer] = &[ok(200, Kind::Json("Page"), "a page of the list")];
const PROJECT: &[Answer] = &[ok(200, Kind::Json("Project"), "the project")];

const CF: &str = "crowdfunding";
/// Empty counts as not given (the pages' forms send every field).
const STATUS: Param = query(
    "status",
    r#"{"type":"string","enum":["","live","succeeded","failed"]}"#,
    r#""live""#,
);
const SORT: Param = query(
    "sort",
    r#"{"type":"string","enum":["","newest","ending","most_funded","most_backed"]}"#,
    r#""newest""#,
);
/// At most 50 characters once trimmed.
const Q: Param = query(
    "q",
    r#"{"type":"string","description":"at most 50 characters once trimmed"}"#,
    r#""图书""#,
);
const QUEUE_STATUS: Param = query(
    "status",
    r#"{"type":"string","enum":["","draft","pending_review","rejected","live","succeeded","failed"]}"#,
    r#""pending_review""#,
);
const SHIPPING: Param = query(
    "shipping",
    r#"{"type":"string","enum":["","pending","shipped","delivered"]}"#,
    r#""pending""#,
);
const ALL: Param = query(
    "all",
    r#"{"type":"string","description":"`true` lists every backing, not only the ones that count"}"#,
    r#""true""#,
);
const P_BACKING: &[Param] = &[P_ID, P_ORDER];

const PROJECT_ERRORS: &[&str] = &[
    "invalid_title",
    "invalid_summary",
    "invalid_story",
    "invalid_deadline",
    "invalid_goal",
    "invalid_goals",
    "invalid_reward",
    "invalid_rewards",
    "invalid_surplus",
    "invalid_images",
];

pub(super) const OPS: &[Op] = &[
    errors(
        with(
            get("projects", "/api/projects", CF, "Public projects", JSON_PAGE),
            Public,
            &[STATUS, SORT, Q, PAGE, SIZE],
            Body::None,
        ),
        &["invalid_status", "invalid_sort", "invalid_q"],
    ),
    errors(
        with(
            post(
                "projects",
                "/api/projects",
                CF,
                "Start a project (a draft unless `submit`)",
                &[ok(201, Kind::Json("Project"), "the project (`Location`)")],
            ),
            User,
            &[],
            Body::Json("ProjectBody"),
        ),
        PROJECT_ERRORS,
    ),
    with(
        get("project", "/api/projects/{id}", CF, "A project", PROJECT),
        Public,
        &[P_ID],
        Body::None,
    ),
    errors(
        with(
            patch(
                "project_edit",
                "/api/projects/{id}",
                CF,
                "Edit an unpublished project, or send it to review",
                PROJECT,
            ),
            User,
            &[P_ID],
            Body::Json("ProjectBody"),
        ),
        &[
            "invalid_title",
            "invalid_summary",
            "invalid_story",
            "invalid_deadline",
            "invalid_goal",
            "invalid_goals",
            "invalid_reward",
            "invalid_rewards",
            "invalid_surplus",
            "invalid_images",
            "project_not_editable",
        ],
    ),
    errors(
        with(
            get(
                "project_backings",
                "/api/projects/{id}/backings",
                CF,
                "The owner's list of backings, with their addresses",
                JSON_PAGE,
            ),
            User,
            &[P_ID, SHIPPING, ALL, PAGE, SIZE],
            Body::None,
        ),
        &["invalid_shipping"],
    ),
    errors(
        with(
            post(
                "project_backings",
                "/api/projects/{id}/backings",
                CF,
                "Back a project: a backing and its QR payment",
                &[
                    ok(
                        201,
                        Kind::Json("BackingCreated"),
                        "the backing, pending, and its payment",
                    ),
                    ok(303, Kind::Redirect, "a form post: to the pay page"),
                ],
            ),
            User,
            &[P_ID, IDEMPOTENCY_KEY],
            Body::JsonOrForm("BackingRequest", "BackingForm"),
        ),
        &[
            "invalid_amount",
            "invalid_channel",
            "channel_disabled",
            "invalid_reward",
            "amount_below_reward",
            "address_required",
            "invalid_address",
            "invalid_message",
            "invalid_anonymous",
            "reward_sold_out",
            "project_not_live",
            "provider_unavailable",
            "invalid_idempotency_key",
            "idempotency_key_reused",
            "idempotency_key_in_use",
        ],
    ),
    with(
        get(
            "project_backers",
            "/api/projects/{id}/backers",
            CF,
            "Backers, newest first (they add up to `raised`)",
            JSON_PAGE,
        ),
        Public,
        &[P_ID, PAGE, SIZE],
        Body::None,
    ),
    with(
        get(
            "project_updates",
            "/api/projects/{id}/updates",
            CF,
            "A project's news",
            JSON_PAGE,
        ),
        Public,
        &[P_ID, PAGE, SIZE],
        Body::None,
    ),
    errors(
        with(
            post(
                "project_updates",
                "/api/projects/{id}/updates",
                CF,
                "Post news (the owner); backers and followers are notified",
                &[ok(201, Kind::Json("ProjectUpdate"), "the update")],
            ),
            User,
            &[P_ID],
            Body::Json("ProjectUpdateBody"),
        ),
        &["invalid_title", "invalid_body", "invalid_images", "project_not_public"],
    ),
    with(
        put(
            "project_follow",
            "/api/projects/{id}/follow",
            CF,
            "Follow a project (idempotent)",
            &[ok(200, Kind::Json("ProjectFollow"), "following, and the count")],
        ),
        User,
        &[P_ID],
        Body::None,
    ),
    with(
        delete(
            "project_follow",
            "/api/projects/{id}/follow",
            CF,
            "Stop following a project (idempotent)",
            &[ok(200, Kind::Json("ProjectFollow"), "not following, and the count")],
        ),
        User,
        &[P_ID],
        Body::None,
    ),
    errors(
        with(
            post(
                "backing_ship",
                "/api/projects/{id}/backings/{order_no}/ship",
                CF,
                "Ship a backing's reward (again to correct it); the backer is notified",
                &[ok(200, Kind::Json("BackingShipping"), "shipped")],
            ),
            User,
            P_BACKING,
            Body::Json("BackingShip"),
        ),
        &[
            "invalid_carrier",
            "invalid_tracking_no",
            "not_shippable",
            "nothing_to_ship",
            "project_not_succeeded",
            "already_delivered",
        ],
    ),
    errors(
        with(
            post(
                "backing_deliver",
                "/api/projects/{id}/backings/{order_no}/deliver",
                CF,
                "Confirm delivery (the backer; the owner or an admin after the wait)",
                &[ok(200, Kind::Json("BackingShipping"), "delivered")],
            ),
            User,
            P_BACKING,
            Body::None,
        ),
        &["not_shipped", "too_early", "already_delivered"],
    ),
    with(
        get(
            "project_report",
            "/api/projects/{id}/report.csv",
            CF,
            "Every backing as CSV (the owner or an admin)",
            &[ok(200, Kind::Bytes("text/csv"), "the report")],
        ),
        User,
        &[P_ID],
        Body::None,
    ),
    with(
        get(
            "my_backings",
            "/api/me/backings",
            CF,
            "My backings, newest first",
            JSON_PAGE,
        ),
        User,
        &[PAGE, SIZE],
        Body::None,
    ),
    with(
        get(
            "my_projects",
            "/api/me/projects",
            CF,
            "My projects, newest first",
            JSON_PAGE,
        ),
        User,
        &[PAGE, SIZE],
        Body::None,
    ),
    errors(
        with(
            get(
                "project_queue",
                "/api/admin/projects",
                CF,
                "The review queue, oldest submission first",
                JSON_PAGE,
            ),
            Reviewer,
            &[QUEUE_STATUS, PAGE, SIZE],
            Body::None,
        ),
        &["invalid_status"],
    ),
    errors(
        with(
            post(
                "project_review",
                "/api/admin/projects/{id}/review",
                CF,
                "Approve or reject a project in review",
                PROJECT,
            ),
            Reviewer,
            &[P_ID],
            Body::Json("ProjectReview"),
        ),
        &[
            "invalid_decision",
            "invalid_reason",
            "project_not_pending",
            "project_changed",
            "deadline_passed",
        ],
    ),
    // The pages.
    errors(
        with(
            get("projects_page", "/projects", CF, "The projects page", PUBLIC_HTML),
            Public,
            &[STATUS, SORT, Q, PAGE, SIZE],
            Body::None,
        ),
        &["invalid_status", "invalid_sort", "invalid_q"],
    ),
    with(
        get("project_page", "/projects/{id}", CF, "A project's page", PUBLIC_HTML),
        Public,
        &[P_ID],
        Body::None,
    ),
    with(
        get(
            "project_edit_page",
            "/projects/new",
            CF,
            "The form of a new project",
            HTML,
        ),
        User,
        &[],
        Body::None,
    ),
    errors(
        with(
            get(
                "project_edit_page",
                "/projects/{id}/edit",
                CF,
                "The form of an unpublished project (a published one is no longer edited)",
                HTML,
            ),
            User,
            &[P_ID],
            Body::None,
        ),
        &["project_not_editable"],
    ),
    with(
        get(
            "projects_dashboard",
            "/projects/mine",
            CF,
            "My projects, rewards to ship and backings",
            HTML,
        ),
        User,
        &[],
        Body::None,
    ),
    with(
        get(
            "project_queue_page",
            "/admin/projects",
            CF,
            "The reviewers' queue",
            HTML,
        ),
        Reviewer,
        &[PAGE, SIZE],
        Body::None,
    ),
];
