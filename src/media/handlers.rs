//! `POST /api/images` (multipart part `file`, or the raw bytes) and `GET /media/{id}[/thumb]`
//! (from memory after the first read, `304` on a matching `If-None-Match`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::digest;
use bytes::Bytes;
use http::StatusCode;
use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;
use hyper::body::Incoming;

use super::{Blob, Media, decode, hex, id_bytes};
use crate::account::Role;
use crate::app::State;
use crate::error::AppError;
use crate::http::extract;
use crate::http::respond::{self, Response};
use crate::store::{Store, StoreError};

const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
/// Images are never documents: nothing in them may run or load anything.
const SANDBOX: HeaderValue = HeaderValue::from_static("default-src 'none'; sandbox");

/// How the upload's bytes arrive.
enum Upload {
    Multipart(String),
    Raw,
}

fn upload_kind(headers: &HeaderMap) -> Result<Upload, AppError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "multipart/form-data" => multer::parse_boundary(content_type)
            .map(Upload::Multipart)
            .map_err(|_| AppError::Malformed("the multipart body has no boundary".into())),
        "image/jpeg" | "image/png" | "image/webp" | "image/gif" => Ok(Upload::Raw),
        _ => Err(AppError::UnsupportedImage {
            message: "send multipart/form-data with a part named file, or the image with Content-Type image/jpeg, image/png, image/webp or image/gif".into(),
        }),
    }
}

/// `POST /api/images`: signed in, within the user's upload rate; the body within
/// `media.max_bytes`; decoded, re-encoded and stored under the SHA-256 of the stored bytes.
pub async fn upload(state: &State, parts: &Parts, body: Incoming, ip: IpAddr) -> Result<Response, AppError> {
    let principal = state.sessions.require(&state.store, parts, Role::User).await?;
    let media = &state.media;
    media.check_rate(principal.user_id)?;
    let kind = upload_kind(&parts.headers)?;
    let max = media.settings.max_bytes;
    let too_large = AppError::TooLarge { limit: max };
    let timeout = Duration::from_secs(media.settings.read_timeout_secs);
    let body = match extract::body(body, max + super::MULTIPART_SLACK, timeout).await {
        Err(AppError::TooLarge { .. }) => return Err(too_large),
        other => other?,
    };
    let data = match kind {
        Upload::Raw => body,
        Upload::Multipart(boundary) => file_part(body, boundary, max).await?,
    };
    if data.len() > max {
        return Err(too_large);
    }
    let processed = media.process(data).await?;
    let id = hex(digest::digest(&digest::SHA256, &processed.bytes).as_ref());
    crate::store::bounded(save(&state.store, &id, &processed, principal.user_id, ip)).await?;
    let json = serde_json::json!({
        "id": id,
        "url": super::url(&id),
        "thumb_url": super::thumb_url(&id),
        "width": processed.width,
        "height": processed.height,
    });
    Ok(respond::json(StatusCode::CREATED, json.to_string()))
}

/// The bytes of the part named `file` (what `wx.uploadFile` sends).
async fn file_part(body: Bytes, boundary: String, max: usize) -> Result<Bytes, AppError> {
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(body) });
    let constraints = multer::Constraints::new().size_limit(multer::SizeLimit::new().per_field(max as u64));
    let mut multipart = multer::Multipart::with_constraints(stream, boundary, constraints);
    let refuse = |e: multer::Error| match e {
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
            AppError::TooLarge { limit: max }
        }
        other => AppError::Malformed(format!("the multipart body could not be read: {other}").into()),
    };
    while let Some(field) = multipart.next_field().await.map_err(refuse)? {
        if field.name() == Some("file") {
            return field.bytes().await.map_err(refuse);
        }
    }
    Err(AppError::invalid(
        "missing_file",
        "the multipart body has no part named file",
    ))
}

const INSERT_IMAGE: &str = "INSERT INTO images (id, content_type, bytes, width, height, thumb, thumb_type)
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING";
const INSERT_UPLOAD: &str = "INSERT INTO image_uploads (image_id, user_id, ip) VALUES ($1, $2, $3)";

/// The image (once, whoever uploads it first) and this upload, in one transaction.
async fn save(store: &Store, id: &str, image: &decode::Processed, user_id: i64, ip: IpAddr) -> Result<(), StoreError> {
    let mut client = store.client().await?;
    let tx = client.transaction().await?;
    let (thumb, thumb_type) = match &image.thumb {
        Some((bytes, kind)) => (Some(bytes.as_slice()), Some(*kind)),
        None => (None, None),
    };
    let insert = tx.prepare_cached(INSERT_IMAGE).await?;
    tx.execute(
        &insert,
        &[
            &id,
            &image.content_type,
            &image.bytes.as_slice(),
            &(image.width as i32),
            &(image.height as i32),
            &thumb,
            &thumb_type,
        ],
    )
    .await?;
    let record = tx.prepare_cached(INSERT_UPLOAD).await?;
    tx.execute(&record, &[&id, &user_id, &ip.to_string()]).await?;
    tx.commit().await?;
    Ok(())
}

/// `GET /media/{id}` and `GET /media/{id}/thumb`.
pub async fn serve(state: &State, parts: &Parts, id: &str, thumb: bool) -> Result<Response, AppError> {
    let blob = state
        .media
        .blob(&state.store, id, thumb)
        .await?
        .ok_or(AppError::NotFound)?;
    let matches = parts
        .headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == blob.etag.as_bytes()
        });
    let mut response = if matches {
        let mut r = respond::with_body(StatusCode::NOT_MODIFIED, blob.content_type.clone(), Bytes::new());
        r.headers_mut().remove(header::CONTENT_TYPE);
        r
    } else {
        respond::with_body(StatusCode::OK, blob.content_type.clone(), blob.bytes.clone())
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, blob.etag.clone());
    headers.insert(header::CACHE_CONTROL, IMMUTABLE);
    headers.insert(header::CONTENT_SECURITY_POLICY, SANDBOX);
    Ok(response)
}

const SELECT_IMAGE: &str = "SELECT content_type, bytes FROM images WHERE id = $1";
const SELECT_THUMB: &str =
    "SELECT coalesce(thumb_type, content_type), coalesce(thumb, bytes) FROM images WHERE id = $1";

/// Why a blob could not be read.
#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error("no such image")]
    Unknown,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Media {
    /// The image or thumbnail `id`: from memory, else one query (concurrent misses share it).
    /// `Ok(None)` when there is no such image.
    pub async fn blob(&self, store: &Store, id: &str, thumb: bool) -> Result<Option<Arc<Blob>>, AppError> {
        let Some(key) = id_bytes(id) else { return Ok(None) };
        if let Some(hit) = self.cache.get(&(key, thumb)).await {
            return Ok(Some(hit));
        }
        let loaded = self.cache.try_get_with((key, thumb), load(store, id, thumb)).await;
        match loaded {
            Ok(blob) => Ok(Some(blob)),
            Err(e) => match &*e {
                LoadError::Unknown => Ok(None),
                LoadError::Store(s) => Err(AppError::Unavailable(StoreError::Unavailable(s.to_string()))),
            },
        }
    }
}

async fn load(store: &Store, id: &str, thumb: bool) -> Result<Arc<Blob>, LoadError> {
    let client = store.client().await?;
    let statement = client
        .prepare_cached(if thumb { SELECT_THUMB } else { SELECT_IMAGE })
        .await
        .map_err(StoreError::from)?;
    let row = client
        .query_opt(&statement, &[&id])
        .await
        .map_err(StoreError::from)?
        .ok_or(LoadError::Unknown)?;
    let content_type: &str = row.get(0);
    let bytes: Vec<u8> = row.get(1);
    let etag = if thumb {
        format!("\"{id}-thumb\"")
    } else {
        format!("\"{id}\"")
    };
    Ok(Arc::new(Blob {
        content_type: HeaderValue::from_str(content_type).map_err(|_| LoadError::Unknown)?,
        etag: HeaderValue::from_str(&etag).map_err(|_| LoadError::Unknown)?,
        bytes: Bytes::from(bytes),
    }))
}
