//! The Maxio AB sites a deployment bills on, and the reads taken from them before a deal is
//! checked ([`check_deal`], called by the customer step and by `dealbridge sync --dry-run`).
//!
//! Each site's currencies come from its own `GET /site.json`, read once per container and cached:
//! a site's currencies change rarely, and a container lives minutes to hours.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;

use super::ab::{MaxioError, PricePoint};
use super::facts::{
    AbFacts, ComponentFacts, DefaultPrices, ProductFacts, SiteCurrencies, SiteFacts, SiteReads,
    deal_currency, route, wanted,
};
use super::options::DEFAULT_SITE;
use super::prepare::{AbDealPlan, AbSettings, DealProblem, prepare};
use crate::budget::{Budgets, SharedBudgets, SiteBudget};
use crate::mapping::Mapping;
use crate::ports::MaxioAb;
use crate::snapshot::DealSnapshot;
use crate::snapshot::fields::decimal_from_number;

/// One AB site: its client and what the mapping declares it bills.
pub struct Site {
    pub name: String,
    pub ab: Arc<dyn MaxioAb>,
    pub declared: Option<Vec<String>>,
    currencies: Mutex<Option<SiteCurrencies>>,
}

impl Site {
    pub fn new(name: &str, ab: Arc<dyn MaxioAb>, declared: Option<Vec<String>>) -> Site {
        Site {
            name: name.to_string(),
            ab,
            declared,
            currencies: Mutex::new(None),
        }
    }

    /// The site's currencies, read once.
    pub async fn currencies(&self) -> Result<SiteCurrencies, MaxioError> {
        if let Some(c) = self.currencies.lock().ok().and_then(|c| c.clone()) {
            return Ok(c);
        }
        let site = self.ab.site().await?;
        let currencies = SiteCurrencies {
            primary: site.currency,
            non_primary: site.non_primary_currencies,
        };
        if let Ok(mut cached) = self.currencies.lock() {
            *cached = Some(currencies.clone());
        }
        Ok(currencies)
    }
}

/// Every configured site, the default one first.
pub struct Sites {
    sites: Vec<Site>,
    budgets: Budgets,
}

impl Sites {
    pub fn new(sites: Vec<Site>) -> Sites {
        Sites {
            sites,
            budgets: Budgets::new(),
        }
    }

    /// The sites, whose clients send on `budgets`' slots.
    pub fn with_budgets(sites: Vec<Site>, budgets: Budgets) -> Sites {
        Sites { sites, budgets }
    }

    /// Each site's request budget (as this container sees it).
    pub fn budgets(&self) -> Vec<Arc<SiteBudget>> {
        self.budgets.all()
    }

    /// Gives back the request slots the container holds (the end of a batch).
    pub async fn release_slots(&self) {
        self.budgets.release_all().await;
    }

    /// The one default site, with whatever currencies it reports.
    pub fn single(ab: Arc<dyn MaxioAb>) -> Sites {
        Sites::new(vec![Site::new(DEFAULT_SITE, ab, None)])
    }

    pub fn get(&self, name: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.name == name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.sites.iter().map(|s| s.name.as_str()).collect()
    }

    /// Each site's currencies and declaration.
    pub async fn facts(&self) -> Result<Vec<SiteFacts>, MaxioError> {
        let mut out = Vec::with_capacity(self.sites.len());
        for site in &self.sites {
            out.push(SiteFacts {
                name: site.name.clone(),
                currencies: site.currencies().await?,
                declared: site.declared.clone(),
            });
        }
        Ok(out)
    }
}

/// Currencies with a price for every bracket of `point`.
fn priced_currencies(point: &PricePoint) -> Vec<String> {
    let brackets: Vec<i64> = point.prices.iter().filter_map(|p| p.id).collect();
    let mut currencies: Vec<String> = point
        .currency_prices
        .iter()
        .filter_map(|c| c.currency.clone())
        .collect();
    currencies.sort();
    currencies.dedup();
    currencies
        .into_iter()
        .filter(|currency| {
            !brackets.is_empty()
                && brackets.iter().all(|b| {
                    point.currency_prices.iter().any(|c| {
                        c.currency.as_deref() == Some(currency.as_str())
                            && c.price_id == Some(*b)
                            && match &c.price {
                                serde_json::Value::Number(n) => decimal_from_number(n).is_some(),
                                serde_json::Value::String(s) => {
                                    s.trim().parse::<rust_decimal::Decimal>().is_ok()
                                }
                                _ => false,
                            }
                    })
                })
        })
        .collect()
}

/// Reads what AB knows that the deal's check needs: every site's currencies, then, on the site the
/// deal routes to, the product, the components and (for a non-primary currency) the default price
/// points the deal bills on. Read-only.
pub async fn gather(
    sites: &Sites,
    snapshot: &DealSnapshot,
    mapping: &Mapping,
    settings: &AbSettings,
) -> Result<AbFacts, MaxioError> {
    let site_facts = sites.facts().await?;
    let routed = deal_currency(snapshot, mapping)
        .ok()
        .and_then(|currency| route(snapshot, &currency, &site_facts).ok());
    let Some((routed, site)) = routed.and_then(|r| sites.get(&r.site).map(|s| (r, s))) else {
        return Ok(AbFacts {
            sites: site_facts,
            reads: None,
        });
    };
    let (product_handle, handles) = wanted(snapshot, mapping, settings);
    let product = site
        .ab
        .product(&product_handle)
        .await?
        .map(|p| ProductFacts {
            handle: p.handle.unwrap_or(product_handle.clone()),
            interval: p.interval,
            interval_unit: p.interval_unit,
        });
    let mut components = BTreeMap::new();
    for (handle, on_default) in handles {
        let component = match site.ab.component(&handle).await {
            Ok(c) => c,
            Err(MaxioError::NotFound(_)) => {
                components.insert(handle, None);
                continue;
            }
            Err(e) => return Err(e),
        };
        let default_prices = match (
            routed.non_primary && on_default,
            component.default_price_point_id,
        ) {
            (true, Some(id)) => {
                site.ab
                    .price_point(component.id, id)
                    .await?
                    .map(|p| DefaultPrices {
                        price_point_id: p.id,
                        use_site_exchange_rate: p.use_site_exchange_rate.unwrap_or(true),
                        currencies: priced_currencies(&p),
                    })
            }
            _ => None,
        };
        components.insert(
            handle,
            Some(ComponentFacts {
                component,
                default_prices,
            }),
        );
    }
    Ok(AbFacts {
        sites: site_facts,
        reads: Some(SiteReads {
            site: site.name.clone(),
            product,
            components,
        }),
    })
}

/// The one check of a deal before any AB write: [`gather`] then [`prepare`]. `Err` is a failed
/// read (usually passing); `Ok(Err(problems))` is a deal that cannot be billed. A deal on an
/// amended Contract is read for the Contract as netted (its currency, its first sale's site,
/// every component on it).
pub async fn check_deal(
    sites: &Sites,
    snapshot: &DealSnapshot,
    mapping: &Mapping,
    settings: &AbSettings,
    today: NaiveDate,
) -> Result<Result<AbDealPlan, Vec<DealProblem>>, MaxioError> {
    let refuse_backdated = mapping.maxio.past_start == super::options::PastStart::Refuse;
    let view =
        crate::contract::net::view(snapshot, mapping, today, refuse_backdated).and_then(Result::ok);
    let read_for = view.as_ref().map_or(snapshot, |v| &v.snapshot);
    let facts = gather(sites, read_for, mapping, settings).await?;
    let mut plan = match prepare(snapshot, mapping, settings, &facts, today) {
        Ok(plan) => plan,
        Err(problems) => return Ok(Err(problems)),
    };
    // A Contract made by a renewal: its first sale (the renewal) continues the subscription the
    // renewed Contract's first sale began, whose reference is that one's.
    if let Some(change) = plan.contract.as_ref().filter(|c| c.original_renews)
        && let (Some(id), Some(site)) = (change.subscription_id, sites.get(&plan.site))
        && let Some(reference) = site
            .ab
            .read_subscription(id)
            .await?
            .and_then(|s| s.reference)
    {
        plan.subscription_reference = reference;
    }
    Ok(Ok(plan))
}

/// The sites of a deployment: the default one from `MAXIO_AB_*` (`default`), then every site the
/// mapping declares, each with its own client (its own secret and request budget), sharing the
/// default site's timeout and retries. The budgets' slots are kept in `shared` (the deployed
/// functions' DynamoDB table, shared by every container); without it, each site's budget is this
/// process's alone.
pub fn build(
    default: &super::ab::AbClientSettings,
    options: &super::options::MaxioOptions,
    secrets: Arc<dyn crate::secrets::SecretStore>,
    shared: Option<SharedBudgets>,
) -> Result<Sites, String> {
    let budgets = Budgets::new();
    let client = |name: &str, settings: super::ab::AbClientSettings| {
        let budget = Arc::new(match &shared {
            Some(shared) => shared.site(name, settings.budget()),
            None => SiteBudget::in_process(name, settings.budget()),
        });
        budgets.add(budget.clone());
        super::ab::AbClient::with_budget(settings, secrets.clone(), budget)
            .map_err(|e| e.to_string())
    };
    let limit = |decl: Option<&super::options::SiteDecl>, fallback: usize| {
        decl.and_then(|d| d.max_concurrency)
            .map_or(fallback, |n| usize::try_from(n).unwrap_or(fallback))
    };
    let default_decl = options.site(DEFAULT_SITE);
    let mut settings = default.clone();
    settings.max_concurrent_requests = limit(default_decl, default.max_concurrent_requests);
    let mut sites = vec![Site::new(
        DEFAULT_SITE,
        Arc::new(client(DEFAULT_SITE, settings)?),
        default_decl.and_then(|d| d.currencies.clone()),
    )];
    for decl in options.sites.iter().filter(|d| d.name != DEFAULT_SITE) {
        let base_url = decl
            .base_url
            .as_deref()
            .ok_or_else(|| format!("AB site {} has no base_url", decl.name))
            .and_then(|u| {
                crate::config::parse_base_url(u).map_err(|e| format!("AB site {}: {e}", decl.name))
            })?;
        let settings = super::ab::AbClientSettings {
            base_url,
            secret_name: decl
                .secret
                .clone()
                .ok_or_else(|| format!("AB site {} has no secret", decl.name))?,
            timeout: default.timeout,
            retry: default.retry.clone(),
            max_concurrent_requests: limit(Some(decl), super::ab::MAX_CONCURRENT_REQUESTS),
        };
        sites.push(Site::new(
            &decl.name,
            Arc::new(client(&decl.name, settings)?),
            decl.currencies.clone(),
        ));
    }
    Ok(Sites::with_budgets(sites, budgets))
}
