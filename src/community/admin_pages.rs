//! The community's admin page (being written).

use http::request::Parts;

use crate::app::State;
use crate::error::AppError;
use crate::http::respond::Response;

pub async fn page(_state: &State, _parts: &Parts) -> Result<Response, AppError> {
    Err(AppError::NotFound)
}
