//! The `maxio` section of the mapping document: which Maxio AB sites bill which currencies, the
//! currency of an org without multi-currency, what a start date in the past means, and how a
//! repair's allocations are charged. Every key is optional; the defaults bill on the one site of
//! `MAXIO_AB_BASE_URL`, in the currencies that site reports.

use serde::{Deserialize, Serialize};

/// The name of the site configured by `MAXIO_AB_BASE_URL` and `MAXIO_AB_SECRET_NAME`.
pub const DEFAULT_SITE: &str = "default";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaxioOptions {
    /// AB sites. The `default` site (from the environment) is always one of them; an entry named
    /// `default` may declare its currencies (and concurrency) without a URL or secret.
    pub sites: Vec<SiteDecl>,
    /// The one currency of an org without multi-currency (where `opportunity.currency` and
    /// `order.currency` are null). Unset: the Order's currency field is required.
    pub org_currency: Option<String>,
    /// What a subscription start further in the past than the current billing period does.
    pub past_start: PastStart,
    /// How the allocations of a repair (a re-run bringing an existing subscription to the deal's
    /// quantities) are charged or credited. Always sent, never left to the site's defaults.
    pub allocation: AllocationCharges,
}

impl Default for MaxioOptions {
    fn default() -> Self {
        MaxioOptions {
            sites: Vec::new(),
            org_currency: None,
            past_start: PastStart::Refuse,
            allocation: AllocationCharges::default(),
        }
    }
}

/// One AB site.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SiteDecl {
    /// Shown in the ledger, written to the Opportunity and used by `dealbridge status`.
    pub name: String,
    /// `https://<subdomain>.chargify.com`; required except for `default`.
    pub base_url: Option<String>,
    /// The Secrets Manager secret holding the site's `{"api_key": ...}`; required except for
    /// `default`.
    pub secret: Option<String>,
    /// The currencies this site bills in, as ISO 4217 codes. Checked against the site's own
    /// `GET /site.json` (primary and non-primary currencies); unset: whatever the site reports.
    pub currencies: Option<Vec<String>>,
    /// The most requests in flight to this site from one container (AB allows 4 per site).
    pub max_concurrency: Option<u32>,
}

/// A start date before the current billing period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PastStart {
    /// Refused with `MAXIO_BACKDATED_START` (AB cannot bill a past period exactly).
    Refuse,
    /// The subscription starts when dealbridge creates it.
    StartOnSync,
}

/// `upgrade_charge`, `downgrade_credit` and `accrue_charge` of an allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AllocationCharges {
    /// `prorated`, `full` or `none`.
    pub upgrade_charge: String,
    /// `prorated`, `full` or `none`.
    pub downgrade_credit: String,
    /// true: add the charge to the next renewal; false: collect it now.
    pub accrue_charge: bool,
}

impl Default for AllocationCharges {
    fn default() -> Self {
        AllocationCharges {
            upgrade_charge: "prorated".into(),
            downgrade_credit: "prorated".into(),
            accrue_charge: true,
        }
    }
}

const CHARGE_SCHEMES: [&str; 3] = ["prorated", "full", "none"];

/// Whether `code` looks like an ISO 4217 currency code (three upper-case letters).
pub fn is_currency_code(code: &str) -> bool {
    code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase())
}

impl MaxioOptions {
    /// Every problem of the section, by key.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for (i, site) in self.sites.iter().enumerate() {
            let key = format!("maxio.sites[{i}]");
            if site.name.trim().is_empty() {
                out.push(format!("{key}.name is empty"));
            } else if names.contains(&site.name.as_str()) {
                out.push(format!("{key}.name {:?} is declared twice", site.name));
            }
            names.push(site.name.as_str());
            if site.name != DEFAULT_SITE {
                match site.base_url.as_deref() {
                    None => out.push(format!("{key} ({}) has no base_url", site.name)),
                    Some(url) => {
                        if let Err(e) = crate::config::parse_base_url(url) {
                            out.push(format!("{key}.base_url {url:?}: {e}"));
                        }
                    }
                }
                if site.secret.as_deref().is_none_or(|s| s.trim().is_empty()) {
                    out.push(format!("{key} ({}) has no secret", site.name));
                }
            } else if site.base_url.is_some() || site.secret.is_some() {
                out.push(format!(
                    "{key}: the default site's URL and secret come from MAXIO_AB_BASE_URL and MAXIO_AB_SECRET_NAME, not the mapping"
                ));
            }
            for c in site.currencies.iter().flatten() {
                if !is_currency_code(c) {
                    out.push(format!(
                        "{key}.currencies: {c:?} is not an ISO 4217 code (three capital letters)"
                    ));
                }
            }
            if site.currencies.as_ref().is_some_and(Vec::is_empty) {
                out.push(format!("{key}.currencies is empty"));
            }
            if site.max_concurrency == Some(0) {
                out.push(format!("{key}.max_concurrency must be at least 1"));
            }
        }
        if let Some(c) = &self.org_currency
            && !is_currency_code(c)
        {
            out.push(format!(
                "maxio.org_currency {c:?} is not an ISO 4217 code (three capital letters)"
            ));
        }
        for (key, value) in [
            ("upgrade_charge", &self.allocation.upgrade_charge),
            ("downgrade_credit", &self.allocation.downgrade_credit),
        ] {
            if !CHARGE_SCHEMES.contains(&value.as_str()) {
                out.push(format!(
                    "maxio.allocation.{key} {value:?} is not one of prorated, full, none"
                ));
            }
        }
        out
    }

    /// The declaration of `name`, if the mapping has one.
    pub fn site(&self, name: &str) -> Option<&SiteDecl> {
        self.sites.iter().find(|s| s.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_are_checked_by_key() {
        let options: MaxioOptions = serde_json::from_str(
            r#"{"sites":[{"name":"eu","currencies":["eur"]},{"name":"eu","base_url":"https://eu.chargify.com","secret":"s"},{"name":"default","secret":"x"}],
                "org_currency":"usd","allocation":{"upgrade_charge":"half"}}"#,
        )
        .unwrap();
        let problems = options.problems();
        assert!(
            problems
                .iter()
                .any(|p| p.contains("maxio.sites[0] (eu) has no base_url")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("maxio.sites[0] (eu) has no secret"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("\"eur\" is not an ISO 4217 code"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("\"eu\" is declared twice"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("the default site's URL and secret"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("maxio.org_currency \"usd\""))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("maxio.allocation.upgrade_charge \"half\""))
        );
        assert_eq!(problems.len(), 7, "{problems:?}");
    }

    #[test]
    fn the_defaults_have_no_problem() {
        assert!(MaxioOptions::default().problems().is_empty());
        let options: MaxioOptions = serde_json::from_str(
            r#"{"sites":[{"name":"default","currencies":["USD","EUR"]},{"name":"uk","base_url":"https://uk.chargify.com","secret":"dealbridge/maxio-ab-uk","currencies":["GBP"],"max_concurrency":2}],"past_start":"start_on_sync"}"#,
        )
        .unwrap();
        assert!(options.problems().is_empty(), "{:?}", options.problems());
        assert_eq!(options.past_start, PastStart::StartOnSync);
    }
}
