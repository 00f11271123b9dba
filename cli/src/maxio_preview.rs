//! The Maxio AB part of `dealbridge sync --dry-run`: the workers' own check of the deal
//! ([`check_deal`], which reads the sites, the product and the components), then reads (never
//! writes) of what already exists on the deal's site, so the dry run says what would be created,
//! what is there already, and what a re-run would change on an existing subscription.

use dealbridge::maxio::ab::{MaxioError, PricePoint};
use dealbridge::maxio::converge::{Difference, differences};
use dealbridge::maxio::prepare::{AbDealPlan, AbSettings, DealProblem, ResolvedComponent};
use dealbridge::maxio::sites::{Sites, check_deal};
use dealbridge::maxio::steps::same_prices;
use dealbridge::snapshot::DealSnapshot;
use serde_json::{Value, json};

use crate::error::CliError;

/// What the dry run learned about the deal in AB.
pub struct Preview {
    /// The deal cannot be billed: nothing would be created.
    pub problems: Vec<DealProblem>,
    pub plan: Option<AbDealPlan>,
    /// What exists already, as text lines and JSON.
    pub existing: Vec<String>,
    pub existing_json: Value,
    /// What a sync would change on the existing subscription.
    pub changes: Vec<Difference>,
}

fn read_failed(what: &str, e: MaxioError) -> CliError {
    CliError::Failed(format!("reading {what} from Maxio AB failed: {e}"))
}

/// Checks the deal as the customer step does, then reads what exists.
pub async fn preview(
    sites: &Sites,
    snapshot: &DealSnapshot,
    mapping: &dealbridge::mapping::Mapping,
    settings: &AbSettings,
    today: chrono::NaiveDate,
) -> Result<Preview, CliError> {
    let checked = check_deal(sites, snapshot, mapping, settings, today)
        .await
        .map_err(|e| read_failed("the sites, product and components", e))?;
    let plan = match checked {
        Ok(plan) => plan,
        Err(problems) => {
            return Ok(Preview {
                problems,
                plan: None,
                existing: Vec::new(),
                existing_json: Value::Null,
                changes: Vec::new(),
            });
        }
    };
    let Some(site) = sites.get(&plan.site) else {
        return Err(CliError::Failed(format!(
            "AB site {} is not configured",
            plan.site
        )));
    };
    let ab = site.ab.as_ref();
    let mut existing = Vec::new();
    let mut problems = Vec::new();
    let customer = ab
        .lookup_customer(&plan.customer.reference)
        .await
        .map_err(|e| read_failed("the customer", e))?;
    existing.push(match &customer {
        Some(c) => format!(
            "AB customer {} (reference {})",
            c.id, plan.customer.reference
        ),
        // As the customer step: an amendment or renewal never creates the customer.
        None if plan.amends() => format!(
            "no AB customer has reference {} (the Account of the amended Contract's first sale) yet: the change would wait for the first sale (AMENDMENT_ORIGINAL_NOT_BILLED) and create nothing",
            plan.customer.reference
        ),
        None => format!(
            "no AB customer has reference {} yet: it would be created",
            plan.customer.reference
        ),
    });
    let mut points: Vec<Value> = Vec::new();
    let mut resolved: Vec<Option<ResolvedComponent>> = Vec::new();
    for item in &plan.items {
        let Some(component_id) = item.component_id else {
            resolved.push(None);
            continue;
        };
        let point: Option<PricePoint> = match &item.price_point {
            Some(spec) => {
                let found = ab
                    .price_point_by_handle(component_id, &spec.handle)
                    .await
                    .map_err(|e| read_failed("a price point", e))?;
                match &found {
                    Some(p) if !same_prices(p, spec) => problems.push(DealProblem {
                        code: dealbridge::codes::ErrorCode::MaxioPricePointConflict,
                        message: format!(
                            "Maxio already has a price point {} on {} with other tiers; archive it or change the schedule",
                            spec.handle, item.component_handle
                        ),
                    }),
                    Some(p) => existing.push(format!(
                        "price point {} ({}) of {}",
                        p.id, spec.handle, item.component_handle
                    )),
                    None => existing.push(format!(
                        "no price point {} on {} yet: it would be created",
                        spec.handle, item.component_handle
                    )),
                }
                points.push(json!({
                    "component": item.component_handle,
                    "handle": spec.handle,
                    "id": found.as_ref().map(|p| p.id),
                }));
                found
            }
            None => None,
        };
        resolved.push(Some(ResolvedComponent {
            order_item_id: item.order_item_id.clone(),
            product_name: item.product_name.clone(),
            component_id,
            component_handle: item.component_handle.clone(),
            kind: item.kind.clone(),
            quantity: item.quantity,
            price_point_id: point.map(|p| p.id),
            default_price_point_id: item.default_price_point_id,
        }));
    }
    let subscription = ab
        .lookup_subscription(&plan.subscription_reference)
        .await
        .map_err(|e| read_failed("the subscription", e))?;
    let mut changes = Vec::new();
    match &subscription {
        None if plan.amends() => existing.push(format!(
            "no AB subscription has reference {} (the amended Contract's first sale) yet: the amendment would wait for it (AMENDMENT_ORIGINAL_NOT_BILLED) and create nothing",
            plan.subscription_reference
        )),
        None => existing.push(format!(
            "no AB subscription has reference {} yet: it would be created",
            plan.subscription_reference
        )),
        Some(s) => {
            existing.push(format!(
                "AB subscription {} (reference {}, {})",
                s.id,
                plan.subscription_reference,
                s.state.as_deref().unwrap_or("state unknown")
            ));
            // As the subscription step: one with the deal's reference but another customer is
            // not the deal's (a customer not made yet cannot own it either).
            if let Some(owner) = s.customer.as_ref().map(|c| c.id)
                && customer.as_ref().map(|c| c.id) != Some(owner)
            {
                problems.push(DealProblem {
                    code: dealbridge::codes::ErrorCode::MaxioSubscriptionConflict,
                    message: format!(
                        "Maxio subscription {} with reference {} belongs to customer {owner}, not {}",
                        s.id,
                        plan.subscription_reference,
                        customer
                            .as_ref()
                            .map_or_else(|| "the deal's customer".to_string(), |c| c.id.to_string())
                    ),
                });
            }
            if let (Some(want), Some(got)) = (&plan.currency, &s.currency)
                && want != got
            {
                problems.push(DealProblem {
                    code: dealbridge::codes::ErrorCode::CurrencyMismatch,
                    message: format!(
                        "Maxio subscription {} bills in {got}, but the deal is in {want}",
                        s.id
                    ),
                });
            }
            let actual = ab
                .subscription_components(s.id)
                .await
                .map_err(|e| read_failed("the subscription's components", e))?;
            let wanted: Vec<ResolvedComponent> = resolved.into_iter().flatten().collect();
            changes = differences(&wanted, &actual);
        }
    }
    let existing_json = json!({
        "customerId": customer.as_ref().map(|c| c.id),
        "subscriptionId": subscription.as_ref().map(|s| s.id),
        "pricePoints": points,
    });
    Ok(Preview {
        problems,
        plan: Some(plan),
        existing,
        existing_json,
        changes,
    })
}
