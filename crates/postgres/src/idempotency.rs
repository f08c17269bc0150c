//! Idempotency keys in PostgreSQL. A write guarded by a key first *claims* it in its
//! transaction: a transaction-scoped advisory lock on the (user, key) pair tells a
//! repeat that arrives while the first request runs (409), and a key stored by an
//! earlier request is replayed or, for another request, refused (422). The write then
//! stores the key with its response in the same transaction, so that a crash leaves
//! neither a write without its key nor a key without its write.

use domain::idempotency::{Idempotency, KeyConflict, StoredResponse, RETENTION};
use domain::{Caller, RepositoryError};
use tokio_postgres::Row;

use crate::rows;
use crate::tx::Tx;

/// The class of the advisory locks on keys (the two-key form, whose key space is not
/// the one-key form's of the migration lock). "ik" in ASCII.
const KEY_LOCK_CLASS: i32 = 0x696b;

const LOCK: &str = concat!(
    "SELECT pg_try_advisory_xact_lock($1::int4, hashtext($2::int8::text || '/' || $3::text)) ",
    "AS locked"
);

/// Keys older than the retention are expired: ignored here and overwritten by `STORE`.
const FIND: &str = concat!(
    "SELECT fingerprint, status, location, etag, body FROM idempotency_keys ",
    "WHERE user_id = $1 AND key = $2 AND created_at > now() - make_interval(secs => $3::float8)"
);

pub(crate) const STORE: &str = concat!(
    "INSERT INTO idempotency_keys (user_id, key, fingerprint, status, location, etag, body) ",
    "VALUES ($1, $2, $3, $4, $5, $6, $7) ",
    "ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, ",
    "created_at = now(), status = EXCLUDED.status, location = EXCLUDED.location, ",
    "etag = EXCLUDED.etag, body = EXCLUDED.body"
);

/// Deletes a batch of expired keys; run until it deletes fewer than the batch.
pub(crate) const FORGET_BATCH: i64 = 10_000;
pub(crate) const FORGET: &str = concat!(
    "DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(",
    "SELECT ctid FROM idempotency_keys WHERE created_at < $1 LIMIT $2))"
);

/// What claiming a key found.
pub(crate) enum Claim {
    /// The key is free: write, then store it with [`Stored::new`].
    Free,
    /// An earlier request with this key and the same fingerprint: its response.
    Replay(StoredResponse),
}

/// Claims the key for `actor` in `tx`, as the transaction's first statements. On a
/// conflict the transaction is rolled back.
pub(crate) async fn claim<T>(
    tx: &mut Tx,
    actor: Caller,
    key: &Idempotency<T>,
) -> Result<Claim, ClaimError> {
    let user_id = actor.id.get();
    let retention_secs = RETENTION.as_seconds_f64();
    let found = tx
        .run(&[
            (LOCK, &[&KEY_LOCK_CLASS, &user_id, &key.key.as_str()]),
            (FIND, &[&user_id, &key.key.as_str(), &retention_secs]),
        ])
        .await?;
    let locked = found
        .first()
        .and_then(|rows| rows.first())
        .map(|row| rows::column::<bool>(row, "locked"))
        .transpose()?
        .unwrap_or(false);
    if !locked {
        return Err(KeyConflict::InUse.into());
    }
    match found.get(1).and_then(|rows| rows.first()) {
        None => Ok(Claim::Free),
        Some(row) if fingerprint(row)? == key.fingerprint.0 => Ok(Claim::Replay(response(row)?)),
        Some(_) => Err(KeyConflict::Reused.into()),
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ClaimError {
    #[error(transparent)]
    Conflict(#[from] KeyConflict),
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

fn fingerprint(row: &Row) -> Result<Vec<u8>, RepositoryError> {
    rows::column(row, "fingerprint")
}

fn response(row: &Row) -> Result<StoredResponse, RepositoryError> {
    let status: i16 = rows::column(row, "status")?;
    Ok(StoredResponse {
        status: u16::try_from(status)
            .map_err(|_| RepositoryError::msg(format!("stored status {status}")))?,
        location: rows::column(row, "location")?,
        etag: rows::column(row, "etag")?,
        body: rows::column(row, "body")?,
    })
}

/// The parameters of `STORE` for a key and the response to remember.
pub(crate) struct Stored {
    user_id: i64,
    key: String,
    fingerprint: Vec<u8>,
    status: i16,
    location: Option<String>,
    etag: Option<String>,
    body: Vec<u8>,
}

impl Stored {
    pub(crate) fn new<T>(actor: Caller, key: &Idempotency<T>, written: &T) -> Self {
        let response = (key.render)(written);
        Self {
            user_id: actor.id.get(),
            key: key.key.as_str().to_owned(),
            fingerprint: key.fingerprint.0.to_vec(),
            // Only 2xx responses are remembered (a CHECK holds it); the renderer
            // answers a successful write.
            status: i16::try_from(response.status).unwrap_or(i16::MAX),
            location: response.location,
            etag: response.etag,
            body: response.body,
        }
    }

    /// The parameters of `STORE`.
    pub(crate) fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 7] {
        [
            &self.user_id,
            &self.key,
            &self.fingerprint,
            &self.status,
            &self.location,
            &self.etag,
            &self.body,
        ]
    }
}
