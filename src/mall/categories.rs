//! The category tree: served from memory (`GET /api/mall/categories`, one query per change),
//! managed by admins (`/api/admin/mall/categories…`). A category cannot be deleted while a
//! product or a child category uses it (409: the foreign keys decide, so a product created at
//! the same moment cannot slip in), nor moved under itself or its descendants.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use deadpool_postgres::GenericClient;
use http::StatusCode;
use http::request::Parts;
use serde::{Deserialize, Serialize};

use super::{audit_actor, double_option, json_answer, json_body, text};
use crate::account::Role;
use crate::app::State;
use crate::error::AppError;
use crate::http::respond::{self, Response};
use crate::store::{Store, StoreError};

/// A category with its children, as the tree shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub id: i64,
    pub name: String,
    pub parent_id: Option<i64>,
    pub sort_order: i32,
    pub children: Vec<Node>,
}

/// The whole tree, read at once.
#[derive(Debug)]
pub struct Tree {
    pub roots: Vec<Node>,
    /// Every category, parents before their children (depth first, in display order), with
    /// its depth.
    pub flat: Vec<(i64, String, usize)>,
    /// Each category with all its descendants (itself first).
    descendants: HashMap<i64, Vec<i64>>,
    /// `{"items":[…]}`, ready to send.
    pub json: Bytes,
}

impl Tree {
    /// `id` and its descendants; `None` for an unknown category.
    pub fn with_descendants(&self, id: i64) -> Option<&[i64]> {
        self.descendants.get(&id).map(Vec::as_slice)
    }

    /// Builds the tree from `(id, parent_id, name, sort_order)` rows in display order.
    pub fn build(rows: Vec<(i64, Option<i64>, String, i32)>) -> Tree {
        let mut children: HashMap<Option<i64>, Vec<(i64, String, i32)>> = HashMap::new();
        for (id, parent, name, sort) in rows {
            children.entry(parent).or_default().push((id, name, sort));
        }
        fn grow(
            parent: Option<i64>,
            depth: usize,
            children: &HashMap<Option<i64>, Vec<(i64, String, i32)>>,
            flat: &mut Vec<(i64, String, usize)>,
        ) -> Vec<Node> {
            let Some(list) = children.get(&parent) else {
                return Vec::new();
            };
            list.iter()
                .map(|(id, name, sort)| {
                    flat.push((*id, name.clone(), depth));
                    Node {
                        id: *id,
                        name: name.clone(),
                        parent_id: parent,
                        sort_order: *sort,
                        children: grow(Some(*id), depth + 1, children, flat),
                    }
                })
                .collect()
        }
        let mut flat = Vec::new();
        let roots = grow(None, 0, &children, &mut flat);
        let mut descendants = HashMap::new();
        fn collect(node: &Node, out: &mut HashMap<i64, Vec<i64>>) -> Vec<i64> {
            let mut ids = vec![node.id];
            for child in &node.children {
                ids.extend(collect(child, out));
            }
            out.insert(node.id, ids.clone());
            ids
        }
        for root in &roots {
            collect(root, &mut descendants);
        }
        let json = Bytes::from(serde_json::json!({"items": roots}).to_string());
        Tree {
            roots,
            flat,
            descendants,
            json,
        }
    }
}

const SELECT_ALL: &str = "SELECT id, parent_id, name, sort_order FROM mall_categories ORDER BY sort_order, id";

async fn load(store: &Store) -> Result<Arc<Tree>, StoreError> {
    let client = store.client().await?;
    let statement = client.prepare_cached(SELECT_ALL).await?;
    let rows = client.query(&statement, &[]).await?;
    Ok(Arc::new(Tree::build(
        rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect(),
    )))
}

/// The current tree, from memory.
pub async fn tree(state: &State) -> Result<Arc<Tree>, AppError> {
    state
        .mall
        .categories
        .get_or_load((), load(&state.store))
        .await
        .map_err(|e| super::load_error(&e))
}

/// `GET /api/mall/categories`: `{"items":[{"id","name","parent_id","sort_order","children"}]}`.
pub async fn public(state: &State) -> Result<Response, AppError> {
    let tree = tree(state).await?;
    Ok(respond::json(StatusCode::OK, tree.json.clone()))
}

const PRODUCT_COUNTS: &str = "SELECT category_id, count(*) FROM mall_products GROUP BY category_id";

/// `GET /api/admin/mall/categories`: the tree flat, with how many products each holds.
pub async fn admin_list(state: &State, parts: &Parts) -> Result<Response, AppError> {
    state.sessions.require(&state.store, parts, Role::Admin).await?;
    let rows = admin_rows(state).await?;
    json_answer(StatusCode::OK, &serde_json::json!({"items": rows}))
}

/// A category as the admin page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct AdminRow {
    pub id: i64,
    pub name: String,
    pub parent_id: Option<i64>,
    pub sort_order: i32,
    pub depth: usize,
    pub products: i64,
    pub has_children: bool,
}

/// Every category, depth first, with product counts.
pub async fn admin_rows(state: &State) -> Result<Vec<AdminRow>, AppError> {
    let client = state.store.client().await?;
    let rows = client.query(SELECT_ALL, &[]).await.map_err(StoreError::from)?;
    let tree = Tree::build(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect());
    let counts: HashMap<i64, i64> = client
        .query(PRODUCT_COUNTS, &[])
        .await
        .map_err(StoreError::from)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let parents: HashMap<i64, (Option<i64>, i32)> = rows.iter().map(|r| (r.get(0), (r.get(1), r.get(3)))).collect();
    let has_children = |id: &i64| rows.iter().any(|r| r.get::<_, Option<i64>>(1) == Some(*id));
    Ok(tree
        .flat
        .iter()
        .map(|(id, name, depth)| AdminRow {
            has_children: has_children(id),
            id: *id,
            name: name.clone(),
            parent_id: parents.get(id).and_then(|p| p.0),
            sort_order: parents.get(id).map_or(0, |p| p.1),
            depth: *depth,
            products: counts.get(id).copied().unwrap_or(0),
        })
        .collect())
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "MallCategoryNew")]
pub(crate) struct CreateBody {
    name: String,
    #[serde(default)]
    parent_id: Option<i64>,
    #[serde(default)]
    sort_order: Option<i32>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "MallCategoryPatch")]
pub(crate) struct PatchBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    parent_id: Option<Option<i64>>,
    #[serde(default)]
    sort_order: Option<i32>,
}

const NAME_TAKEN: &[(&str, &str, &str)] = &[(
    "mall_categories_sibling_name_key",
    "category_name_taken",
    "a category of that name already exists at that place",
)];

/// Category writes are rare: they take this lock so two moves cannot make a cycle together.
const LOCK: &str = "LOCK TABLE mall_categories IN SHARE ROW EXCLUSIVE MODE";

const ROW_JSON: &str = "json_build_object('id', id, 'name', name, 'parent_id', parent_id, 'sort_order', sort_order)";

fn name(value: &str) -> Result<String, AppError> {
    text(value, 1, 32, false, "invalid_name", "name")
}

async fn parent_exists(client: &impl GenericClient, parent: Option<i64>) -> Result<(), AppError> {
    let Some(parent) = parent else { return Ok(()) };
    let found = client
        .query_opt("SELECT 1 FROM mall_categories WHERE id = $1", &[&parent])
        .await
        .map_err(StoreError::from)?;
    found
        .map(drop)
        .ok_or_else(|| AppError::invalid("invalid_parent", "parent_id names no category"))
}

/// `POST /api/admin/mall/categories` `{"name","parent_id","sort_order"}` → `201`.
pub async fn create(state: &State, parts: &Parts, body: &[u8], ip: IpAddr) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::Admin).await?;
    let input: CreateBody = json_body(parts, body)?;
    let name = name(&input.name)?;
    let ip = ip.to_string();
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    tx.batch_execute(LOCK).await.map_err(StoreError::from)?;
    parent_exists(&tx, input.parent_id).await?;
    let sql =
        format!("INSERT INTO mall_categories (name, parent_id, sort_order) VALUES ($1, $2, $3) RETURNING {ROW_JSON}");
    let row: serde_json::Value = tx
        .query_one(&sql, &[&name, &input.parent_id, &input.sort_order.unwrap_or(0)])
        .await
        .map_err(|e| AppError::from_unique(e, NAME_TAKEN))?
        .get(0);
    let target = format!("mall_category:{}", row["id"]);
    crate::store::audit::write(
        &tx,
        audit_actor(&principal, &ip),
        "mall_category.create",
        &target,
        None,
        Some(&row),
    )
    .await
    .map_err(StoreError::from)?;
    super::publish(&tx, &[], true).await.map_err(StoreError::from)?;
    tx.commit().await.map_err(StoreError::from)?;
    state.mall.categories_changed();
    json_answer(StatusCode::CREATED, &row)
}

/// `PATCH` (`{"name","parent_id","sort_order"}`, any of them; `parent_id: null` = a root) or
/// `DELETE /api/admin/mall/categories/{id}`.
pub async fn change(state: &State, parts: &Parts, id: i64, body: &[u8], ip: IpAddr) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::Admin).await?;
    let deleting = parts.method == http::Method::DELETE;
    let input: Option<PatchBody> = if deleting { None } else { Some(json_body(parts, body)?) };
    let ip = ip.to_string();
    let mut client = state.store.client().await?;
    let tx = client.transaction().await.map_err(StoreError::from)?;
    tx.batch_execute(LOCK).await.map_err(StoreError::from)?;
    let select = format!("SELECT {ROW_JSON} FROM mall_categories WHERE id = $1");
    let before: serde_json::Value = tx
        .query_opt(&select, &[&id])
        .await
        .map_err(StoreError::from)?
        .ok_or(AppError::NotFound)?
        .get(0);
    let target = format!("mall_category:{id}");
    let actor = audit_actor(&principal, &ip);
    let answer = match input {
        None => {
            delete(&tx, id).await?;
            crate::store::audit::write(&tx, actor, "mall_category.delete", &target, Some(&before), None)
                .await
                .map_err(StoreError::from)?;
            respond::with_body(
                StatusCode::NO_CONTENT,
                http::HeaderValue::from_static("text/plain"),
                Bytes::new(),
            )
        }
        Some(input) => {
            let after = update(&tx, id, input).await?;
            crate::store::audit::write(&tx, actor, "mall_category.update", &target, Some(&before), Some(&after))
                .await
                .map_err(StoreError::from)?;
            json_answer(StatusCode::OK, &after)?
        }
    };
    super::publish(&tx, &[], true).await.map_err(StoreError::from)?;
    tx.commit().await.map_err(StoreError::from)?;
    state.mall.categories_changed();
    Ok(answer)
}

const IS_DESCENDANT: &str = "WITH RECURSIVE up AS (
        SELECT id, parent_id FROM mall_categories WHERE id = $1
        UNION ALL
        SELECT c.id, c.parent_id FROM mall_categories c JOIN up ON c.id = up.parent_id)
     SELECT EXISTS (SELECT 1 FROM up WHERE id = $2)";

async fn update(tx: &impl GenericClient, id: i64, input: PatchBody) -> Result<serde_json::Value, AppError> {
    let name = input.name.as_deref().map(name).transpose()?;
    let (move_it, parent) = match input.parent_id {
        Some(parent) => (true, parent),
        None => (false, None),
    };
    if let Some(parent) = parent {
        parent_exists(tx, Some(parent)).await?;
        // Under the table lock: is `id` among the ancestors of the new parent (or it)?
        let cycle: bool = tx
            .query_one(IS_DESCENDANT, &[&parent, &id])
            .await
            .map_err(StoreError::from)?
            .get(0);
        if cycle {
            return Err(AppError::invalid(
                "invalid_parent",
                "a category cannot move under itself or one of its descendants",
            ));
        }
    }
    let sql = format!(
        "UPDATE mall_categories SET name = coalesce($2, name),
                parent_id = CASE WHEN $3 THEN $4 ELSE parent_id END,
                sort_order = coalesce($5, sort_order), updated_at = now()
          WHERE id = $1 RETURNING {ROW_JSON}"
    );
    Ok(tx
        .query_one(&sql, &[&id, &name, &move_it, &parent, &input.sort_order])
        .await
        .map_err(|e| AppError::from_unique(e, NAME_TAKEN))?
        .get(0))
}

async fn delete(tx: &impl GenericClient, id: i64) -> Result<(), AppError> {
    // The foreign keys decide (a product made at this moment cannot slip in); the
    // constraint that refused says why. The transaction is then rolled back.
    match tx.execute("DELETE FROM mall_categories WHERE id = $1", &[&id]).await {
        Ok(_) => Ok(()),
        Err(e) => {
            let constraint = e.as_db_error().and_then(|d| d.constraint()).unwrap_or_default();
            match constraint {
                "mall_products_category_id_fkey" => Err(AppError::conflict(
                    "category_in_use",
                    "products are in this category; move or delete them first",
                )),
                "mall_categories_parent_id_fkey" => Err(AppError::conflict(
                    "category_has_children",
                    "this category has sub-categories; move or delete them first",
                )),
                _ => Err(AppError::from(StoreError::from(e))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_nests_children_and_knows_every_descendant() {
        let tree = Tree::build(vec![
            (1, None, "服装".into(), 0),
            (2, Some(1), "女装".into(), 0),
            (3, Some(2), "连衣裙".into(), 0),
            (4, None, "数码".into(), 1),
            (5, Some(1), "男装".into(), 1),
        ]);
        assert_eq!(tree.roots.len(), 2);
        assert_eq!(tree.roots[0].children[0].children[0].name, "连衣裙");
        assert_eq!(tree.with_descendants(1), Some(&[1, 2, 3, 5][..]));
        assert_eq!(tree.with_descendants(3), Some(&[3][..]));
        assert_eq!(tree.with_descendants(9), None);
        let order: Vec<(i64, usize)> = tree.flat.iter().map(|(id, _, d)| (*id, *d)).collect();
        assert_eq!(order, [(1, 0), (2, 1), (3, 2), (5, 1), (4, 0)]);
        let json: serde_json::Value = serde_json::from_slice(&tree.json).unwrap();
        assert_eq!(json["items"][0]["children"][1]["name"], "男装");
        assert_eq!(json["items"][1]["parent_id"], serde_json::Value::Null);
    }
}
