//! The community's pages (being written).

use http::request::Parts;

use crate::app::State;
use crate::error::AppError;
use crate::http::respond::Response;

pub async fn home(_state: &State, _parts: &Parts) -> Result<Response, AppError> {
    Err(AppError::NotFound)
}
pub async fn compose(_state: &State, _parts: &Parts) -> Result<Response, AppError> {
    Err(AppError::NotFound)
}
pub async fn post(_state: &State, _parts: &Parts, _id: i64) -> Result<Response, AppError> {
    Err(AppError::NotFound)
}
pub async fn comment_link(_state: &State, _id: i64) -> Result<Response, AppError> {
    Err(AppError::NotFound)
}
pub async fn user(_state: &State, _parts: &Parts, _id: i64) -> Result<Response, AppError> {
    Err(AppError::NotFound)
}
