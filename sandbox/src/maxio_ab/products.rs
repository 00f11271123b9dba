//! Products: read by id or by handle.
//!
//! DOC: the paths are `GET /products/{id}.json` and `GET /products/handle/{handle}.json`
//! (not `handle:<h>` as for components); both answer `{"product": {...}}` with the product's
//! family embedded, and an unknown product is a 404.

use std::sync::Arc;

use axum::extract::{Path, State as AxState};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::App;
use super::http::{Reply, json_segment, numeric_segment};

/// `GET /products/{id}.json`.
pub(super) async fn read(AxState(app): AxState<Arc<App>>, Path(file): Path<String>) -> Response {
    let store = app.store();
    numeric_segment(&file)
        .and_then(|id| store.product(id))
        .map(|p| Reply::ok(json!({ "product": store.render_product(p) })))
        .unwrap_or_else(Reply::not_found)
        .into_response()
}

/// `GET /products/handle/{handle}.json`.
pub(super) async fn by_handle(
    AxState(app): AxState<Arc<App>>,
    Path(file): Path<String>,
) -> Response {
    let store = app.store();
    json_segment(&file)
        .and_then(|handle| store.product_by_handle(handle))
        .map(|p| Reply::ok(json!({ "product": store.render_product(p) })))
        .unwrap_or_else(Reply::not_found)
        .into_response()
}
