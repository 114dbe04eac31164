//! The crowdfunding pages.

use http::request::Parts;

use crate::app::State;
use crate::error::AppError;
use crate::http::respond::Response;

pub async fn list(_state: &State, _parts: &Parts) -> Result<Response, AppError> {
    Err(AppError::NotFound)
}

pub async fn detail(_state: &State, _parts: &Parts, _id: i64) -> Result<Response, AppError> {
    Err(AppError::NotFound)
}

pub async fn edit(_state: &State, _parts: &Parts, _id: Option<i64>) -> Result<Response, AppError> {
    Err(AppError::NotFound)
}

pub async fn dashboard(_state: &State, _parts: &Parts) -> Result<Response, AppError> {
    Err(AppError::NotFound)
}

pub async fn queue(_state: &State, _parts: &Parts) -> Result<Response, AppError> {
    Err(AppError::NotFound)
}
