//! The audit log (`admin_audit`): who changed what, on which record, before and after. A
//! service below every module: the admin API writes its rows here, and so does the payment
//! engine when an operator's refund is queued, each in the transaction of the change.

use deadpool_postgres::GenericClient;

/// Who made a change and from where, for its audit row.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// The acting user (`None` for the command line or the system).
    pub user_id: Option<i64>,
    /// The name recorded: the username, else the display name; `cli` for the command line.
    pub name: &'a str,
    /// The client address the change came from.
    pub ip: &'a str,
}

const INSERT_AUDIT: &str = "INSERT INTO admin_audit (actor_id, actor, action, target, before, after, ip)
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Writes one audit row in the caller's transaction. `before`/`after` are the record's
/// state around the change (never secrets: no password hashes, no tokens).
pub async fn write(
    client: &impl GenericClient,
    actor: Actor<'_>,
    action: &str,
    target: &str,
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> Result<(), tokio_postgres::Error> {
    let statement = client.prepare_cached(INSERT_AUDIT).await?;
    client
        .execute(
            &statement,
            &[
                &actor.user_id,
                &actor.name,
                &action,
                &target,
                &before,
                &after,
                &actor.ip,
            ],
        )
        .await
        .map(drop)
}
