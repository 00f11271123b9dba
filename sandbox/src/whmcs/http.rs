//! The one endpoint, `/includes/api.php`: request variables from the query and a form body,
//! per-action fault injection, the access-key and credential checks, dispatch by `action`, and
//! the answer in JSON (`responsetype=json`) or WHMCS's XML.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::params::Params;
use super::{App, EmptyLists, accounts, lock, orders, services};
use crate::observe::Fault;

/// The version the XML root element reports.
const WHMCS_VERSION: &str = "8.13.1";

/// An API answer before it is rendered: the HTTP status and the top-level fields, `result` first.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    pub status: StatusCode,
    pub body: Map<String, Value>,
}

impl Reply {
    /// HTTP 200, `result: success` and `fields` (an object).
    pub fn success(fields: Value) -> Reply {
        let mut body = Map::new();
        body.insert("result".into(), json!("success"));
        if let Value::Object(fields) = fields {
            body.extend(fields);
        }
        Reply {
            status: StatusCode::OK,
            body,
        }
    }

    /// A business or validation error: HTTP 200, `result: error` and `message`.
    pub fn error(message: impl Into<String>) -> Reply {
        Reply::refused(StatusCode::OK, message)
    }

    /// `result: error` and `message` with `status`.
    pub fn refused(status: StatusCode, message: impl Into<String>) -> Reply {
        let mut body = Map::new();
        body.insert("result".into(), json!("error"));
        body.insert("message".into(), Value::String(message.into()));
        Reply { status, body }
    }

    fn render(&self, json: bool, action: &str) -> Response {
        let (text, content_type) = if json {
            (
                Value::Object(self.body.clone()).to_string(),
                "application/json",
            )
        } else {
            (xml(action, &self.body), "text/xml; charset=utf-8")
        };
        let mut response = (self.status, text).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }
}

/// A list under its container (`{"order": [...]}`), or what an empty list looks like under
/// `shape` (`None`: the key is left out).
pub(super) fn container(shape: EmptyLists, item: &str, items: Vec<Value>) -> Option<Value> {
    if !items.is_empty() {
        return Some(json!({ item: items }));
    }
    match shape {
        EmptyLists::Omitted => None,
        EmptyLists::EmptyString => Some(json!("")),
        EmptyLists::EmptyArray => Some(json!([])),
        EmptyLists::EmptyContainer => Some(json!({ item: [] })),
    }
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// WHMCS's XML: `<whmcsapi version=".."><action>..</action>` then one element per field; a list
/// repeats its element (`<orders><order>..</order><order>..</order></orders>`).
fn xml(action: &str, body: &Map<String, Value>) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<whmcsapi version=\"{WHMCS_VERSION}\">\n<action>{}</action>\n",
        escape(&action.to_ascii_lowercase())
    );
    for (name, value) in body {
        element(&mut out, name, value);
    }
    out.push_str("</whmcsapi>\n");
    out
}

fn element(out: &mut String, name: &str, value: &Value) {
    match value {
        Value::Array(items) => {
            for item in items {
                element(out, name, item);
            }
        }
        Value::Object(fields) => {
            out.push_str(&format!("<{name}>\n"));
            for (child, value) in fields {
                element(out, child, value);
            }
            out.push_str(&format!("</{name}>\n"));
        }
        Value::Null => out.push_str(&format!("<{name}></{name}>\n")),
        Value::Bool(b) => {
            let text = if *b { "1" } else { "" };
            out.push_str(&format!("<{name}>{text}</{name}>\n"));
        }
        Value::Number(n) => out.push_str(&format!("<{name}>{n}</{name}>\n")),
        Value::String(s) => out.push_str(&format!("<{name}>{}</{name}>\n", escape(s))),
    }
}

/// `$_REQUEST`: the query's variables, overlaid with the body's when it is
/// `application/x-www-form-urlencoded`. PHP fills `$_POST` only from form bodies, so a JSON body
/// gives no variables and fails authentication. (Multipart bodies, which PHP also reads, are not
/// modelled: they give no variables either.)
pub(super) fn request_params(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Params {
    let query = Params::parse(
        uri.query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default(),
    );
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return query;
    }
    query.overlaid_with(Params::parse(
        url::form_urlencoded::parse(body).into_owned(),
    ))
}

/// The access-key check (standing in for the IP allow-list), then the API credentials.
/// `identifier`/`secret` may also come as `username`/`password`.
fn refusal(app: &App, params: &Params) -> Option<Reply> {
    if let Some(key) = &app.settings.access_key
        && params.scalar("accesskey") != Some(key.as_str())
    {
        return Some(Reply::refused(
            StatusCode::BAD_REQUEST,
            format!("Invalid IP {}", app.client_ip),
        ));
    }
    let identifier = params
        .scalar("identifier")
        .or_else(|| params.scalar("username"));
    let secret = params
        .scalar("secret")
        .or_else(|| params.scalar("password"));
    let valid = identifier == Some(app.settings.identifier.as_str())
        && secret == Some(app.settings.secret.as_str());
    (!valid).then(|| Reply::refused(StatusCode::FORBIDDEN, "Authentication Failed"))
}

async fn fault_response(fault: Fault) -> Response {
    if !fault.delay.is_zero() {
        tokio::time::sleep(fault.delay).await;
    }
    let mut response = (
        StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        fault.body,
    )
        .into_response();
    for (name, value) in &fault.headers {
        if let (Ok(n), Ok(v)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(n, v);
        }
    }
    response
}

/// `POST` (or `GET`) `/includes/api.php`.
pub(super) async fn api(
    State(app): State<Arc<App>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = request_params(&uri, &headers, &body);
    let json = params
        .scalar("responsetype")
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("json"));
    let action = params
        .scalar("action")
        .unwrap_or_default()
        .trim()
        .to_string();
    if let Some(fault) = app.take_fault(&action) {
        return fault_response(fault).await;
    }
    if let Some(reply) = refusal(&app, &params) {
        return reply.render(json, &action);
    }
    if action.is_empty() {
        return Reply::refused(StatusCode::BAD_REQUEST, "Empty action request").render(json, "");
    }
    let settings = &app.settings;
    let reply = {
        let mut store = lock(&app.store);
        // The daily cron, if the clock crossed midnight since it last ran.
        store.tick();
        match action.to_ascii_lowercase().as_str() {
            "addorder" => orders::add_order(settings, &mut store, &params),
            "acceptorder" => orders::accept_order(&mut store, &params),
            "cancelorder" => orders::cancel_order(&mut store, &params),
            "getorders" => orders::get_orders(settings, &store, &params),
            "getorderstatuses" => orders::get_order_statuses(&store),
            "addclient" => accounts::add_client(settings, &mut store, &params),
            "getclientsdetails" => accounts::get_clients_details(settings, &store, &params),
            "getclients" => accounts::get_clients(settings, &store, &params),
            "getclientsproducts" => accounts::get_clients_products(settings, &store, &params),
            "getpaymentmethods" => accounts::get_payment_methods(&store),
            "getcurrencies" => accounts::get_currencies(settings),
            "addcancelrequest" => services::add_cancel_request(&mut store, &params),
            "getcancelledpackages" => services::get_cancelled_packages(settings, &store, &params),
            "updateclientproduct" => services::update_client_product(&mut store, &params),
            _ => Reply::error("Command Not Found"),
        }
    };
    reply.render(json, &action)
}

/// Any other path: the web server's 404 page.
pub(super) async fn no_such_page() -> Response {
    let mut response = (
        StatusCode::NOT_FOUND,
        "<!DOCTYPE html><html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>",
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_repeats_list_elements_and_escapes_text() {
        let reply = Reply::success(json!({
            "orders": {"order": [{"id": "1", "notes": "a<b & c"}, {"id": "2"}]}
        }));
        let text = xml("GetOrders", &reply.body);
        assert!(text.contains("<action>getorders</action>"));
        assert!(text.contains("<result>success</result>"));
        assert!(text.contains(
            "<orders>\n<order>\n<id>1</id>\n<notes>a&lt;b &amp; c</notes>\n</order>\n<order>\n<id>2</id>\n</order>\n</orders>"
        ));
    }
}
