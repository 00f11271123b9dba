//! Everything the Maxio AB chain will create for a deal, decided before anything is created: the
//! site and currency, the customer (from the Account and a real person with an email), one
//! subscription component per AB component (the deal's lines of a component netted into one, on
//! one price point), the subscription's start, and the product. Every problem is found at once
//! and nothing is created when there is one, so a deal that cannot be billed leaves no half-made
//! records in Maxio. The workers and `dealbridge sync --dry-run` both call [`prepare`] with the
//! same [`AbFacts`] reads (see [`super::sites::check_deal`]), so a dry run fails exactly where the
//! sync would. Pure.

use chrono::{Months, NaiveDate, TimeDelta};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::ab::NewCustomer;
use super::facts::{
    AbFacts, ComponentFacts, ProductFacts, Route, deal_currency, route, site_problems,
};
use super::options::{DEFAULT_SITE, PastStart};
use super::pricing::{PricePointSpec, price_point};
use crate::codes::ErrorCode;
use crate::failure::Failure;
use crate::mapping::Mapping;
use crate::salesforce::SfId;
use crate::snapshot::{DealSnapshot, OrderItem, Person};

/// Deployment settings of the AB chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbSettings {
    /// The AB product every subscription is on, unless the Opportunity or a product overrides it.
    pub product_handle: String,
    pub payment_collection_method: String,
}

impl Default for AbSettings {
    fn default() -> Self {
        AbSettings {
            product_handle: "monthly-usage".into(),
            payment_collection_method: "remittance".into(),
        }
    }
}

/// One component of the subscription: every order line of the deal that bills on it, netted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AbItem {
    /// The first of [`AbItem::lines`]; its Id names the price point.
    pub order_item_id: SfId,
    /// Every order product netted into this component, in order.
    #[serde(default)]
    pub lines: Vec<SfId>,
    pub product_name: String,
    pub component_handle: String,
    /// The lines' quantities, summed.
    pub quantity: Decimal,
    /// `None`: the component's default price point (the product has no consumption schedule).
    pub price_point: Option<PricePointSpec>,
    /// The component on the deal's site, resolved before anything is created.
    #[serde(default)]
    pub component_id: Option<i64>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub default_price_point_id: Option<i64>,
}

/// How the subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartMode {
    /// When dealbridge creates it (the Order starts today or inside the current billing period,
    /// or `maxio.past_start` is `start_on_sync`).
    Now,
    /// On a future date: AB's `initial_billing_at`; the subscription waits in `awaiting_signup`
    /// and nothing is charged before it.
    Future,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionStart {
    /// The Order's start date.
    pub order_start: NaiveDate,
    /// The day billing starts: `order_start` when in the future, else the day of the sync.
    pub billing_starts: NaiveDate,
    pub mode: StartMode,
}

impl SubscriptionStart {
    /// What AB's `initial_billing_at` should be: only for a future start.
    pub fn initial_billing_at(&self) -> Option<String> {
        (self.mode == StartMode::Future).then(|| self.order_start.format("%Y-%m-%d").to_string())
    }

    pub fn describe(&self) -> String {
        match self.mode {
            StartMode::Future => format!(
                "starts {} (the Order's start; awaiting signup until then, nothing charged before)",
                self.order_start
            ),
            StartMode::Now if self.order_start == self.billing_starts => {
                format!("starts now ({})", self.billing_starts)
            }
            StartMode::Now => format!(
                "starts now ({}; the Order's start {} is past)",
                self.billing_starts, self.order_start
            ),
        }
    }
}

fn default_site() -> String {
    DEFAULT_SITE.to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AbDealPlan {
    pub opportunity_id: SfId,
    pub account_id: SfId,
    pub customer: NewCustomer,
    pub items: Vec<AbItem>,
    pub product_handle: String,
    pub payment_collection_method: String,
    /// The subscription's `reference`: the Opportunity Id.
    pub subscription_reference: String,
    /// The AB site the deal bills on.
    #[serde(default = "default_site")]
    pub site: String,
    /// The subscription's currency (`None` only in plans made before currencies were checked:
    /// the site's primary currency).
    #[serde(default)]
    pub currency: Option<String>,
    /// Whether the currency is one of the site's non-primary currencies: price points then carry
    /// their own prices in it.
    #[serde(default)]
    pub non_primary_currency: bool,
    #[serde(default)]
    pub start: Option<SubscriptionStart>,
    /// For a deal on an amended CPQ Contract: the Contract, its first sale (whose Opportunity Id
    /// is the subscription's reference) and what the deal changes. An amendment never creates a
    /// customer or a subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<crate::contract::net::ContractChange>,
}

impl AbDealPlan {
    /// Whether the plan changes an existing subscription only (a CPQ amendment).
    pub fn amends(&self) -> bool {
        self.contract.as_ref().is_some_and(|c| c.amends)
    }
}

/// A component of the subscription-to-be, resolved in AB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedComponent {
    pub order_item_id: SfId,
    pub product_name: String,
    pub component_id: i64,
    pub component_handle: String,
    pub kind: Option<String>,
    pub quantity: Decimal,
    /// `None`: the component's default price point.
    pub price_point_id: Option<i64>,
    pub default_price_point_id: Option<i64>,
}

/// Why a deal cannot be billed, with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealProblem {
    pub code: ErrorCode,
    pub message: String,
}

impl DealProblem {
    pub fn new(code: ErrorCode, message: String) -> Self {
        DealProblem { code, message }
    }
}

/// `CODE: message; CODE: message`, for Salesforce.
pub fn describe(problems: &[DealProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.code, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The problems as one failure: the first one's code, every problem said (`CODE: message; ...`).
pub fn failure(problems: &[DealProblem]) -> Failure {
    Failure::of_all(problems.iter().map(|p| (p.code, p.message.as_str())))
}

fn full_name(p: &Person) -> String {
    [p.first_name.as_deref(), p.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The person to bill: the primary quote contact, else the Opportunity's primary contact role,
/// else any contact role, whichever first has an email.
fn billing_person(snapshot: &DealSnapshot) -> Option<&Person> {
    let quote = snapshot
        .quote
        .as_ref()
        .and_then(|q| q.primary_contact.as_ref());
    let roles = snapshot
        .opportunity
        .iter()
        .flat_map(|o| o.contact_roles.iter())
        .map(|r| &r.contact);
    quote
        .into_iter()
        .chain(roles)
        .find(|p| p.email.as_deref().is_some_and(|e| e.contains('@')))
}

fn who_was_checked(snapshot: &DealSnapshot) -> String {
    let mut names = Vec::new();
    if let Some(p) = snapshot
        .quote
        .as_ref()
        .and_then(|q| q.primary_contact.as_ref())
    {
        names.push(format!("the primary quote contact {}", full_name(p)));
    }
    let roles = snapshot
        .opportunity
        .iter()
        .flat_map(|o| o.contact_roles.iter())
        .count();
    if roles > 0 {
        names.push(format!("{roles} Opportunity contact role(s)"));
    }
    if names.is_empty() {
        "the deal has no quote contact and no contact roles".to_string()
    } else {
        format!("checked {}", names.join(" and "))
    }
}

/// The AB product the subscription is on: the Opportunity's `Maxio_Product_Handle__c`, else the
/// one every AB product of the deal names, else `MAXIO_AB_PRODUCT_HANDLE`; with the problem when
/// the products name different ones.
pub fn product_handle(
    snapshot: &DealSnapshot,
    mapping: &Mapping,
    settings: &AbSettings,
) -> (String, Option<DealProblem>) {
    if let Some(h) = snapshot
        .opportunity
        .as_ref()
        .and_then(|o| o.maxio_product_handle.as_ref())
    {
        return (h.clone(), None);
    }
    let named: Vec<(String, String)> = snapshot
        .order_items()
        .filter(|(_, i)| mapping.component_handle(&i.product).is_some())
        .filter_map(|(_, i)| {
            i.product
                .maxio_product_handle
                .as_ref()
                .map(|h| (i.product.name.clone(), h.clone()))
        })
        .collect();
    let mut distinct: Vec<&String> = named.iter().map(|(_, h)| h).collect();
    distinct.sort();
    distinct.dedup();
    match distinct.as_slice() {
        [] => (settings.product_handle.clone(), None),
        [one] => ((*one).clone(), None),
        _ => (
            settings.product_handle.clone(),
            Some(DealProblem::new(
                ErrorCode::MaxioConflictingProducts,
                format!(
                    "the products name different Maxio products ({}); set the Opportunity's Maxio product handle",
                    named
                        .iter()
                        .map(|(n, h)| format!("{n}: {h}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        ),
    }
}

/// One order line that bills in AB, priced.
struct Line<'a> {
    item: &'a OrderItem,
    spec: Option<PricePointSpec>,
}

impl Line<'_> {
    /// What the line is billed at, for comparing lines of one component: the schedule's scheme
    /// and brackets, or the unit price of a line on the default price point.
    fn pricing(&self) -> String {
        match &self.spec {
            Some(spec) => format!(
                "{} {}",
                spec.pricing_scheme,
                spec.prices
                    .iter()
                    .map(|b| match b.ending_quantity {
                        Some(end) => format!("{}-{end} at {}", b.starting_quantity, b.unit_price),
                        None => format!("{}+ at {}", b.starting_quantity, b.unit_price),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => match self.item.unit_price {
                Some(p) => format!("unit price {} (no schedule)", p.normalize()),
                None => "no price (no schedule)".to_string(),
            },
        }
    }
}

/// The day billing starts, from the Order's start, today and the product's billing period.
pub fn subscription_start(
    order_start: NaiveDate,
    today: NaiveDate,
    product: Option<&ProductFacts>,
    past_start: PastStart,
) -> Result<Option<SubscriptionStart>, DealProblem> {
    if order_start > today {
        return Ok(Some(SubscriptionStart {
            order_start,
            billing_starts: order_start,
            mode: StartMode::Future,
        }));
    }
    let now = SubscriptionStart {
        order_start,
        billing_starts: today,
        mode: StartMode::Now,
    };
    if order_start == today {
        return Ok(Some(now));
    }
    let Some(product) = product else {
        // A past start cannot be judged without the product's period; its absence is reported.
        return Ok(None);
    };
    let period_start = period_start(today, product);
    if period_start.is_some_and(|p| order_start >= p) || past_start == PastStart::StartOnSync {
        return Ok(Some(now));
    }
    let period = match (product.interval, product.interval_unit.as_deref()) {
        (Some(n), Some(unit)) => format!("{n} {unit}{}", if n == 1 { "" } else { "s" }),
        _ => "a period AB did not report".to_string(),
    };
    Err(DealProblem::new(
        ErrorCode::MaxioBackdatedStart,
        format!(
            "the Order starts {order_start}, before the current billing period of {} ({period}, from {}); AB cannot bill a past period exactly. Move the Order's start, or set maxio.past_start to start_on_sync",
            product.handle,
            period_start.map_or_else(|| "unknown".to_string(), |d| d.to_string())
        ),
    ))
}

/// The first day of a billing period that ends today.
fn period_start(today: NaiveDate, product: &ProductFacts) -> Option<NaiveDate> {
    let n = u32::try_from(product.interval?.max(0)).ok()?;
    match product.interval_unit.as_deref()? {
        "day" => today.checked_sub_signed(TimeDelta::days(i64::from(n))),
        "month" => today.checked_sub_months(Months::new(n)),
        _ => None,
    }
}

/// Checks the deal against what AB says and decides everything the chain creates. `today` is the
/// day of the check (UTC).
pub fn prepare(
    snapshot: &DealSnapshot,
    mapping: &Mapping,
    settings: &AbSettings,
    facts: &AbFacts,
    today: NaiveDate,
) -> Result<AbDealPlan, Vec<DealProblem>> {
    let mut problems = Vec::new();
    let account = &snapshot.account;
    let Some(opportunity) = snapshot.opportunity.as_ref() else {
        return Err(vec![DealProblem::new(
            ErrorCode::MaxioNoOpportunity,
            "Maxio billing starts from a won Opportunity; this Order has none".into(),
        )]);
    };

    if let Some((code, message)) = crate::contract::change::refused_for_maxio(snapshot) {
        return Err(vec![DealProblem::new(code, message)]);
    }
    // A deal on an amended Contract bills the Contract as netted, on its one subscription.
    let refuse_backdated = mapping.maxio.past_start == PastStart::Refuse;
    let view = match crate::contract::net::view(snapshot, mapping, today, refuse_backdated) {
        Some(Ok(view)) => Some(view),
        Some(Err(problems)) => return Err(problems),
        None => None,
    };
    let deal = snapshot;
    let (snapshot, change) = match &view {
        Some(v) => (&v.snapshot, Some(&v.change)),
        None => (snapshot, None),
    };
    let amends = change.is_some_and(|c| c.amends);

    let person = billing_person(snapshot);
    if person.is_none() {
        problems.push(DealProblem::new(
            ErrorCode::MaxioNoBillingEmail,
            format!(
                "no contact with an email address to bill for {} ({}); add an email to the primary quote contact or an Opportunity contact role",
                account.name,
                who_was_checked(snapshot)
            ),
        ));
    }
    if let Some(p) = person
        && (p.first_name.is_none() || p.last_name.is_none())
    {
        problems.push(DealProblem::new(
            ErrorCode::MaxioContactNameMissing,
            format!(
                "the billing contact {} needs a first and a last name for Maxio",
                p.email.as_deref().unwrap_or_default()
            ),
        ));
    }

    // Currency and site.
    problems.extend(site_problems(&facts.sites));
    let routed: Option<Route> = match deal_currency(snapshot, mapping) {
        Ok(currency) => match route(snapshot, &currency, &facts.sites) {
            Ok(r) => Some(r),
            Err(p) => {
                problems.push(p);
                None
            }
        },
        Err(p) => {
            problems.push(p);
            None
        }
    };
    let reads = facts
        .reads
        .as_ref()
        .filter(|r| routed.as_ref().is_some_and(|route| route.site == r.site));
    let price_currency = routed
        .as_ref()
        .filter(|r| r.non_primary)
        .map(|r| r.currency.as_str());

    // The lines, by component, in order.
    let mut groups: Vec<(String, Vec<Line<'_>>)> = Vec::new();
    let mut unmapped = Vec::new();
    let mut starts = Vec::new();
    for (order, item) in snapshot.order_items() {
        let product = &item.product;
        let Some(handle) = mapping.component_handle(product) else {
            if product.whmcs_product_id.is_none() {
                unmapped.push(match &product.code {
                    Some(code) => format!("{} ({code})", product.name),
                    None => product.name.clone(),
                });
            }
            continue;
        };
        starts.push((order.id.clone(), order.effective_date));
        let spec = match item.schedules.as_slice() {
            [] => None,
            [schedule] => match price_point(
                &account.name,
                order.effective_date,
                item,
                schedule,
                price_currency,
            ) {
                Ok(spec) => Some(spec),
                Err(e) => {
                    problems.push(DealProblem::new(e.code(), e.to_string()));
                    None
                }
            },
            many => {
                problems.push(DealProblem::new(
                    ErrorCode::MaxioInvalidTiers,
                    format!(
                        "{} has {} consumption schedules; Maxio prices a component with one",
                        product.name,
                        many.len()
                    ),
                ));
                None
            }
        };
        let line = Line { item, spec };
        match groups.iter_mut().find(|(h, _)| h == handle) {
            Some((_, lines)) => lines.push(line),
            None => groups.push((handle.to_string(), vec![line])),
        }
    }
    if !unmapped.is_empty() {
        problems.push(DealProblem::new(
            ErrorCode::MaxioUnmappedProduct,
            format!(
                "no Maxio component for {}; set the product's Maxio component handle or add it to the mapping",
                unmapped.join(", ")
            ),
        ));
    }
    if groups.is_empty() && unmapped.is_empty() {
        problems.push(DealProblem::new(
            ErrorCode::MaxioNoProducts,
            "no order product maps to a Maxio component".into(),
        ));
    }

    let (product_handle, conflict) = product_handle(snapshot, mapping, settings);
    problems.extend(conflict);
    let product = reads.and_then(|r| r.product.as_ref());
    if let Some(r) = reads
        && r.product.is_none()
    {
        problems.push(DealProblem::new(
            ErrorCode::MaxioProductNotFound,
            format!(
                "the subscription would be on AB product {product_handle:?}, which does not exist on site {}",
                r.site
            ),
        ));
    }

    // The start: the earliest start of the Orders with AB lines.
    let mut start = None;
    let missing: Vec<String> = starts
        .iter()
        .filter(|(_, d)| d.is_none())
        .map(|(id, _)| id.to_string())
        .collect();
    if !missing.is_empty() {
        let mut missing = missing;
        missing.dedup();
        problems.push(DealProblem::new(
            ErrorCode::MaxioNoStartDate,
            format!(
                "Order {} has no start date ({}); the subscription starts on it",
                missing.join(", "),
                mapping.order.start_date
            ),
        ));
    } else if change.is_some() {
        // On an amended Contract the subscription exists (the Contract's history is read for a
        // first sale only once it has a subscription): the amendment's own day was checked when
        // netting, and the first sale's start is history.
    } else if let Some(order_start) = starts.iter().filter_map(|(_, d)| *d).min() {
        match subscription_start(order_start, today, product, mapping.maxio.past_start) {
            Ok(s) => start = s,
            Err(p) => problems.push(p),
        }
    }

    // Net each component's lines into one.
    let mut items = Vec::new();
    for (handle, all_lines) in &groups {
        // On a Contract, a line netted to zero bills nothing: its price does not count, and a
        // component whose every line is at zero goes to quantity 0.
        let live: Vec<&Line<'_>> = all_lines
            .iter()
            .filter(|l| change.is_none() || !l.item.quantity.is_zero())
            .collect();
        let lines: Vec<&Line<'_>> = if live.is_empty() {
            all_lines.iter().take(1).collect()
        } else {
            live
        };
        let Some(first) = lines.first() else { continue };
        let pricing = first.pricing();
        if lines.iter().any(|l| l.pricing() != pricing) {
            let described = lines
                .iter()
                .map(|l| format!("{} {}: {}", l.item.product.name, l.item.id, l.pricing()))
                .collect::<Vec<_>>()
                .join("; ");
            problems.push(match change {
                Some(_) => DealProblem::new(
                    ErrorCode::AmendmentSplitPrice,
                    format!(
                        "after the amendment, component {handle} bills at different prices on the Contract ({described}); AB keeps one price point per component on a subscription. Re-price every unit in the amendment (debook and rebook the whole line), or keep the price"
                    ),
                ),
                None => DealProblem::new(
                    ErrorCode::MaxioSplitPrice,
                    format!(
                        "the lines of component {handle} bill at different prices ({described}); AB keeps one price point per component on a subscription, so give them one price or map them to different components"
                    ),
                ),
            });
            continue;
        }
        let quantity: Decimal = all_lines.iter().map(|l| l.item.quantity).sum();
        let mut names: Vec<&str> = Vec::new();
        for l in &lines {
            if !names.contains(&l.item.product.name.as_str()) {
                names.push(l.item.product.name.as_str());
            }
        }
        let product_name = names.join(" + ");
        let found: Option<&ComponentFacts> = match reads {
            Some(r) => match r.components.get(handle) {
                Some(Some(c)) => Some(c),
                _ => {
                    problems.push(DealProblem::new(
                        ErrorCode::MaxioComponentNotFound,
                        format!(
                            "{product_name} maps to Maxio component {handle:?}, which does not exist on site {}",
                            r.site
                        ),
                    ));
                    None
                }
            },
            None => None,
        };
        if let Some(c) = found {
            let touched = deal
                .order_items()
                .any(|(_, i)| mapping.component_handle(&i.product) == Some(handle.as_str()));
            if amends && touched && !c.component.is_quantity_based() && !c.component.is_on_off() {
                problems.push(DealProblem::new(
                    ErrorCode::AmendmentMeteredChange,
                    format!(
                        "the amendment changes {product_name} ({handle}), a metered component (AB kind {}); AB allocates only quantity and on/off components, and dealbridge does not change a metered component's tiers on a live subscription. Change its price point in AB by hand, or leave metered lines out of the amendment",
                        c.component.kind.as_deref().unwrap_or("metered")
                    ),
                ));
            }
            let removed = change.is_some() && quantity.is_zero();
            if !removed {
                problems.extend(quantity_problem(c, handle, &product_name, &lines, quantity));
            }
            if let (Some(route), None) = (routed.as_ref().filter(|r| r.non_primary), &first.spec) {
                let priced = c
                    .default_prices
                    .as_ref()
                    .is_some_and(|d| d.currencies.contains(&route.currency));
                if !priced {
                    problems.push(DealProblem::new(
                        ErrorCode::MaxioCurrencyPriceMissing,
                        format!(
                            "{product_name} has no consumption schedule, so it bills on the default price point of {handle}, which has no {} prices on site {}; AB would convert its {} prices at the site's exchange rate. Add {} prices to that price point in AB, or give the product a schedule",
                            route.currency,
                            route.site,
                            facts
                                .sites
                                .iter()
                                .find(|s| s.name == route.site)
                                .map_or("primary-currency", |s| s.currencies.primary.as_str()),
                            route.currency
                        ),
                    ));
                }
            }
        }
        items.push(AbItem {
            order_item_id: first.item.id.clone(),
            lines: lines.iter().map(|l| l.item.id.clone()).collect(),
            product_name,
            component_handle: handle.clone(),
            quantity,
            price_point: first.spec.clone(),
            component_id: found.map(|c| c.component.id),
            kind: found.and_then(|c| c.component.kind.clone()),
            default_price_point_id: found.and_then(|c| c.component.default_price_point_id),
        });
    }

    let (Some(routed), true, Some(person)) = (routed, problems.is_empty(), person) else {
        return Err(problems);
    };
    if reads.is_none() {
        return Err(vec![DealProblem::new(
            ErrorCode::DealbridgeInternal,
            format!("AB site {} was chosen but not read", routed.site),
        )]);
    }
    let address = &account.billing_address;
    let (line1, line2) = match address.street.as_deref() {
        Some(street) => {
            let mut lines = street.lines().map(str::trim).filter(|l| !l.is_empty());
            let first = lines.next().map(str::to_string);
            let rest: Vec<&str> = lines.collect();
            (first, (!rest.is_empty()).then(|| rest.join(", ")))
        }
        None => (None, None),
    };
    let country = address
        .country_code
        .clone()
        .or_else(|| address.country.clone().filter(|c| c.len() == 2));
    // The ISO code when the org has state picklists, else BillingState as written (a full name
    // such as "California" included: AB stores it), never dropped.
    let state = address.state_code.clone().or_else(|| address.state.clone());
    Ok(AbDealPlan {
        opportunity_id: opportunity.id.clone(),
        account_id: account.id.clone(),
        customer: NewCustomer {
            first_name: person.first_name.clone().unwrap_or_default(),
            last_name: person.last_name.clone().unwrap_or_default(),
            email: person.email.clone().unwrap_or_default(),
            organization: account.name.clone(),
            reference: account.id.to_string(),
            address: line1,
            address_2: line2,
            city: address.city.clone(),
            state,
            zip: address.postal_code.clone(),
            country,
            phone: account.phone.clone().or_else(|| person.phone.clone()),
            salesforce_id: Some(account.id.to_string()),
        },
        items,
        product_handle,
        payment_collection_method: settings.payment_collection_method.clone(),
        subscription_reference: change
            .map_or_else(|| opportunity.id.to_string(), |c| c.original.to_string()),
        site: routed.site,
        currency: Some(routed.currency),
        non_primary_currency: routed.non_primary,
        start,
        contract: change.cloned(),
    })
}

fn quantity_problem(
    c: &ComponentFacts,
    handle: &str,
    product_name: &str,
    lines: &[&Line<'_>],
    quantity: Decimal,
) -> Option<DealProblem> {
    let of_lines = if lines.len() > 1 {
        format!(
            " (its {} lines add up to {})",
            lines.len(),
            quantity.normalize()
        )
    } else {
        String::new()
    };
    let problem =
        |message: String| Some(DealProblem::new(ErrorCode::MaxioInvalidQuantity, message));
    if c.component.is_quantity_based() {
        if quantity < Decimal::ZERO {
            return problem(format!(
                "{product_name} ({handle}) has quantity {}{of_lines}; a subscription cannot start with a negative quantity",
                quantity.normalize()
            ));
        }
        if quantity.fract() != Decimal::ZERO
            && c.component.allow_fractional_quantities != Some(true)
        {
            return problem(format!(
                "{product_name} ({handle}) has quantity {}{of_lines}, but the AB component counts whole units (fractional quantities are off)",
                quantity.normalize()
            ));
        }
    } else if c.component.is_on_off() && quantity != Decimal::ONE {
        return problem(format!(
            "{product_name} ({handle}) is an on/off component, which is either on (1) or off, but its quantity is {}{of_lines}",
            quantity.normalize()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maxio::ab::Component;
    use crate::maxio::facts::{DefaultPrices, SiteCurrencies, SiteFacts, SiteReads};
    use crate::snapshot::*;
    use rust_decimal::Decimal;
    use std::collections::BTreeMap;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 2).unwrap()
    }

    fn site(name: &str, primary: &str, others: &[&str]) -> SiteFacts {
        SiteFacts {
            name: name.into(),
            currencies: SiteCurrencies {
                primary: primary.into(),
                non_primary: others.iter().map(|c| c.to_string()).collect(),
            },
            declared: None,
        }
    }

    fn component(id: i64, handle: &str, kind: &str) -> ComponentFacts {
        ComponentFacts {
            component: Component {
                id,
                handle: Some(handle.into()),
                name: None,
                kind: Some(kind.into()),
                default_price_point_id: Some(id * 10),
                allow_fractional_quantities: Some(false),
            },
            default_prices: None,
        }
    }

    /// One USD site (EUR non-primary) and a GBP one; the deal's reads on `site`.
    fn facts_on(site_name: &str, components: &[(&str, &str)]) -> AbFacts {
        AbFacts {
            sites: vec![site("default", "USD", &["EUR"]), site("uk", "GBP", &[])],
            reads: Some(SiteReads {
                site: site_name.into(),
                product: Some(ProductFacts {
                    handle: "monthly-usage".into(),
                    interval: Some(1),
                    interval_unit: Some("month".into()),
                }),
                components: components
                    .iter()
                    .enumerate()
                    .map(|(i, (h, kind))| (h.to_string(), Some(component(i as i64 + 1, h, kind))))
                    .collect::<BTreeMap<_, _>>(),
            }),
        }
    }

    fn facts() -> AbFacts {
        facts_on(
            "default",
            &[
                ("support", "quantity_based_component"),
                ("a", "quantity_based_component"),
                ("b", "quantity_based_component"),
            ],
        )
    }

    fn check(s: &DealSnapshot) -> Result<AbDealPlan, Vec<DealProblem>> {
        prepare(
            s,
            &Mapping::default(),
            &AbSettings::default(),
            &facts(),
            today(),
        )
    }

    fn codes(problems: &[DealProblem]) -> Vec<&str> {
        problems.iter().map(|p| p.code.as_str()).collect()
    }

    fn id(s: &str) -> SfId {
        SfId::parse(s).unwrap()
    }

    fn person(email: Option<&str>) -> Person {
        Person {
            id: id("003A000010khO8J"),
            first_name: Some("Ada".into()),
            last_name: Some("Byron".into()),
            email: email.map(Into::into),
            phone: Some("+1 555 0100".into()),
        }
    }

    fn item(name: &str, handle: Option<&str>, product_handle: Option<&str>) -> OrderItem {
        OrderItem {
            revised_item: None,
            segment_index: None,
            id: id("802A000010khO8J"),
            quantity: Decimal::from(3),
            unit_price: None,
            service_date: None,
            end_date: None,
            whmcs_service_id: None,
            product: Product {
                id: id("01tA000010khO8J"),
                name: name.into(),
                code: Some(name.to_uppercase()),
                maxio_component_handle: handle.map(Into::into),
                maxio_product_handle: product_handle.map(Into::into),
                whmcs_product_id: None,
                billing_cycle: None,
                item_class: None,
                config_options_json: None,
            },
            schedules: vec![],
        }
    }

    fn snapshot(
        quote_contact: Option<Person>,
        roles: Vec<Person>,
        items: Vec<OrderItem>,
    ) -> DealSnapshot {
        DealSnapshot {
            dispatched_on: None,
            contract: None,
            requested: DealRef::Opportunity(id("006A000010khO8J")),
            account: Account {
                id: id("001A000010khO8J"),
                name: "Acme Ltd".into(),
                phone: None,
                billing_address: Address {
                    street: Some("1 Main St\nSuite 5".into()),
                    city: Some("Springfield".into()),
                    state: Some("Oregon".into()),
                    state_code: Some("OR".into()),
                    postal_code: Some("97477".into()),
                    country: Some("United States".into()),
                    country_code: Some("US".into()),
                },
                customer_number: None,
                whmcs_client_id: None,
                maxio_customer_id: None,
            },
            opportunity: Some(Opportunity {
                id: id("006A000010khO8J"),
                name: "Deal".into(),
                stage: "Closed Won".into(),
                close_date: None,
                is_won: true,
                is_closed: true,
                amount: None,
                account_id: Some(id("001A000010khO8J")),
                maxio_subscription_id: None,
                maxio_product_handle: None,
                whmcs_service_id: None,
                maxio_sync_status: None,
                maxio_site: None,
                amended_contract: None,
                renewed_contract: None,
                scheduled_cancellation: None,
                cancellation_status: None,
                cancellation_detail: None,
                currency: Some("USD".into()),
                contact_roles: roles
                    .into_iter()
                    .map(|contact| ContactRole {
                        contact,
                        is_primary: true,
                        role: None,
                    })
                    .collect(),
            }),
            quote: Some(Quote {
                id: id("a0AA000010khO8J"),
                name: None,
                primary_contact: quote_contact,
                start_date: None,
                subscription_term: None,
                billing_frequency: None,
            }),
            orders: vec![Order {
                renews: None,
                end_date: None,
                id: id("801A000010khO8J"),
                number: None,
                status: "Activated".into(),
                effective_date: Some(today()),
                currency: Some("USD".into()),
                account_id: None,
                opportunity_id: None,
                activation_status: None,
                whmcs_order_id: None,
                items,
            }],
        }
    }

    #[test]
    fn the_customer_comes_from_the_account_and_the_quote_contact() {
        let s = snapshot(
            Some(person(Some("ada@example.com"))),
            vec![],
            vec![item("Support", Some("support"), None)],
        );
        let plan = check(&s).unwrap();
        let c = &plan.customer;
        assert_eq!(
            (
                c.first_name.as_str(),
                c.last_name.as_str(),
                c.email.as_str()
            ),
            ("Ada", "Byron", "ada@example.com")
        );
        assert_eq!(c.organization, "Acme Ltd");
        assert_eq!(c.reference, "001A000010khO8JIAU");
        assert_eq!(c.address.as_deref(), Some("1 Main St"));
        assert_eq!(c.address_2.as_deref(), Some("Suite 5"));
        assert_eq!(
            (c.state.as_deref(), c.country.as_deref()),
            (Some("OR"), Some("US"))
        );
        assert_eq!(c.phone.as_deref(), Some("+1 555 0100"));
        // Without state picklists the org holds the full name, which goes to AB as written.
        let mut free_text = s.clone();
        free_text.account.billing_address.state_code = None;
        free_text.account.billing_address.state = Some("California".into());
        let plan_free = check(&free_text).unwrap();
        assert_eq!(plan_free.customer.state.as_deref(), Some("California"));
        assert_eq!(plan.product_handle, "monthly-usage");
        assert_eq!(plan.subscription_reference, "006A000010khO8JIAU");
        assert_eq!(
            plan.items[0].price_point, None,
            "no schedule: the default price point"
        );
    }

    #[test]
    fn a_contact_role_with_an_email_stands_in_for_a_quote_contact_without_one() {
        let s = snapshot(
            Some(person(None)),
            vec![person(Some("role@example.com"))],
            vec![item("Support", Some("support"), None)],
        );
        let plan = check(&s).unwrap();
        assert_eq!(plan.customer.email, "role@example.com");
    }

    #[test]
    fn no_email_anywhere_and_unmapped_products_are_all_reported() {
        let s = snapshot(
            Some(person(None)),
            vec![person(None)],
            vec![
                item("Support", Some("support"), None),
                item("Workshop", None, None),
            ],
        );
        let problems = check(&s).unwrap_err();
        let codes: Vec<&str> = problems.iter().map(|p| p.code.as_str()).collect();
        assert_eq!(codes, ["MAXIO_NO_BILLING_EMAIL", "MAXIO_UNMAPPED_PRODUCT"]);
        assert!(problems[0].message.contains("Acme Ltd"));
        assert!(problems[1].message.contains("Workshop (WORKSHOP)"));
        assert!(describe(&problems).starts_with("MAXIO_NO_BILLING_EMAIL: "));
    }

    #[test]
    fn the_product_handle_comes_from_the_opportunity_then_the_products_then_the_default() {
        let m = Mapping::default();
        let settings = AbSettings::default();
        let mut s = snapshot(
            Some(person(Some("a@b.co"))),
            vec![],
            vec![item("A", Some("a"), Some("annual-usage"))],
        );
        assert_eq!(
            prepare(&s, &m, &settings, &facts(), today())
                .unwrap()
                .product_handle,
            "annual-usage"
        );
        if let Some(o) = s.opportunity.as_mut() {
            o.maxio_product_handle = Some("enterprise".into());
        }
        assert_eq!(
            prepare(&s, &m, &settings, &facts(), today())
                .unwrap()
                .product_handle,
            "enterprise"
        );
        let s = snapshot(
            Some(person(Some("a@b.co"))),
            vec![],
            vec![
                item("A", Some("a"), Some("annual-usage")),
                item("B", Some("b"), Some("monthly-usage")),
            ],
        );
        let problems = prepare(&s, &m, &settings, &facts(), today()).unwrap_err();
        assert_eq!(problems[0].code, "MAXIO_CONFLICTING_PRODUCTS");
    }

    fn usage_item(item_id: &str, prices: [&str; 2]) -> OrderItem {
        let rate = |n: &str, lower: i64, upper: Option<i64>, price: &str| ConsumptionRate {
            id: id(n),
            processing_order: None,
            lower_bound: Decimal::from(lower),
            upper_bound: upper.map(Decimal::from),
            price: price.parse().unwrap(),
            pricing_method: PricingMethod::PerUnit,
        };
        let mut i = item("API Calls", Some("a"), None);
        i.id = id(item_id);
        i.schedules = vec![ConsumptionSchedule {
            id: id("a0BA000010khO8J"),
            schedule_type: ScheduleType::Slab,
            rating_method: None,
            billing_term: None,
            billing_term_unit: None,
            unit_of_measure: None,
            rates: vec![
                rate("a0CA000010khO8J", 1, Some(1001), prices[0]),
                rate("a0CA000010khO8K", 1001, None, prices[1]),
            ],
        }];
        i
    }

    fn in_currency(mut s: DealSnapshot, currency: &str) -> DealSnapshot {
        for o in &mut s.orders {
            o.currency = Some(currency.into());
        }
        if let Some(o) = s.opportunity.as_mut() {
            o.currency = Some(currency.into());
        }
        s
    }

    fn deal(items: Vec<OrderItem>) -> DealSnapshot {
        snapshot(Some(person(Some("ada@example.com"))), vec![], items)
    }

    #[test]
    fn a_eur_deal_bills_in_eur_on_the_site_that_has_eur_with_eur_price_points() {
        let s = in_currency(
            deal(vec![usage_item("802A000010khO8J", ["0.10", "0.08"])]),
            "EUR",
        );
        let plan = check(&s).unwrap();
        assert_eq!(plan.site, "default");
        assert_eq!(plan.currency.as_deref(), Some("EUR"));
        assert!(plan.non_primary_currency);
        let spec = plan.items[0].price_point.as_ref().unwrap();
        assert_eq!(spec.use_site_exchange_rate, Some(false));
        assert_eq!(spec.currency.as_deref(), Some("EUR"));
        assert!(spec.name.contains("EUR"), "{}", spec.name);
        let usd = check(&deal(vec![usage_item("802A000010khO8J", ["0.10", "0.08"])])).unwrap();
        let usd_spec = usd.items[0].price_point.as_ref().unwrap();
        assert_ne!(
            usd_spec.handle, spec.handle,
            "the currency is part of the handle"
        );
        assert_eq!(usd_spec.use_site_exchange_rate, None);
        assert!(!usd.non_primary_currency);
    }

    #[test]
    fn a_gbp_deal_goes_to_the_site_whose_primary_currency_it_is() {
        let s = in_currency(deal(vec![item("Support", Some("support"), None)]), "GBP");
        let facts = facts_on("uk", &[("support", "quantity_based_component")]);
        let plan = prepare(
            &s,
            &Mapping::default(),
            &AbSettings::default(),
            &facts,
            today(),
        )
        .unwrap();
        assert_eq!(
            (plan.site.as_str(), plan.non_primary_currency),
            ("uk", false)
        );
        assert_eq!(plan.currency.as_deref(), Some("GBP"));
    }

    #[test]
    fn a_currency_no_site_bills_is_refused_naming_what_the_sites_bill() {
        let s = in_currency(deal(vec![item("Support", Some("support"), None)]), "JPY");
        let facts = AbFacts {
            sites: facts().sites,
            reads: None,
        };
        let problems = prepare(
            &s,
            &Mapping::default(),
            &AbSettings::default(),
            &facts,
            today(),
        )
        .unwrap_err();
        assert_eq!(codes(&problems), ["MAXIO_CURRENCY_UNSUPPORTED"]);
        assert_eq!(
            problems[0].message,
            "no AB site bills JPY: default bills USD (also EUR); uk bills GBP"
        );
    }

    #[test]
    fn an_opportunity_in_another_currency_than_its_order_is_refused() {
        let mut s = in_currency(deal(vec![item("Support", Some("support"), None)]), "EUR");
        if let Some(o) = s.opportunity.as_mut() {
            o.currency = Some("USD".into());
        }
        let problems = check(&s).unwrap_err();
        assert_eq!(codes(&problems), ["CURRENCY_MISMATCH"]);
        assert!(
            problems[0]
                .message
                .contains("Opportunity is in USD but its Order is in EUR")
        );
        let mut s = deal(vec![item("Support", Some("support"), None)]);
        s.orders[0].currency = None;
        s.opportunity.as_mut().unwrap().currency = None;
        assert_eq!(codes(&check(&s).unwrap_err()), ["CURRENCY_MISSING"]);
    }

    #[test]
    fn a_declared_currency_the_site_does_not_report_is_named() {
        let mut f = facts();
        f.sites[1].declared = Some(vec!["GBP".into(), "CHF".into()]);
        let s = deal(vec![item("Support", Some("support"), None)]);
        let problems =
            prepare(&s, &Mapping::default(), &AbSettings::default(), &f, today()).unwrap_err();
        assert_eq!(codes(&problems), ["MAXIO_SITE_MISCONFIGURED"]);
        assert_eq!(
            problems[0].message,
            "the mapping says site uk bills CHF, but the site reports GBP"
        );
    }

    #[test]
    fn forty_lines_of_one_component_at_one_price_are_one_component_of_quantity_forty() {
        let lines: Vec<OrderItem> = (0..40)
            .map(|n| {
                let mut i = item("Support seat", Some("support"), None);
                i.id = id(&format!("802A0000{:07}", 1_000_000 + n));
                i.quantity = Decimal::ONE;
                i.unit_price = Some(Decimal::from(25));
                i
            })
            .collect();
        let plan = check(&deal(lines)).unwrap();
        assert_eq!(plan.items.len(), 1);
        let item = &plan.items[0];
        assert_eq!(item.quantity, Decimal::from(40));
        assert_eq!(item.lines.len(), 40);
        assert_eq!(item.order_item_id, item.lines[0]);
        assert_eq!(item.product_name, "Support seat");
    }

    #[test]
    fn scheduled_lines_at_one_price_share_one_price_point_and_at_two_prices_are_refused() {
        let same = check(&deal(vec![
            usage_item("802A000010khO8J", ["0.10", "0.08"]),
            usage_item("802A000010khO8K", ["0.10", "0.08"]),
        ]))
        .unwrap();
        assert_eq!(same.items.len(), 1);
        assert_eq!(same.items[0].quantity, Decimal::from(6));
        let problems = check(&deal(vec![
            usage_item("802A000010khO8J", ["0.10", "0.08"]),
            usage_item("802A000010khO8K", ["0.12", "0.08"]),
        ]))
        .unwrap_err();
        assert_eq!(codes(&problems), ["MAXIO_SPLIT_PRICE"]);
        let m = &problems[0].message;
        assert!(m.contains("component a"), "{m}");
        assert!(
            m.contains("802A000010khO8JIAU: tiered 1-1000 at 0.1, 1001+ at 0.08"),
            "{m}"
        );
        assert!(
            m.contains("802A000010khO8KIAU: tiered 1-1000 at 0.12"),
            "{m}"
        );
    }

    #[test]
    fn quantities_are_checked_against_the_component_kind() {
        let mut half = item("Support", Some("support"), None);
        half.quantity = "2.5".parse().unwrap();
        assert_eq!(
            codes(&check(&deal(vec![half])).unwrap_err()),
            ["MAXIO_INVALID_QUANTITY"]
        );
        let mut negative = item("Support", Some("support"), None);
        negative.quantity = Decimal::from(-5);
        let problems = check(&deal(vec![negative])).unwrap_err();
        assert!(problems[0].message.contains("negative"), "{problems:?}");
        let f = facts_on("default", &[("support", "on_off_component")]);
        let on_off = item("Support", Some("support"), None);
        let problems = prepare(
            &deal(vec![on_off]),
            &Mapping::default(),
            &AbSettings::default(),
            &f,
            today(),
        )
        .unwrap_err();
        assert_eq!(codes(&problems), ["MAXIO_INVALID_QUANTITY"]);
        assert!(problems[0].message.contains("on/off"));
    }

    #[test]
    fn the_start_follows_the_order_future_now_or_refused_when_before_the_period() {
        let mut s = deal(vec![item("Support", Some("support"), None)]);
        let on = |s: &DealSnapshot| check(s).map(|p| p.start.unwrap());
        s.orders[0].effective_date = NaiveDate::from_ymd_opt(2027, 1, 15);
        let future = on(&s).unwrap();
        assert_eq!(future.mode, StartMode::Future);
        assert_eq!(future.initial_billing_at().as_deref(), Some("2027-01-15"));
        s.orders[0].effective_date = NaiveDate::from_ymd_opt(2026, 11, 20);
        let recent = on(&s).unwrap();
        assert_eq!(
            (recent.mode, recent.billing_starts),
            (StartMode::Now, today())
        );
        assert_eq!(recent.initial_billing_at(), None);
        s.orders[0].effective_date = NaiveDate::from_ymd_opt(2026, 10, 1);
        let problems = on(&s).unwrap_err();
        assert_eq!(codes(&problems), ["MAXIO_BACKDATED_START"]);
        assert!(
            problems[0].message.contains("2026-10-01"),
            "{}",
            problems[0].message
        );
        let mut m = Mapping::default();
        m.maxio.past_start = PastStart::StartOnSync;
        let plan = prepare(&s, &m, &AbSettings::default(), &facts(), today()).unwrap();
        assert_eq!(plan.start.unwrap().mode, StartMode::Now);
        s.orders[0].effective_date = None;
        assert_eq!(codes(&check(&s).unwrap_err()), ["MAXIO_NO_START_DATE"]);
    }

    #[test]
    fn a_missing_component_or_product_on_the_site_is_found_before_any_write() {
        let mut f = facts();
        if let Some(r) = f.reads.as_mut() {
            r.product = None;
            r.components.insert("support".into(), None);
        }
        let problems = prepare(
            &deal(vec![item("Support", Some("support"), None)]),
            &Mapping::default(),
            &AbSettings::default(),
            &f,
            today(),
        )
        .unwrap_err();
        assert_eq!(
            codes(&problems),
            ["MAXIO_PRODUCT_NOT_FOUND", "MAXIO_COMPONENT_NOT_FOUND"]
        );
    }

    #[test]
    fn a_non_primary_deal_on_a_default_price_point_needs_its_prices_in_that_currency() {
        let s = in_currency(deal(vec![item("Support", Some("support"), None)]), "EUR");
        let problems = check(&s).unwrap_err();
        assert_eq!(codes(&problems), ["MAXIO_CURRENCY_PRICE_MISSING"]);
        assert!(
            problems[0].message.contains("no EUR prices"),
            "{}",
            problems[0].message
        );
        let mut f = facts();
        if let Some(Some(c)) = f
            .reads
            .as_mut()
            .and_then(|r| r.components.get_mut("support"))
        {
            c.default_prices = Some(DefaultPrices {
                price_point_id: 10,
                use_site_exchange_rate: false,
                currencies: vec!["EUR".into()],
            });
        }
        assert!(prepare(&s, &Mapping::default(), &AbSettings::default(), &f, today()).is_ok());
    }

    #[test]
    fn a_past_start_is_refused_when_ab_does_not_say_the_billing_period() {
        let product = ProductFacts {
            handle: "monthly-usage".into(),
            interval: None,
            interval_unit: None,
        };
        let yesterday = today().pred_opt().unwrap();
        let problem =
            subscription_start(yesterday, today(), Some(&product), PastStart::Refuse).unwrap_err();
        assert_eq!(problem.code, ErrorCode::MaxioBackdatedStart);
        assert!(
            problem.message.contains("a period AB did not report"),
            "{}",
            problem.message
        );
        assert_eq!(
            subscription_start(today(), today(), Some(&product), PastStart::Refuse)
                .unwrap()
                .map(|s| s.mode),
            Some(StartMode::Now)
        );
    }
}
