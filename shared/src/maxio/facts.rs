//! What Maxio AB says about a deal before anything is written, and the pure decisions taken from
//! it: the deal's currency, the site that bills it, the product and components it needs. The
//! reads themselves are in [`super::sites`]; [`super::prepare`] checks the deal against these
//! facts, so the workers and the dry run decide alike.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ab::Component;
use super::options::DEFAULT_SITE;
use super::prepare::{AbSettings, DealProblem};
use crate::codes::ErrorCode;
use crate::mapping::Mapping;
use crate::snapshot::DealSnapshot;

/// A site's currencies as `GET /site.json` reports them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteCurrencies {
    pub primary: String,
    pub non_primary: Vec<String>,
}

impl SiteCurrencies {
    pub fn bills(&self, currency: &str) -> bool {
        self.primary == currency || self.non_primary.iter().any(|c| c == currency)
    }

    fn describe(&self) -> String {
        if self.non_primary.is_empty() {
            self.primary.clone()
        } else {
            format!("{} (also {})", self.primary, self.non_primary.join(", "))
        }
    }
}

/// One configured site: what it reports, and what the mapping declares it bills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteFacts {
    pub name: String,
    pub currencies: SiteCurrencies,
    /// `maxio.sites[].currencies`: the site bills only these (each must be one it reports).
    pub declared: Option<Vec<String>>,
}

impl SiteFacts {
    /// The currencies dealbridge bills on this site.
    pub fn bills(&self, currency: &str) -> bool {
        self.currencies.bills(currency)
            && self
                .declared
                .as_ref()
                .is_none_or(|d| d.iter().any(|c| c == currency))
    }

    fn describe(&self) -> String {
        match &self.declared {
            Some(d) => format!("{} bills {}", self.name, d.join(", ")),
            None => format!("{} bills {}", self.name, self.currencies.describe()),
        }
    }

    /// Declared currencies the site does not report.
    fn contradictions(&self) -> Vec<String> {
        self.declared
            .iter()
            .flatten()
            .filter(|c| !self.currencies.bills(c))
            .map(|c| {
                format!(
                    "the mapping says site {} bills {c}, but the site reports {}",
                    self.name,
                    self.currencies.describe()
                )
            })
            .collect()
    }
}

/// The AB product a subscription is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductFacts {
    pub handle: String,
    /// The billing period, as AB reports it (`None`: not said; a past start is then refused).
    pub interval: Option<i64>,
    /// `month` or `day`.
    pub interval_unit: Option<String>,
}

/// A component's default price point, read when a deal in a non-primary currency bills on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultPrices {
    pub price_point_id: i64,
    pub use_site_exchange_rate: bool,
    /// Currencies with a price for every bracket.
    pub currencies: Vec<String>,
}

/// A component as the chosen site has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentFacts {
    pub component: Component,
    /// Only read for a non-primary currency and lines without a schedule.
    pub default_prices: Option<DefaultPrices>,
}

/// The reads on the site that bills the deal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteReads {
    pub site: String,
    /// `None`: the product does not exist on the site.
    pub product: Option<ProductFacts>,
    /// By handle; `None`: no such component on the site.
    pub components: BTreeMap<String, Option<ComponentFacts>>,
}

/// Everything read from AB before a deal is checked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AbFacts {
    pub sites: Vec<SiteFacts>,
    /// `None` when no site could be chosen (the currency problem is then reported).
    pub reads: Option<SiteReads>,
}

/// The site a deal bills on, and whether its currency is the site's primary one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub site: String,
    pub currency: String,
    pub non_primary: bool,
}

/// The deal's currency: the Order's (every Order of the deal alike), which the Opportunity's
/// must equal; `maxio.org_currency` when the org has no currency fields.
pub fn deal_currency(snapshot: &DealSnapshot, mapping: &Mapping) -> Result<String, DealProblem> {
    let problem = |code, message: String| DealProblem { code, message };
    let mut order_currencies: Vec<(String, &str)> = snapshot
        .orders
        .iter()
        .filter_map(|o| o.currency.as_deref().map(|c| (o.id.to_string(), c)))
        .collect();
    order_currencies.sort();
    let mut distinct: Vec<&str> = order_currencies.iter().map(|(_, c)| *c).collect();
    distinct.sort_unstable();
    distinct.dedup();
    let order_currency = match distinct.as_slice() {
        [] => None,
        [one] => Some(one.to_string()),
        _ => {
            return Err(problem(
                ErrorCode::CurrencyMismatch,
                format!(
                    "the deal's Orders are in different currencies ({}); one deal bills in one currency",
                    order_currencies
                        .iter()
                        .map(|(id, c)| format!("{id}: {c}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    };
    let opportunity_currency = snapshot
        .opportunity
        .as_ref()
        .and_then(|o| o.currency.clone());
    match (order_currency, opportunity_currency) {
        (Some(order), Some(opp)) if order != opp => Err(problem(
            ErrorCode::CurrencyMismatch,
            format!(
                "the Opportunity is in {opp} but its Order is in {order}; correct one of them"
            ),
        )),
        (Some(order), _) => Ok(order),
        (None, opp) => match (&mapping.maxio.org_currency, opp) {
            (Some(org), Some(opp)) if *org != opp => Err(problem(
                ErrorCode::CurrencyMismatch,
                format!("the Opportunity is in {opp} but the org's currency (maxio.org_currency) is {org}"),
            )),
            (Some(org), _) => Ok(org.clone()),
            (None, Some(opp)) => Ok(opp),
            (None, None) => Err(problem(
                ErrorCode::CurrencyMissing,
                match &mapping.order.currency {
                    Some(field) => format!(
                        "the Order has no currency ({field} is empty) and the mapping names no maxio.org_currency; dealbridge does not guess one"
                    ),
                    None => "the mapping reads no Order currency (order.currency is null) and names no maxio.org_currency".into(),
                },
            )),
        },
    }
}

/// Problems of the configuration itself: declared currencies a site does not report.
pub fn site_problems(sites: &[SiteFacts]) -> Vec<DealProblem> {
    sites
        .iter()
        .flat_map(SiteFacts::contradictions)
        .map(|message| DealProblem {
            code: ErrorCode::MaxioSiteMisconfigured,
            message,
        })
        .collect()
}

/// The site that bills `currency`: the one the deal was billed on before (`Maxio_Site__c`), else
/// the first whose primary currency it is, else the first that bills it as a non-primary
/// currency.
pub fn route(
    snapshot: &DealSnapshot,
    currency: &str,
    sites: &[SiteFacts],
) -> Result<Route, DealProblem> {
    let recorded = snapshot
        .opportunity
        .as_ref()
        .and_then(|o| o.maxio_site.as_deref())
        .filter(|s| !s.trim().is_empty());
    let route = |site: &SiteFacts| Route {
        site: site.name.clone(),
        currency: currency.to_string(),
        non_primary: site.currencies.primary != currency,
    };
    if let Some(name) = recorded {
        let Some(site) = sites.iter().find(|s| s.name == name) else {
            return Err(DealProblem {
                code: ErrorCode::MaxioSiteMisconfigured,
                message: format!(
                    "the Opportunity was billed on AB site {name}, which is not configured (sites: {})",
                    names(sites)
                ),
            });
        };
        if !site.bills(currency) {
            return Err(DealProblem {
                code: ErrorCode::MaxioCurrencyUnsupported,
                message: format!(
                    "the Opportunity was billed on AB site {name}, which does not bill {currency} ({})",
                    site.describe()
                ),
            });
        }
        return Ok(route(site));
    }
    let primary = sites
        .iter()
        .find(|s| s.currencies.primary == currency && s.bills(currency));
    let other = || sites.iter().find(|s| s.bills(currency));
    match primary.or_else(other) {
        Some(site) => Ok(route(site)),
        None => Err(DealProblem {
            code: ErrorCode::MaxioCurrencyUnsupported,
            message: format!(
                "no AB site bills {currency}: {}",
                sites
                    .iter()
                    .map(SiteFacts::describe)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }),
    }
}

fn names(sites: &[SiteFacts]) -> String {
    if sites.is_empty() {
        return DEFAULT_SITE.to_string();
    }
    sites
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What to read on the chosen site: the product handle and each component handle, with whether
/// any of its lines bills on the component's default price point.
pub fn wanted(
    snapshot: &DealSnapshot,
    mapping: &Mapping,
    settings: &AbSettings,
) -> (String, BTreeMap<String, bool>) {
    let mut components: BTreeMap<String, bool> = BTreeMap::new();
    for (_, item) in snapshot.order_items() {
        if let Some(handle) = mapping.component_handle(&item.product) {
            let on_default = item.schedules.is_empty();
            *components.entry(handle.to_string()).or_default() |= on_default;
        }
    }
    (
        super::prepare::product_handle(snapshot, mapping, settings).0,
        components,
    )
}
