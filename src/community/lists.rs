//! Lists of posts: `new`, `hot` and `top` over a board or all boards and a time range,
//! search (`q`), an author's posts and the feed of followed users. The public lists without
//! `q` or `author_id` are serialized once and kept until a community event; the rest are
//! read from the database each time. Anonymous posts never appear in an author's list or a
//! feed (that would name their author), except to admins in an author's list.
//!
//! A search's total is exact up to [`SEARCH_COUNT_CAP`] matches; beyond, the answer says
//! `"total_capped": true` (as search engines say "about"), and only those pages can be read.
//!
//! `hot`: see the migration and README: log2(1 + likes + 2 × comments) + age in units of 12 h,
//! stored and indexed, so the order is read from an index like `new`.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use deadpool_postgres::GenericClient;
use http::StatusCode;
use http::request::Parts;
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;

use super::json::{PostRow, post_columns};
use super::search::{Plan, Query};
use crate::account::Role;
use crate::app::State;
use crate::error::AppError;
use crate::http::extract;
use crate::http::list::Paging;
use crate::http::respond::{self, Response};
use crate::store::StoreError;

/// The order of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sort {
    New,
    Hot,
    Top,
}

impl Sort {
    pub fn parse(text: &str) -> Option<Sort> {
        match text {
            "new" => Some(Sort::New),
            "hot" => Some(Sort::Hot),
            "top" => Some(Sort::Top),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::New => "new",
            Sort::Hot => "hot",
            Sort::Top => "top",
        }
    }

    fn order(self) -> &'static str {
        match self {
            Sort::New => "s.created_at DESC, s.post_id DESC",
            Sort::Hot => "s.hot DESC, s.post_id DESC",
            Sort::Top => "s.likes DESC, s.comments DESC, s.post_id DESC",
        }
    }
}

/// How far back a list reaches: the last 24 hours, the last 7 days, or all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Range {
    Day,
    Week,
    All,
}

impl Range {
    pub fn parse(text: &str) -> Option<Range> {
        match text {
            "day" => Some(Range::Day),
            "week" => Some(Range::Week),
            "all" => Some(Range::All),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Range::Day => "day",
            Range::Week => "week",
            Range::All => "all",
        }
    }

    /// The earliest creation time the range shows, as of `now`.
    pub fn since(self, now: OffsetDateTime) -> OffsetDateTime {
        match self {
            Range::Day => now - time::Duration::days(1),
            Range::Week => now - time::Duration::days(7),
            Range::All => OffsetDateTime::UNIX_EPOCH,
        }
    }
}

/// Every parameter of a cached public list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListKey {
    pub board_id: Option<i64>,
    pub sort: Sort,
    pub range: Range,
    pub page: u32,
    pub size: u32,
}

/// Which posts a list holds.
#[derive(Debug, Clone)]
pub struct Filter<'a> {
    pub board_id: Option<i64>,
    /// An author's posts; their anonymous ones only when `reveal`.
    pub author_id: Option<i64>,
    /// The posts of the users this user follows (never anonymous ones).
    pub followed_by: Option<i64>,
    pub query: Option<&'a Query>,
    pub since: OffsetDateTime,
    pub sort: Sort,
    /// An admin asks: anonymous authors are shown.
    pub reveal: bool,
}

type Params = Vec<Box<dyn ToSql + Sync + Send>>;

/// The statements of a list.
struct Statements {
    /// The page, in order.
    list: String,
    /// How many in all.
    count: String,
    /// The ids of up to [`SEARCH_COUNT_CAP`] + 1 matches, from `posts` alone (a search's
    /// first step).
    matches: String,
    /// The list's parameters; the count's and the matches' are these without the last two
    /// (`LIMIT` and `OFFSET`).
    params: Params,
}

/// The statements of `filter`.
fn statements(filter: &Filter<'_>, paging: Paging) -> Statements {
    let mut params: Params = vec![Box::new(filter.since)];
    let mut wheres = vec!["s.listed".to_string(), "s.created_at >= $1".to_string()];
    // The same conditions on `posts` alone.
    let mut post_wheres = vec![
        "p.deleted_at IS NULL AND p.hidden_at IS NULL".to_string(),
        "p.created_at >= $1".to_string(),
    ];
    let mut needs_posts = false;
    let add = |params: &mut Params, value: Box<dyn ToSql + Sync + Send>| {
        params.push(value);
        params.len()
    };
    if let Some(board) = filter.board_id {
        let n = add(&mut params, Box::new(board));
        wheres.push(format!("s.board_id = ${n}"));
        post_wheres.push(format!("p.board_id = ${n}"));
    }
    let shared_from = wheres.len();
    if let Some(author) = filter.author_id {
        let n = add(&mut params, Box::new(author));
        wheres.push(format!("p.author_id = ${n}"));
        if !filter.reveal {
            wheres.push("NOT p.anonymous".into());
        }
        needs_posts = true;
    }
    if let Some(follower) = filter.followed_by {
        let n = add(&mut params, Box::new(follower));
        wheres.push(format!(
            "p.author_id IN (SELECT followee_id FROM follows WHERE follower_id = ${n}) AND NOT p.anonymous"
        ));
        needs_posts = true;
    }
    if let Some(query) = filter.query {
        // Repeats the search indexes' predicate so that the planner may use them.
        wheres.push("p.deleted_at IS NULL AND p.hidden_at IS NULL".into());
        match &query.plan {
            Plan::Grams { keys, exact } => {
                let n = add(&mut params, Box::new(keys.clone()));
                wheres.push(format!("p.grams @> ${n}"));
                if !exact {
                    let n = add(&mut params, Box::new(query.folded.clone()));
                    wheres.push(format!("strpos(p.search, ${n}) > 0"));
                }
            }
            Plan::Trigrams { pattern } => {
                let n = add(&mut params, Box::new(pattern.clone()));
                wheres.push(format!("p.search LIKE ${n}"));
            }
        }
        needs_posts = true;
    }
    post_wheres.extend(wheres[shared_from..].iter().cloned());
    let condition = wheres.join(" AND ");
    let matches = format!(
        "SELECT p.id FROM posts p WHERE {} LIMIT {}",
        post_wheres.join(" AND "),
        SEARCH_COUNT_CAP + 1
    );
    let pinned_first = filter.board_id.is_some() && filter.query.is_none() && filter.author_id.is_none();
    let order = format!(
        "{}{}",
        if pinned_first { "s.pinned DESC, " } else { "" },
        filter.sort.order()
    );
    let count = if needs_posts {
        format!("SELECT count(*) FROM post_stats s JOIN posts p ON p.id = s.post_id WHERE {condition}")
    } else {
        format!("SELECT count(*) FROM post_stats s WHERE {condition}")
    };
    let limit = params.len() + 1;
    let list = format!(
        concat!(
            "SELECT ",
            post_columns!(),
            " FROM post_stats s JOIN posts p ON p.id = s.post_id JOIN users u ON u.id = p.author_id
             WHERE {} ORDER BY {} LIMIT ${} OFFSET ${}"
        ),
        condition,
        order,
        limit,
        limit + 1
    );
    params.push(Box::new(paging.limit()));
    params.push(Box::new(paging.offset()));
    Statements {
        list,
        count,
        matches,
        params,
    }
}

/// Most search matches counted: past it a search's total says "at least this many"
/// (`total_capped`), so that a query matching most posts costs no more than a rare one.
pub const SEARCH_COUNT_CAP: i64 = 1_000;

/// One page of the posts `filter` selects, how many there are in all (for a search, at most
/// [`SEARCH_COUNT_CAP`]), and whether the count stopped at the cap.
pub async fn query_posts(
    client: &impl GenericClient,
    filter: &Filter<'_>,
    paging: Paging,
) -> Result<(Vec<PostRow>, i64, bool), StoreError> {
    let Statements {
        list,
        count,
        matches,
        params,
    } = statements(filter, paging);
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
    let count_refs = &refs[..refs.len() - 2];
    if filter.query.is_some() {
        return search(client, filter, paging, &matches, &list, &refs).await;
    }
    let list = client.prepare_cached(&list).await?;
    let count = client.prepare_cached(&count).await?;
    let (rows, total) = tokio::try_join!(client.query(&list, &refs), client.query_one(&count, count_refs))?;
    Ok((rows.iter().map(PostRow::read).collect(), total.get(0), false))
}

const PAGE_OF_IDS: &str = concat!(
    "SELECT ",
    post_columns!(),
    " FROM unnest($1::bigint[]) AS m (id) JOIN post_stats s ON s.post_id = m.id
       JOIN posts p ON p.id = s.post_id JOIN users u ON u.id = p.author_id
     ORDER BY {order} LIMIT $2 OFFSET $3"
);

/// A search in two steps, each planned for its own words (not prepared once for all): the
/// first reads up to [`SEARCH_COUNT_CAP`] + 1 matches through the search index. When that is
/// all of them (a rare word), the page is cut from those; when there are more (a word in
/// many posts), the page is read in the list's order, where matches are dense enough to be
/// found at once. So neither a rare word (few matches anywhere) nor a common one (most
/// posts match) makes PostgreSQL read the whole table.
async fn search(
    client: &impl GenericClient,
    filter: &Filter<'_>,
    paging: Paging,
    matches: &str,
    list: &str,
    refs: &[&(dyn ToSql + Sync)],
) -> Result<(Vec<PostRow>, i64, bool), StoreError> {
    let ids: Vec<i64> = client
        .query(matches, &refs[..refs.len() - 2])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    if ids.len() as i64 > SEARCH_COUNT_CAP {
        let rows = client.query(list, refs).await?;
        return Ok((rows.iter().map(PostRow::read).collect(), SEARCH_COUNT_CAP, true));
    }
    let total = ids.len() as i64;
    let sql = PAGE_OF_IDS.replace("{order}", filter.sort.order());
    let rows = client.query(&sql, &[&ids, &paging.limit(), &paging.offset()]).await?;
    Ok((rows.iter().map(PostRow::read).collect(), total, false))
}

/// The list answer: `{"items", "page", "size", "total", "sort", "range", "board_id"}`.
fn list_json(
    (posts, total, capped): (Vec<PostRow>, i64, bool),
    paging: Paging,
    filter: &Filter<'_>,
    range: Range,
) -> Result<Bytes, AppError> {
    let items: Vec<serde_json::Value> = posts.iter().map(|p| p.item(filter.reveal)).collect();
    let mut value = serde_json::to_value(paging.listing(total, items)).map_err(|e| AppError::Internal(e.into()))?;
    if filter.query.is_some() {
        value["total_capped"] = capped.into();
    }
    value["sort"] = filter.sort.as_str().into();
    value["range"] = range.as_str().into();
    value["board_id"] = filter.board_id.into();
    Ok(Bytes::from(value.to_string()))
}

/// A public list (no search, no author), from memory when it can be.
pub async fn public_list(state: &State, key: ListKey) -> Result<Bytes, AppError> {
    let community = &state.community;
    if let Some(hit) = community.lists.get(&key) {
        return Ok(hit);
    }
    // One load per list at a time: when a hot list expires under load, the other readers
    // wait for this load instead of each querying.
    let flight = community.list_flights.of(&key);
    let _flying = flight.lock().await;
    if let Some(hit) = community.lists.get(&key) {
        return Ok(hit);
    }
    let generation = community.generation.load(Ordering::SeqCst);
    let body = Box::pin(async {
        let filter = Filter {
            board_id: key.board_id,
            author_id: None,
            followed_by: None,
            query: None,
            since: key.range.since(OffsetDateTime::now_utc()),
            sort: key.sort,
            reveal: false,
        };
        let paging = Paging {
            page: key.page,
            size: key.size,
        };
        let client = state.store.client().await?;
        list_json(query_posts(&client, &filter, paging).await?, paging, &filter, key.range)
    })
    .await?;
    if community.generation.load(Ordering::SeqCst) == generation {
        community.lists.insert(key, body.clone());
        community.list_front.changed();
    }
    Ok(body)
}

/// `GET /api/community/posts?…` when its answer is a public list in memory: what [`posts`]
/// answers then, without a future (the request path answers it at once). `None` for a
/// search, an author's list, a bad parameter or a miss: the general path handles those.
pub fn posts_cached(state: &State, query: Option<&str>, now: std::time::Instant) -> Option<Bytes> {
    let params = ListParams::parse(query, Sort::New).ok()?;
    if params.query.is_some() || params.author_id.is_some() {
        return None;
    }
    let key = ListKey {
        board_id: params.board_id,
        sort: params.sort,
        range: params.range,
        page: params.paging.page,
        size: params.paging.size,
    };
    let community = &state.community;
    community
        .list_front
        .get_or(&key, now, || community.lists.get(&key).map(|body| (body, None)))
}

/// A positive id parameter, if given.
fn id_param(query: Option<&str>, name: &str, code: &'static str) -> Result<Option<i64>, AppError> {
    match extract::query_param(query, name)?.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => crate::http::route::path_id(&text)
            .map(Some)
            .ok_or_else(|| AppError::invalid(code, format!("{name} must be a positive whole number"))),
    }
}

/// The parameters of `GET /api/community/posts`.
pub struct ListParams {
    pub board_id: Option<i64>,
    pub author_id: Option<i64>,
    pub query: Option<Query>,
    pub sort: Sort,
    pub range: Range,
    pub paging: Paging,
}

impl ListParams {
    pub fn parse(query: Option<&str>, default_sort: Sort) -> Result<ListParams, AppError> {
        let sort = match extract::query_param(query, "sort")?.as_deref() {
            None | Some("") => default_sort,
            Some(text) => {
                Sort::parse(text).ok_or_else(|| AppError::invalid("invalid_sort", "sort must be new, hot or top"))?
            }
        };
        let range = match extract::query_param(query, "range")?.as_deref() {
            None | Some("") => Range::All,
            Some(text) => Range::parse(text)
                .ok_or_else(|| AppError::invalid("invalid_range", "range must be day, week or all"))?,
        };
        let q = extract::query_param(query, "q")?.unwrap_or_default();
        Ok(ListParams {
            board_id: id_param(query, "board_id", "invalid_board_id")?,
            author_id: id_param(query, "author_id", "invalid_author_id")?,
            query: Query::parse(&q)?,
            sort,
            range,
            paging: Paging::standard(query)?,
        })
    }
}

/// The answer of `GET /api/community/posts` for `params`, as `reveal`ing (an admin) or not.
pub async fn posts_body(state: &State, params: &ListParams, reveal: bool) -> Result<Bytes, AppError> {
    if params.query.is_none() && params.author_id.is_none() {
        let key = ListKey {
            board_id: params.board_id,
            sort: params.sort,
            range: params.range,
            page: params.paging.page,
            size: params.paging.size,
        };
        return public_list(state, key).await;
    }
    let filter = Filter {
        board_id: params.board_id,
        author_id: params.author_id,
        followed_by: None,
        query: params.query.as_ref(),
        since: params.range.since(OffsetDateTime::now_utc()),
        sort: params.sort,
        reveal,
    };
    let client = state.store.client().await?;
    list_json(
        query_posts(&client, &filter, params.paging).await?,
        params.paging,
        &filter,
        params.range,
    )
}

/// `GET /api/community/posts?board_id=&author_id=&q=&sort=&range=&page=&size=`
pub async fn posts(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let params = ListParams::parse(parts.uri.query(), Sort::New)?;
    let reveal = if params.author_id.is_some() {
        let viewer = state.sessions.principal(&state.store, parts).await.ok().flatten();
        viewer.is_some_and(|v| v.role == Role::Admin)
    } else {
        false
    };
    Ok(respond::json(StatusCode::OK, posts_body(state, &params, reveal).await?))
}

/// The feed page of `user_id`: posts of the users they follow, newest first.
pub async fn feed_body(state: &State, user_id: i64, paging: Paging) -> Result<Bytes, AppError> {
    let filter = Filter {
        board_id: None,
        author_id: None,
        followed_by: Some(user_id),
        query: None,
        since: OffsetDateTime::UNIX_EPOCH,
        sort: Sort::New,
        reveal: false,
    };
    let client = state.store.client().await?;
    list_json(
        query_posts(&client, &filter, paging).await?,
        paging,
        &filter,
        Range::All,
    )
}

/// `GET /api/community/feed?page=&size=`: signed in.
pub async fn feed(state: &State, parts: &Parts) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    let paging = Paging::standard(parts.uri.query())?;
    Ok(respond::json(
        StatusCode::OK,
        feed_body(state, principal.user_id, paging).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_number_their_parameters_in_order() {
        let query = Query::parse("天气").unwrap().unwrap();
        let filter = Filter {
            board_id: Some(2),
            author_id: None,
            followed_by: None,
            query: Some(&query),
            since: OffsetDateTime::UNIX_EPOCH,
            sort: Sort::Hot,
            reveal: false,
        };
        let Statements {
            list,
            count,
            matches,
            params,
        } = statements(&filter, Paging { page: 2, size: 10 });
        assert_eq!(params.len(), 5);
        assert!(
            matches.starts_with("SELECT p.id FROM posts p WHERE") && matches.contains("p.board_id = $2"),
            "{matches}"
        );
        assert!(
            list.contains("s.board_id = $2") && list.contains("p.grams @> $3"),
            "{list}"
        );
        assert!(!list.contains("strpos"), "a two-character query is exact");
        assert!(
            list.contains("ORDER BY s.hot DESC, s.post_id DESC LIMIT $4 OFFSET $5"),
            "{list}"
        );
        assert!(count.contains("JOIN posts p") && !count.contains("LIMIT"), "{count}");
        let plain = Filter {
            query: None,
            ..filter.clone()
        };
        let Statements { list, count, .. } = statements(&plain, Paging { page: 1, size: 20 });
        assert!(
            list.contains("ORDER BY s.pinned DESC, s.hot DESC"),
            "pinned first on a board"
        );
        assert!(!count.contains("JOIN"), "{count}");
        for (text, sort) in [("new", Sort::New), ("hot", Sort::Hot), ("top", Sort::Top)] {
            assert_eq!(Sort::parse(text), Some(sort));
            assert_eq!(sort.as_str(), text);
        }
        assert_eq!(Range::parse("month"), None);
    }
}
