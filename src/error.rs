//! `AppError`: the one error type at the HTTP edge. Each variant has one status, one public
//! code and message in the contract's JSON shape; causes of 5xx answers are logged, never sent.
//! Provider callbacks answer in the providers' own formats and do not use this type.

use std::borrow::Cow;

use bytes::Bytes;
use http::StatusCode;

use crate::store::StoreError;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the request could not be read (bad JSON, bad query string, invalid UTF-8).
    #[error("{0}")]
    Malformed(Cow<'static, str>),
    /// 422: a field is invalid; `code` names the rule, e.g. `invalid_amount`.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        message: Cow<'static, str>,
    },
    /// 401: no valid session; sign in first.
    #[error("sign in first: no valid session was sent")]
    Unauthorized,
    /// 401: the username or password is wrong (which one is not said).
    #[error("wrong username or password")]
    BadCredentials,
    /// 429: too many failed sign-ins; the account is locked for a while.
    #[error("too many failed sign-ins; this account is locked, retry in {retry_after_secs} s")]
    Locked { retry_after_secs: u64 },
    /// 403: signed in, but the account's role does not allow this.
    #[error("your account is not allowed to do this")]
    Forbidden,
    /// 404
    #[error("not found")]
    NotFound,
    /// 405, with the methods the path does allow.
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    /// 408: the body did not arrive in time.
    #[error("request body not received in time")]
    BodyTimeout,
    /// 409: the request clashes with the record's state; `code` names the clash, e.g.
    /// `username_taken`.
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: Cow<'static, str>,
    },
    /// 409: the first request with this `Idempotency-Key` is still running; retry shortly.
    #[error("a request with this Idempotency-Key is still being processed; retry shortly")]
    KeyInUse,
    /// 413
    #[error("request body larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// 415
    #[error("content type must be {expected}")]
    UnsupportedMediaType { expected: &'static str },
    /// 415: an upload is not an image that can be read (the bytes decide, not the type).
    #[error("{message}")]
    UnsupportedImage { message: Cow<'static, str> },
    /// 429: this client sent too many requests of a kind; retry after the given seconds.
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// 503: a dependency (the database) is down; the cause is logged.
    #[error("service temporarily unavailable")]
    Unavailable(#[source] StoreError),
    /// 503: the payment provider failed or did not answer; the cause is logged.
    #[error("the payment provider is unavailable")]
    Provider(String),
    /// 500: a bug or an unexpected failure; the cause is logged.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            AppError::Unavailable(e)
        } else {
            AppError::Internal(e.into())
        }
    }
}

/// The engine's errors as a module's create or cancel answers them: a disabled channel or an
/// amount out of bounds is the client's (422), a provider failure 503, an unknown order 404.
impl From<crate::pay::engine::EngineError> for AppError {
    fn from(e: crate::pay::engine::EngineError) -> Self {
        use crate::pay::engine::EngineError;
        use crate::pay::money::format_yuan;
        match e {
            EngineError::ChannelDisabled(_) => {
                AppError::invalid("channel_disabled", "this payment channel is not available now")
            }
            EngineError::AmountOutOfBounds { min_fen, max_fen } => AppError::invalid(
                "invalid_amount",
                format!(
                    "amount must be between {} and {}",
                    format_yuan(min_fen),
                    format_yuan(max_fen)
                ),
            ),
            EngineError::Store(s) => AppError::from(s),
            EngineError::UnknownOrder => AppError::NotFound,
            EngineError::RefundRefused(message) => AppError::conflict("refund_refused", message),
            e @ (EngineError::Provider(_) | EngineError::Abandoned) => AppError::Provider(e.to_string()),
            e @ (EngineError::Mismatch(_) | EngineError::UnknownPurpose(_)) => AppError::Internal(e.into()),
        }
    }
}

impl AppError {
    /// A 422 for field `code`.
    pub fn invalid(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        AppError::Invalid {
            code,
            message: message.into(),
        }
    }

    /// A 409 named `code`.
    pub fn conflict(code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        AppError::Conflict {
            code,
            message: message.into(),
        }
    }

    /// A unique violation of one of `constraints` (`(constraint name, code, message)`) as its
    /// 409; any other database error as itself. The one place a duplicate becomes a 409.
    pub fn from_unique(e: tokio_postgres::Error, constraints: &[(&str, &'static str, &'static str)]) -> Self {
        if let Some(db) = e.as_db_error()
            && *db.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION
            && let Some(&(_, code, message)) = constraints.iter().find(|(name, ..)| db.constraint() == Some(*name))
        {
            return AppError::conflict(code, message);
        }
        AppError::from(StoreError::from(e))
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Malformed(_) => StatusCode::BAD_REQUEST,
            AppError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unauthorized | AppError::BadCredentials => StatusCode::UNAUTHORIZED,
            AppError::Locked { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Forbidden => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            AppError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            AppError::Conflict { .. } | AppError::KeyInUse => StatusCode::CONFLICT,
            AppError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType { .. } | AppError::UnsupportedImage { .. } => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) | AppError::Provider(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code of the contract's error JSON.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Malformed(_) => "malformed_request",
            AppError::Invalid { code, .. } => code,
            AppError::Unauthorized => "unauthorized",
            AppError::BadCredentials => "invalid_credentials",
            AppError::Locked { .. } => "account_locked",
            AppError::Forbidden => "forbidden",
            AppError::NotFound => "not_found",
            AppError::MethodNotAllowed { .. } => "method_not_allowed",
            AppError::BodyTimeout => "body_timeout",
            AppError::Conflict { code, .. } => code,
            AppError::KeyInUse => "idempotency_key_in_use",
            AppError::TooLarge { .. } => "payload_too_large",
            AppError::UnsupportedMediaType { .. } => "unsupported_media_type",
            AppError::UnsupportedImage { .. } => "unsupported_image",
            AppError::RateLimited { .. } => "rate_limited",
            AppError::Unavailable(_) => "service_unavailable",
            AppError::Provider(_) => "provider_unavailable",
            AppError::Internal(_) => "internal_error",
        }
    }

    /// `{"error":{"code":…,"message":…}}`; 5xx causes are logged here, not sent.
    pub fn to_json(&self, request_id: &str) -> Bytes {
        match self {
            AppError::Unavailable(cause) => {
                tracing::warn!(request_id, error = %cause, "answering 503: database unavailable")
            }
            AppError::Internal(cause) => {
                tracing::error!(request_id, error = format!("{cause:#}"), "answering 500")
            }
            AppError::Provider(cause) => {
                tracing::warn!(request_id, error = %cause, "answering 503: payment provider failed")
            }
            _ => {}
        }
        let message = match self {
            AppError::Unavailable(_) => "the service is temporarily unavailable; retry shortly".to_string(),
            AppError::Provider(_) => "the payment provider did not create the order; retry shortly".to_string(),
            AppError::Internal(_) => format!("internal error; quote request id {request_id} when reporting it"),
            other => other.to_string(),
        };
        let body = serde_json::json!({"error": {"code": self.code(), "message": message}});
        Bytes::from(body.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_never_show_their_cause() {
        let err = AppError::Internal(anyhow::anyhow!("password=hunter2 leaked"));
        let body = String::from_utf8(err.to_json("r-1").to_vec()).unwrap();
        assert!(!body.contains("hunter2"), "{body}");
        assert!(body.contains("\"code\":\"internal_error\""));
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn field_errors_carry_their_code_and_message() {
        let err = AppError::invalid("invalid_amount", "amount must be between 0.01 and 50000.00");
        let body: serde_json::Value = serde_json::from_slice(&err.to_json("r")).unwrap();
        assert_eq!(body["error"]["code"], "invalid_amount");
        assert_eq!(body["error"]["message"], "amount must be between 0.01 and 50000.00");
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
