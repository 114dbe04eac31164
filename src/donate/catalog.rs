//! The category catalog, served from memory: one snapshot holds the categories, their JSON
//! and what the donate form offers, loaded with one query on first use and dropped when a
//! `categories` event arrives (from any instance) or after a minute at most. The home page
//! itself is rendered per request (its header shows who is signed in, in their language).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use crate::error::AppError;
use crate::pay::money::format_yuan;
use crate::pay::policy::{PaymentPolicy, Policy};
use crate::store::{Store, StoreError};

/// A donation category as donors see it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Category {
    pub id: i64,
    pub name: String,
    pub description: String,
}

/// Everything derived from one read of the categories.
#[derive(Debug)]
pub struct Snapshot {
    pub categories: Vec<Category>,
    /// `{"items":[…]}`, ready to send.
    pub json: Bytes,
    /// What the donate form offers.
    pub context: PageContext,
}

/// What the home page shows besides the categories.
#[derive(Debug, Clone)]
pub struct PageContext {
    /// Enabled channels: `wechat`, `alipay`.
    pub channels: Vec<&'static str>,
    /// Donation bounds, yuan strings.
    pub min_amount: String,
    pub max_amount: String,
}

impl PageContext {
    /// The donate form as `policy` has it now.
    pub fn from_policy(policy: &PaymentPolicy) -> PageContext {
        let mut channels = Vec::new();
        if policy.wechat {
            channels.push("wechat");
        }
        if policy.alipay {
            channels.push("alipay");
        }
        PageContext {
            channels,
            min_amount: format_yuan(policy.min_amount_fen),
            max_amount: format_yuan(policy.max_amount_fen),
        }
    }
}

/// The cache of [`Snapshot`]; concurrent misses share one load. The home page shows the
/// payment policy too, so a policy change drops the snapshot as well.
pub struct Catalog {
    cache: moka::future::Cache<(), Arc<Snapshot>>,
    policy: Arc<Policy>,
}

impl Catalog {
    pub fn new(policy: Arc<Policy>) -> Catalog {
        Catalog {
            cache: moka::future::Cache::builder()
                .max_capacity(1)
                .time_to_live(Duration::from_secs(60))
                .build(),
            policy,
        }
    }

    /// The current snapshot, loading it if needed.
    pub async fn snapshot(&self, store: &Store) -> Result<Arc<Snapshot>, AppError> {
        self.cache
            .try_get_with((), load(store, PageContext::from_policy(&self.policy.current())))
            .await
            .map_err(|e| match &*e {
                LoadError::Store(s) if s.is_unavailable() => {
                    AppError::Unavailable(StoreError::Unavailable(s.to_string()))
                }
                other => AppError::Internal(anyhow::anyhow!("loading the catalog: {other}")),
            })
    }

    /// The snapshot when it is in memory, without waiting (the cache's lookup does not wait
    /// on anything: one poll answers it).
    pub fn cached(&self) -> Option<Arc<Snapshot>> {
        use futures_util::FutureExt;
        self.cache.get(&()).now_or_never().flatten()
    }

    /// Forgets the snapshot; the next read loads a fresh one.
    pub fn invalidate(&self) {
        self.cache.invalidate_all();
    }
}

const SELECT_CATEGORIES: &str = "SELECT id, name, description FROM categories WHERE enabled ORDER BY sort_order, id";

/// Why a snapshot could not be made.
#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

async fn load(store: &Store, context: PageContext) -> Result<Arc<Snapshot>, LoadError> {
    let client = store.client().await?;
    let statement = client
        .prepare_cached(SELECT_CATEGORIES)
        .await
        .map_err(StoreError::from)?;
    let categories: Vec<Category> = client
        .query(&statement, &[])
        .await
        .map_err(StoreError::from)?
        .iter()
        .map(|row| Category {
            id: row.get(0),
            name: row.get(1),
            description: row.get(2),
        })
        .collect();
    let json = serde_json::json!({ "items": categories }).to_string();
    Ok(Arc::new(Snapshot {
        json: Bytes::from(json),
        context,
        categories,
    }))
}
