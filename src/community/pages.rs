//! The community's pages, server-rendered over the same answers as the API (so an anonymous
//! author is hidden here exactly as there): `/community` (boards, hot / new / top, search,
//! the feed), a post with its comments, compose, `/users/{id}`, and the link from a
//! notification to a comment. `static/community.js` sends likes, comments, posts, follows,
//! deletions and reports to the API.

use askama::Template;
use http::StatusCode;
use http::request::Parts;
use serde_json::Value;

use super::boards::{self, Board};
use super::lists::{self, ListParams, Sort};
use super::{comments, posts};
use crate::account::{Principal, Role};
use crate::app::State;
use crate::error::AppError;
use crate::http::assets;
use crate::http::extract;
use crate::http::list::Paging;
use crate::http::respond::Response;
use crate::store::StoreError;
use crate::ui::{self, Link, Pager, Section, Ui};

/// Comments on one page of a post.
const COMMENTS_PER_PAGE: u32 = 50;

/// An author as a page shows them: a link to their profile, or 匿名 in the page's language.
pub struct Author {
    pub id: Option<i64>,
    pub name: String,
}

impl Author {
    fn from_json(value: &Value, ui: &Ui) -> Author {
        match value["id"].as_i64() {
            Some(id) => Author {
                id: Some(id),
                name: value["display_name"].as_str().unwrap_or_default().to_string(),
            },
            None => Author {
                id: None,
                name: ui.t.community.anonymous.to_string(),
            },
        }
    }
}

fn text(value: &Value, name: &str) -> String {
    value[name].as_str().unwrap_or_default().to_string()
}

fn number(value: &Value, name: &str) -> i64 {
    value[name].as_i64().unwrap_or_default()
}

/// A post in a list.
pub struct Item {
    pub id: i64,
    pub title: String,
    pub excerpt: String,
    pub thumbs: Vec<String>,
    pub author: Author,
    pub board: String,
    pub likes: String,
    pub comments: String,
    pub views: String,
    pub pinned: bool,
    pub created_at: String,
}

fn items(list: &Value, ui: &Ui, boards: &[Board]) -> Vec<Item> {
    let t = &ui.t.community;
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|p| Item {
                    id: number(p, "id"),
                    title: text(p, "title"),
                    excerpt: text(p, "excerpt"),
                    thumbs: p["images"]
                        .as_array()
                        .map(|i| i.iter().map(|img| text(img, "thumb_url")).collect())
                        .unwrap_or_default(),
                    author: Author::from_json(&p["author"], ui),
                    board: boards
                        .iter()
                        .find(|b| b.id == number(p, "board_id"))
                        .map(|b| b.name.clone())
                        .unwrap_or_default(),
                    likes: ui.fill(t.likes, number(p, "likes")),
                    comments: ui.fill(t.comments_count, number(p, "comments")),
                    views: ui.fill(t.views, number(p, "views")),
                    pinned: p["pinned"].as_bool().unwrap_or(false),
                    created_at: ui.time(text(p, "created_at")),
                })
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "community.html")]
struct HomePage {
    ui: Ui,
    v: HomeView,
}

/// What `/community` shows.
struct HomeView {
    boards: Vec<Link>,
    tabs: Vec<Link>,
    ranges: Vec<Link>,
    q: String,
    board_id: Option<i64>,
    heading: Option<String>,
    items: Vec<Item>,
    total: String,
    pager: Pager,
    signed_in: bool,
}

fn url(board: Option<i64>, sort: &str, range: Option<&str>, q: Option<&str>) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    if let Some(board) = board {
        out.append_pair("board_id", &board.to_string());
    }
    out.append_pair("sort", sort);
    if let Some(range) = range {
        out.append_pair("range", range);
    }
    if let Some(q) = q.filter(|q| !q.is_empty()) {
        out.append_pair("q", q);
    }
    format!("/community?{}", out.finish())
}

/// `GET /community?board_id=&sort=hot|new|top|feed&range=&q=&page=`
pub async fn home(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let ui = Ui::new(state, parts, Section::Community).await;
    let viewer = state.sessions.principal(&state.store, parts).await.ok().flatten();
    match home_view(state, parts, &ui, viewer.as_deref()).await {
        Ok(v) => ui::page(ui.lang, StatusCode::OK, &HomePage { ui, v }),
        Err(err) => Ok(ui::error_page(ui, &err)),
    }
}

async fn home_view(state: &State, parts: &Parts, ui: &Ui, viewer: Option<&Principal>) -> Result<HomeView, AppError> {
    let query = parts.uri.query();
    let feed = extract::query_param(query, "sort")?.as_deref() == Some("feed");
    let without_feed = query.map(|q| q.replace("sort=feed", "sort=new"));
    let params = ListParams::parse(if feed { without_feed.as_deref() } else { query }, Sort::Hot)?;
    let all_boards = boards::all(state).await?;
    let body = match (feed, viewer) {
        (true, Some(viewer)) => lists::feed_body(state, viewer.user_id, params.paging).await?,
        (true, None) => return Err(AppError::Unauthorized),
        (false, _) => lists::posts_body(state, &params, false).await?,
    };
    let list: Value = serde_json::from_slice(&body).map_err(|e| AppError::Internal(e.into()))?;
    let t = &ui.t.community;
    let q = params
        .query
        .as_ref()
        .map(|_| extract::query_param(query, "q"))
        .transpose()?
        .flatten()
        .unwrap_or_default();
    let sort = if feed { "feed" } else { params.sort.as_str() };
    let range = params.range.as_str();
    let mut tabs = vec![
        Link {
            href: url(params.board_id, "hot", None, Some(&q)),
            label: t.hot.into(),
            current: sort == "hot",
        },
        Link {
            href: url(params.board_id, "new", None, Some(&q)),
            label: t.new.into(),
            current: sort == "new",
        },
        Link {
            href: url(params.board_id, "top", Some("week"), Some(&q)),
            label: t.top.into(),
            current: sort == "top",
        },
    ];
    if viewer.is_some() {
        tabs.push(Link {
            href: url(None, "feed", None, None),
            label: t.feed.into(),
            current: feed,
        });
    }
    let ranges = if sort == "top" || sort == "hot" && params.range != lists::Range::All {
        [("day", t.range_day), ("week", t.range_week), ("all", t.range_all)]
            .into_iter()
            .map(|(code, label)| Link {
                href: url(params.board_id, sort, Some(code), Some(&q)),
                label: label.into(),
                current: range == code,
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut board_links = vec![Link {
        href: url(None, sort, None, Some(&q)),
        label: t.all_boards.into(),
        current: params.board_id.is_none(),
    }];
    board_links.extend(all_boards.iter().map(|b| Link {
        href: url(Some(b.id), if feed { "hot" } else { sort }, None, Some(&q)),
        label: b.name.clone(),
        current: params.board_id == Some(b.id),
    }));
    let total = number(&list, "total");
    let capped = list["total_capped"].as_bool().unwrap_or(false);
    let heading = (!q.is_empty()).then(|| ui.fill(t.results_for, &q));
    let total_text = if capped {
        ui.fill(t.more_than, total)
    } else {
        ui.count(total)
    };
    Ok(HomeView {
        items: items(&list, ui, &all_boards),
        boards: board_links,
        tabs,
        ranges,
        board_id: params.board_id,
        heading,
        total: total_text,
        pager: Pager::new("/community", query, params.paging.page, params.paging.size, total)?,
        q,
        signed_in: viewer.is_some(),
    })
}

/// A comment as the post page shows it.
pub struct CommentView {
    pub id: i64,
    pub reply: bool,
    pub reply_to: Option<i64>,
    pub author: Author,
    pub op: bool,
    pub content: String,
    pub images: Vec<(String, String)>,
    pub likes: i64,
    pub liked: bool,
    pub hidden: bool,
    pub mine: bool,
    pub created_at: String,
}

#[derive(Template)]
#[template(path = "community_post.html")]
struct PostPage {
    ui: Ui,
    id: i64,
    title: String,
    content: String,
    board: String,
    board_id: i64,
    author: Author,
    images: Vec<(String, String)>,
    likes: i64,
    liked: bool,
    comments_count: String,
    views: String,
    pinned: bool,
    hidden: bool,
    mine: bool,
    admin: bool,
    signed_in: bool,
    created_at: String,
    comments: Vec<CommentView>,
    pager: Pager,
    script: String,
    admin_script: String,
}

fn images(value: &Value) -> Vec<(String, String)> {
    value
        .as_array()
        .map(|i| i.iter().map(|img| (text(img, "url"), text(img, "thumb_url"))).collect())
        .unwrap_or_default()
}

/// `GET /community/posts/{id}?page=`: the post and a page of its comments.
pub async fn post(state: &State, parts: &Parts, id: i64) -> Result<Response, AppError> {
    let viewer = state.sessions.principal(&state.store, parts).await.ok().flatten();
    let mut ui = Ui::for_principal(parts, Section::Community, viewer.as_deref());
    if let Some(viewer) = &viewer {
        ui.fill_unread(state, viewer.user_id).await;
    }
    match post_page(state, parts, id, viewer.as_deref(), ui).await {
        Ok(response) => Ok(response),
        Err((ui, err)) => Ok(ui::error_page(ui, &err)),
    }
}

async fn post_page(
    state: &State,
    parts: &Parts,
    id: i64,
    viewer: Option<&Principal>,
    ui: Ui,
) -> Result<Response, (Ui, AppError)> {
    macro_rules! tried {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(err) => return Err((ui, AppError::from(err))),
            }
        };
    }
    let page = tried!(extract::number_param(
        parts.uri.query(),
        "page",
        1,
        100_000,
        "invalid_page"
    ));
    let body = tried!(posts::post_body(state, id, viewer, true).await);
    let post: Value = tried!(serde_json::from_slice(&body).map_err(|e| AppError::Internal(e.into())));
    let paging = Paging {
        page,
        size: COMMENTS_PER_PAGE,
    };
    let (items, total) = tried!(comments::page(state, id, viewer, paging).await);
    let all_boards = tried!(boards::all(state).await);
    let t = &ui.t.community;
    let viewer_id = viewer.map(|v| v.user_id);
    let comments = items
        .iter()
        .map(|c| {
            let author = Author::from_json(&c["author"], &ui);
            CommentView {
                id: number(c, "id"),
                reply: c["parent_id"].is_i64(),
                reply_to: c["reply_to_id"]
                    .as_i64()
                    .filter(|r| Some(*r) != c["parent_id"].as_i64()),
                mine: author.id.is_some() && author.id == viewer_id,
                author,
                op: c["op"].as_bool().unwrap_or(false),
                content: text(c, "content"),
                images: images(&c["images"]),
                likes: number(c, "likes"),
                liked: c["liked_by_me"].as_bool().unwrap_or(false),
                hidden: c["hidden"].as_bool().unwrap_or(false),
                created_at: ui.time(text(c, "created_at")),
            }
        })
        .collect();
    let board_id = number(&post, "board_id");
    let pager = tried!(Pager::new(
        &format!("/community/posts/{id}"),
        parts.uri.query(),
        page,
        COMMENTS_PER_PAGE,
        total
    ));
    let view = PostPage {
        id,
        title: text(&post, "title"),
        content: text(&post, "content"),
        board: all_boards
            .iter()
            .find(|b| b.id == board_id)
            .map(|b| b.name.clone())
            .unwrap_or_default(),
        board_id,
        author: Author::from_json(&post["author"], &ui),
        images: images(&post["images"]),
        likes: number(&post, "likes"),
        liked: post["liked_by_me"].as_bool().unwrap_or(false),
        comments_count: ui.fill(t.comments_count, number(&post, "comments")),
        views: ui.fill(t.views, number(&post, "views")),
        pinned: post["pinned"].as_bool().unwrap_or(false),
        hidden: post["hidden"].as_bool().unwrap_or(false),
        mine: post["mine"].as_bool().unwrap_or(false),
        admin: viewer.is_some_and(|v| v.role == Role::Admin),
        signed_in: viewer.is_some(),
        created_at: ui.time(text(&post, "created_at")),
        comments,
        pager,
        script: assets::url("community.js"),
        admin_script: assets::url("admin.js"),
        ui,
    };
    match ui::page(view.ui.lang, StatusCode::OK, &view) {
        Ok(response) => Ok(response),
        Err(err) => Err((view.ui, err)),
    }
}

#[derive(Template)]
#[template(path = "community_compose.html")]
struct ComposePage {
    ui: Ui,
    boards: Vec<Board>,
    board_id: i64,
    script: String,
}

/// `GET /community/new?board_id=`: signed in (else the sign-in page first).
pub async fn compose(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let principal = match state.sessions.principal(&state.store, parts).await {
        Ok(Some(principal)) => principal,
        Ok(None) | Err(AppError::Unauthorized) => {
            return Ok(crate::http::respond::see_other("/login?next=%2Fcommunity%2Fnew"));
        }
        Err(other) => return Err(other),
    };
    let mut ui = Ui::for_principal(parts, Section::Community, Some(&principal));
    ui.fill_unread(state, principal.user_id).await;
    let boards = boards::all(state).await?;
    let wanted = extract::query_param(parts.uri.query(), "board_id")?
        .and_then(|b| crate::http::route::path_id(&b))
        .filter(|b| boards.iter().any(|x| x.id == *b));
    let page = ComposePage {
        board_id: wanted.or(boards.first().map(|b| b.id)).unwrap_or(0),
        boards,
        script: assets::url("community.js"),
        ui,
    };
    ui::page(page.ui.lang, StatusCode::OK, &page)
}

const COMMENT_PLACE: &str = "SELECT c.post_id, (SELECT count(*) FROM comments o
         WHERE o.post_id = c.post_id AND o.deleted_at IS NULL AND o.hidden_at IS NULL
           AND (coalesce(o.parent_id, o.id), o.id) < (coalesce(c.parent_id, c.id), c.id))
   FROM comments c WHERE c.id = $1 AND c.deleted_at IS NULL";

/// `GET /community/comments/{id}`: to the page of its post that shows it.
pub async fn comment_link(state: &State, id: i64) -> Result<Response, AppError> {
    let client = state.store.client().await?;
    let row = client
        .query_opt(COMMENT_PLACE, &[&id])
        .await
        .map_err(StoreError::from)?
        .ok_or(AppError::NotFound)?;
    let (post, before): (i64, i64) = (row.get(0), row.get(1));
    let page = before / i64::from(COMMENTS_PER_PAGE) + 1;
    Ok(crate::http::respond::see_other(&format!(
        "/community/posts/{post}?page={page}#c{id}"
    )))
}

#[derive(Template)]
#[template(path = "community_user.html")]
struct UserPage {
    ui: Ui,
    id: i64,
    name: String,
    avatar: Option<String>,
    bio: String,
    posts: i64,
    followers: i64,
    following: i64,
    followed: bool,
    me: bool,
    signed_in: bool,
    items: Vec<Item>,
    pager: Pager,
    script: String,
}

/// `GET /users/{id}?page=`: a public profile and its public posts.
pub async fn user(state: &State, parts: &Parts, id: i64) -> Result<Response, AppError> {
    let viewer = state.sessions.principal(&state.store, parts).await.ok().flatten();
    let mut ui = Ui::for_principal(parts, Section::Community, viewer.as_deref());
    if let Some(viewer) = &viewer {
        ui.fill_unread(state, viewer.user_id).await;
    }
    let result = async {
        let followed = match &viewer {
            Some(v) if v.user_id != id => crate::account::profiles::follows(&state.store, v.user_id, id).await?,
            _ => false,
        };
        let profile = crate::account::profiles::profile_body(state, id, followed).await?;
        let profile: Value = serde_json::from_slice(&profile).map_err(|e| AppError::Internal(e.into()))?;
        let mut params = ListParams::parse(parts.uri.query(), Sort::New)?;
        params.board_id = None;
        params.query = None;
        params.author_id = Some(id);
        let list = lists::posts_body(state, &params, false).await?;
        let list: Value = serde_json::from_slice(&list).map_err(|e| AppError::Internal(e.into()))?;
        let boards = boards::all(state).await?;
        let pager = Pager::new(
            &format!("/users/{id}"),
            parts.uri.query(),
            params.paging.page,
            params.paging.size,
            number(&list, "total"),
        )?;
        Ok::<_, AppError>((profile, list, boards, pager, followed))
    }
    .await;
    let (profile, list, boards, pager, followed) = match result {
        Ok(parts) => parts,
        Err(err) => return Ok(ui::error_page(ui, &err)),
    };
    let page = UserPage {
        id,
        name: text(&profile, "display_name"),
        avatar: profile["avatar_url"].as_str().map(str::to_string),
        bio: text(&profile, "bio"),
        posts: number(&profile, "posts"),
        followers: number(&profile, "followers"),
        following: number(&profile, "following"),
        followed,
        me: viewer.as_ref().is_some_and(|v| v.user_id == id),
        signed_in: viewer.is_some(),
        items: items(&list, &ui, &boards),
        pager,
        script: assets::url("community.js"),
        ui,
    };
    ui::page(page.ui.lang, StatusCode::OK, &page)
}
