//! The operations of the account module (sign-in, registration, the signed-in user's records,
//! profiles and follows, its sandbox emulators), of media and of notifications.

use super::Access::{Public, Sandbox, User};
use super::dsl::*;
use super::{Body, Kind, Op};

const A: &str = "accounts";
const S: &str = "sandbox";

pub(super) const OPS: &[Op] = &[
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
