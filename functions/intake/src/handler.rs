//! The intake handler: routes, authenticates, validates, dispatches, answers.
//!
//! - `POST /v1/deals` with JSON, signed (HMAC-SHA256) or with a bearer token.
//! - `POST /v1/outbound-messages/{token}` with a Salesforce Outbound Message (SOAP), from an
//!   allowed Organization Id; acknowledged only after every notification is enqueued.
//! - `POST /v1/maxio/webhooks/{site}` with an AB webhook (form-encoded), signed with the site's
//!   shared key; verified over the raw body before it is read, and answered once its hint is on
//!   the billing-sync queue (the Salesforce work is the billing sync's, never done inline).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use dealbridge::billing::hint::{Hint, Reason, Target};
use dealbridge::billing::webhook;
use dealbridge::clock::Clock;
use dealbridge::dispatch::{DispatchError, DispatchOutcome, DispatchRequest, Dispatcher};
use dealbridge::outbound::{self, FaultCode};
use dealbridge::queue::Queue;
use dealbridge::salesforce::SfId;
use dealbridge::secrets::{SecretStore, SecretsError, parse_json_secret};
use dealbridge::snapshot::{DealRef, SnapshotError};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use tracing::{error, info, warn};

use crate::auth::{AuthError, IntakeCredentials, verify_json, verify_soap_token};
use crate::body::BodyError;
use crate::request::parse_deal_request;
use crate::respond::{json, json_error, soap_ack, soap_fault};
use dealbridge::settings::IntakeSettings;
use dealbridge::wiring::{StartError, Wiring};
use dealbridge::writeback::WriteBack;

/// What the handler needs, built once per container.
pub struct Deps {
    pub dispatcher: Dispatcher,
    /// Where AB webhooks' hints go (the billing-sync queue).
    pub queue: Arc<dyn Queue>,
    /// Where a notification that can never be dispatched is reported before it is acknowledged.
    pub writeback: Arc<WriteBack>,
    pub secrets: Arc<dyn SecretStore>,
    pub settings: IntakeSettings,
    pub clock: Arc<dyn Clock>,
}

impl Deps {
    /// The intake's dependencies, from the one wiring.
    pub fn new(wiring: &Wiring) -> Result<Deps, StartError> {
        let settings = wiring
            .settings
            .intake
            .clone()
            .ok_or_else(|| StartError::new("the intake configuration was not read"))?;
        Ok(Deps {
            dispatcher: wiring.dispatcher(),
            queue: wiring.platform.queue.clone(),
            writeback: wiring.writeback(),
            secrets: wiring.platform.secrets.clone(),
            settings,
            clock: wiring.platform.clock.clone(),
        })
    }
}

/// Serves API Gateway's requests until the runtime stops, from their raw events
/// ([`crate::event`]), so no body reaches lambda_http's adapter undecoded.
pub async fn serve(wiring: &Wiring) -> Result<(), lambda_http::Error> {
    let deps = Deps::new(wiring)?;
    let deps = &deps;
    lambda_http::lambda_runtime::run(lambda_http::service_fn(
        move |event: lambda_http::LambdaEvent<Value>| async move {
            let response = crate::event::handle_event(event.payload, deps).await;
            dealbridge::metrics::flush("intake");
            Ok::<_, lambda_http::Error>(response)
        },
    ))
    .await
}

/// How long callers should wait before retrying when a dependency is unavailable.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);

enum Route {
    Deals,
    OutboundMessage(String),
    MaxioWebhook(String),
}

/// Whether `site` can be an AB site's name in dealbridge's configuration.
fn is_site_name(site: &str) -> bool {
    !site.is_empty()
        && site.len() <= 64
        && site
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The route of `path`, exactly: `/v1/deals` or `/v1/outbound-messages/{token}`, after the
/// API stage's name when the path carries it (a REST API's `/prod/v1/deals`).
fn route(path: &str, stage: Option<&str>) -> Option<Route> {
    let path = stage
        .filter(|s| !s.is_empty() && *s != "$default")
        .and_then(|s| path.strip_prefix('/')?.strip_prefix(s))
        .filter(|rest| rest.starts_with('/'))
        .unwrap_or(path);
    if path == "/v1/deals" || path == "/v1/deals/" {
        return Some(Route::Deals);
    }
    if let Some(site) = path.strip_prefix("/v1/maxio/webhooks/") {
        return is_site_name(site).then(|| Route::MaxioWebhook(site.to_string()));
    }
    let token = path.strip_prefix("/v1/outbound-messages/")?;
    (!token.is_empty() && !token.contains('/')).then(|| Route::OutboundMessage(token.to_string()))
}

/// The API Gateway stage the request came through.
fn stage(request: &Request) -> Option<String> {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV1(c) => c.stage.clone(),
        RequestContext::ApiGatewayV2(c) => c.stage.clone(),
        _ => None,
    }
}

pub async fn handle(request: Request, deps: &Deps) -> Response<Body> {
    let stage = stage(&request);
    let Some(route) = route(request.uri().path(), stage.as_deref()) else {
        return json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such resource; POST /v1/deals, /v1/outbound-messages/{token} or /v1/maxio/webhooks/{site}",
            None,
            None,
            None,
        );
    };
    if request.method() != Method::POST {
        return json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "use POST",
            None,
            None,
            None,
        );
    }
    match route {
        Route::Deals => deals(&request, deps).await,
        Route::OutboundMessage(token) => outbound_message(&request, &token, deps).await,
        Route::MaxioWebhook(site) => maxio_webhook(&request, &site, deps).await,
    }
}

/// Reads the intake credentials; the error is the answer to give.
async fn credentials(
    deps: &Deps,
) -> Result<IntakeCredentials, (StatusCode, String, Option<Duration>)> {
    let name = &deps.settings.secret_name;
    let secret = deps
        .secrets
        .secret_string(name)
        .await
        .map_err(|e| match e {
            SecretsError::Unavailable { .. } => {
                warn!(error = %e, "intake credentials unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "credentials store unavailable".to_string(),
                    Some(DEFAULT_RETRY_AFTER),
                )
            }
            other => {
                error!(error = %other, "intake credentials missing or malformed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the intake is misconfigured".to_string(),
                    None,
                )
            }
        })?;
    parse_json_secret(name, &secret).map_err(|e| {
        error!(error = %e, "intake credentials malformed");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the intake is misconfigured".to_string(),
            None,
        )
    })
}

fn new_correlation_id() -> String {
    let bytes: [u8; 12] = rand::random();
    format!("db-{}", hex::encode(bytes))
}

fn deal_json(deal: &DealRef) -> Value {
    json!({"type": deal.sobject(), "id": deal.id()})
}

async fn deals(request: &Request, deps: &Deps) -> Response<Body> {
    let body: &[u8] = request.body().as_ref();
    if body.len() > deps.settings.max_body_bytes {
        return json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            &format!(
                "the body has {} bytes; the limit is {}",
                body.len(),
                deps.settings.max_body_bytes
            ),
            None,
            None,
            None,
        );
    }
    let body = match crate::body::decoded(request.headers(), body, deps.settings.max_body_bytes) {
        Ok(b) => b,
        Err(e) => {
            let (status, code) = match e {
                BodyError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
                BodyError::Undecodable(_) => (StatusCode::BAD_REQUEST, "undecodable_body"),
                BodyError::UnsupportedEncoding(_) => {
                    (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_encoding")
                }
            };
            return json_error(status, code, &e.to_string(), None, None, None);
        }
    };
    let body: &[u8] = &body;
    let creds = match credentials(deps).await {
        Ok(c) => c,
        Err((status, message, retry)) => {
            return json_error(status, "unavailable", &message, None, None, retry);
        }
    };
    let now = deps.clock.now().timestamp();
    if let Err(e) = verify_json(
        request.headers(),
        body,
        &creds,
        now,
        deps.settings.signature_tolerance_secs,
    ) {
        warn!(reason = %e, "intake request refused");
        let code = match e {
            AuthError::Missing => "unauthenticated",
            _ => "invalid_credentials",
        };
        return json_error(
            StatusCode::UNAUTHORIZED,
            code,
            &e.to_string(),
            None,
            None,
            None,
        );
    }
    let parsed = match parse_deal_request(body) {
        Ok(p) => p,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                e.code,
                &e.message,
                e.field.as_deref(),
                None,
                None,
            );
        }
    };
    let correlation_id = parsed
        .correlation_id
        .clone()
        .unwrap_or_else(new_correlation_id);
    let dispatch = DispatchRequest {
        deal: parsed.deal.clone(),
        correlation_id: correlation_id.clone(),
        dry_run: parsed.dry_run,
        attempt: 0,
        idempotency_key: None,
        delayed_key: None,
    };
    match deps.dispatcher.dispatch(&dispatch).await {
        Ok(outcome) => {
            let status = match &outcome {
                DispatchOutcome::Planned { dry_run: true, .. }
                | DispatchOutcome::Deferred { dry_run: true, .. } => StatusCode::OK,
                _ => StatusCode::ACCEPTED,
            };
            let mut body = serde_json::to_value(&outcome).unwrap_or_else(|_| json!({}));
            body["correlationId"] = Value::String(correlation_id);
            body["deal"] = deal_json(&parsed.deal);
            json(status, &body)
        }
        Err(e) => dispatch_error(&e, &correlation_id, &parsed.deal),
    }
}

fn dispatch_error(e: &DispatchError, correlation_id: &str, deal: &DealRef) -> Response<Body> {
    let c = Some(correlation_id);
    if e.is_retryable() {
        warn!(deal = %deal.id(), correlation_id, error = %e, "dispatch failed; caller should retry");
        let retry = match e {
            DispatchError::Snapshot(SnapshotError::Salesforce(s)) => s.retry_after(),
            _ => None,
        }
        .unwrap_or(DEFAULT_RETRY_AFTER);
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            &e.to_string(),
            None,
            c,
            Some(retry),
        );
    }
    error!(deal = %deal.id(), correlation_id, error = %e, "dispatch failed");
    match e {
        DispatchError::Snapshot(SnapshotError::NotFound { .. }) => json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            &e.to_string(),
            Some(id_field(deal)),
            c,
            None,
        ),
        DispatchError::Snapshot(SnapshotError::Invalid { .. }) => json_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unreadable_deal",
            &e.to_string(),
            None,
            c,
            None,
        ),
        DispatchError::Queue(q) if q.too_large.is_some() => json_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "deal_too_large",
            &e.to_string(),
            None,
            c,
            None,
        ),
        DispatchError::Snapshot(SnapshotError::Salesforce(_)) => json_error(
            StatusCode::BAD_GATEWAY,
            "salesforce_error",
            &e.to_string(),
            None,
            c,
            None,
        ),
        _ => json_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            &e.to_string(),
            None,
            c,
            None,
        ),
    }
}

fn id_field(deal: &DealRef) -> &'static str {
    match deal {
        DealRef::Opportunity(_) => "opportunityId",
        DealRef::Order(_) => "orderId",
    }
}

async fn outbound_message(request: &Request, token: &str, deps: &Deps) -> Response<Body> {
    let body: &[u8] = request.body().as_ref();
    if body.len() > deps.settings.max_body_bytes {
        return soap_fault(
            StatusCode::PAYLOAD_TOO_LARGE,
            FaultCode::Client,
            &format!(
                "the body has {} bytes; the limit is {}",
                body.len(),
                deps.settings.max_body_bytes
            ),
        );
    }
    let body = match crate::body::decoded(request.headers(), body, deps.settings.max_body_bytes) {
        Ok(b) => b,
        Err(e) => {
            let status = match e {
                BodyError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                BodyError::Undecodable(_) => StatusCode::BAD_REQUEST,
                BodyError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            };
            return soap_fault(status, FaultCode::Client, &e.to_string());
        }
    };
    let body: &[u8] = &body;
    let creds = match credentials(deps).await {
        Ok(c) => c,
        Err((status, message, _)) => return soap_fault(status, FaultCode::Server, &message),
    };
    if let Err(e) = verify_soap_token(token, &creds) {
        warn!(reason = %e, "outbound message refused");
        return soap_fault(
            StatusCode::UNAUTHORIZED,
            FaultCode::Client,
            "the endpoint token is not valid",
        );
    }
    let message = match outbound::parse(body) {
        Ok(m) => m,
        Err(e) => {
            warn!(error = %e, "outbound message malformed");
            return soap_fault(StatusCode::BAD_REQUEST, FaultCode::Client, &e.to_string());
        }
    };
    let org = SfId::parse(&message.organization_id).ok();
    if !org.as_ref().is_some_and(|o| {
        deps.settings
            .allowed_org_ids
            .iter()
            .any(|a| a.same_record(o))
    }) {
        warn!(org = %message.organization_id, "outbound message from an organization not allowed");
        return soap_fault(
            StatusCode::FORBIDDEN,
            FaultCode::Client,
            &format!(
                "Organization {} is not allowed to send to this endpoint",
                message.organization_id
            ),
        );
    }

    // Validate every notification before dispatching any, so a misconfigured message enqueues nothing.
    let mut deals: Vec<(DealRef, String)> = Vec::new();
    let mut seen = BTreeSet::new();
    for n in &message.notifications {
        let Some(raw) = n.record_id.as_deref() else {
            return soap_fault(
                StatusCode::BAD_REQUEST,
                FaultCode::Client,
                &format!(
                    "notification {} sends no Id field: in Salesforce Setup, edit the Outbound Message and add Id to its Fields to Send",
                    n.id
                ),
            );
        };
        let deal = match n.sobject_type.as_str() {
            "Opportunity" => DealRef::opportunity(raw),
            "Order" => DealRef::order(raw),
            other => {
                return soap_fault(
                    StatusCode::BAD_REQUEST,
                    FaultCode::Client,
                    &format!(
                        "notification {} is for a {other}; dealbridge takes Opportunity and Order notifications",
                        n.id
                    ),
                );
            }
        };
        match deal {
            Ok(d) => {
                if seen.insert(d.id().clone()) {
                    deals.push((d, n.id.clone()));
                }
            }
            Err(e) => {
                return soap_fault(
                    StatusCode::BAD_REQUEST,
                    FaultCode::Client,
                    &format!("notification {}: {e}", n.id),
                );
            }
        }
    }

    // One Salesforce read for the whole message (up to 50 deals of a kind), not one each.
    let requests: Vec<DispatchRequest> = deals
        .iter()
        .map(|(deal, notification_id)| DispatchRequest {
            deal: deal.clone(),
            correlation_id: format!("om-{notification_id}"),
            dry_run: false,
            attempt: 0,
            idempotency_key: Some(notification_id.clone()),
            delayed_key: None,
        })
        .collect();
    let outcomes = deps.dispatcher.dispatch_many(&requests).await;
    let mut retryable = Vec::new();
    for (request, outcome) in requests.iter().zip(outcomes) {
        let deal = &request.deal;
        let correlation_id = &request.correlation_id;
        match outcome {
            Ok(_) => {}
            Err(e) if e.is_retryable() => {
                warn!(deal = %deal.id(), correlation_id, error = %e, "notification not dispatched; Salesforce will resend");
                retryable.push(format!("{}: {e}", deal.id()));
            }
            Err(DispatchError::Snapshot(e @ SnapshotError::NotFound { .. })) => {
                // No record to write to, and resending cannot help.
                error!(deal = %deal.id(), correlation_id, error = %e, "notification names a record that does not exist or the integration user cannot see; acknowledged");
            }
            Err(e) => {
                // Permanent: resending cannot help, so the reason goes on the record, and only
                // once it is there is the notification acknowledged.
                let failure = dealbridge::failure::Failure::new(e.code(), &e).to_string();
                match deps.writeback.deal_failure(deal, &failure).await {
                    Ok(()) => {
                        error!(deal = %deal.id(), correlation_id, error = %failure, "notification cannot be dispatched; the reason is on the record");
                    }
                    Err(w) => {
                        warn!(deal = %deal.id(), correlation_id, error = %failure, write_error = %w, "notification cannot be dispatched, and writing the reason to Salesforce failed; Salesforce will resend");
                        retryable.push(format!(
                            "{}: {failure}; writing it to the record failed: {w}",
                            deal.id()
                        ));
                    }
                }
            }
        }
    }
    if !retryable.is_empty() {
        return soap_fault(
            StatusCode::SERVICE_UNAVAILABLE,
            FaultCode::Server,
            &format!(
                "temporarily unable to accept {} notification(s); please resend: {}",
                retryable.len(),
                retryable.join("; ")
            ),
        );
    }
    info!(org = %message.organization_id, notifications = message.notifications.len(), deals = deals.len(), "outbound message acknowledged");
    soap_ack()
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json_error(status, code, message, None, None, None)
}

/// An AB webhook: the signature checked over the raw body with the site's key (constant time)
/// before anything is read, then its hint enqueued. AB retries any answer but 2xx, so nothing is
/// acknowledged that is not on the queue; an event that cannot change billing state is
/// acknowledged and ignored.
async fn maxio_webhook(request: &Request, site: &str, deps: &Deps) -> Response<Body> {
    let body: &[u8] = request.body().as_ref();
    if body.len() > deps.settings.max_body_bytes {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            &format!(
                "the body has {} bytes; the limit is {}",
                body.len(),
                deps.settings.max_body_bytes
            ),
        );
    }
    let creds = match credentials(deps).await {
        Ok(c) => c,
        Err((status, message, retry)) => {
            return json_error(status, "unavailable", &message, None, None, retry);
        }
    };
    let Some(key) = creds.maxio_webhook_keys.get(site) else {
        warn!(site, "AB webhook for a site without a webhook key");
        return refuse(
            StatusCode::NOT_FOUND,
            "unknown_site",
            &format!(
                "AB site {site} takes no webhooks here: the intake secret's maxio_webhook_keys has no key for it"
            ),
        );
    };
    let signature = request
        .headers()
        .get(webhook::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok());
    if let Err(e) = webhook::verify(key.expose().as_bytes(), body, signature) {
        warn!(site, reason = %e, "AB webhook refused");
        let code = match e {
            webhook::WebhookError::Unsigned => "unauthenticated",
            _ => "invalid_signature",
        };
        return refuse(StatusCode::UNAUTHORIZED, code, &e.to_string());
    }
    let hook = match webhook::parse(body) {
        Ok(h) => h,
        Err(e) => {
            warn!(site, error = %e, "AB webhook malformed");
            return refuse(StatusCode::BAD_REQUEST, "malformed_webhook", &e.to_string());
        }
    };
    if !hook.is_billing_event() {
        info!(site, webhook = %hook.id, event = %hook.event, "AB webhook acknowledged; its event does not change billing state");
        return json(
            StatusCode::OK,
            &json!({"webhookId": hook.id, "event": hook.event, "ignored": true}),
        );
    }
    let hint = Hint::new(
        Target::AbSite {
            site: site.to_string(),
        },
        Reason::Webhook {
            webhook_id: hook.id.clone(),
            event: hook.event.clone(),
        },
    );
    let sent = match hint.to_message() {
        Ok(message) => deps.queue.send(&message).await,
        Err(e) => Err(dealbridge::queue::QueueError::invalid(
            dealbridge::queue::QueueName::BillingSync,
            e.to_string(),
        )),
    };
    match sent {
        Ok(message_id) => {
            info!(site, webhook = %hook.id, event = %hook.event, subscription = ?hook.subscription_id, %message_id, "AB webhook enqueued");
            json(
                StatusCode::OK,
                &json!({"webhookId": hook.id, "event": hook.event, "enqueued": true}),
            )
        }
        Err(e) => {
            warn!(site, webhook = %hook.id, error = %e, "AB webhook not enqueued; AB will retry");
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                &format!("the webhook could not be enqueued: {e}"),
                None,
                None,
                Some(DEFAULT_RETRY_AFTER),
            )
        }
    }
}
