//! The configuration of the Maxio AB functions and of the Maxio Core link.

use super::ab::{AbClientSettings, MAX_CONCURRENT_REQUESTS};
use super::core::CoreClientSettings;
use super::link::LinkSettings;
use super::prepare::AbSettings;
use crate::config::{parse_api_root, parse_base_url};
use crate::retry::RetryPolicy;
use crate::settings::Env;

/// The Maxio AB site, how deals are billed on it, and whether the chain goes on to the Core link.
#[derive(Debug, Clone)]
pub struct AbConfig {
    pub client: AbClientSettings,
    pub deal: AbSettings,
    /// `MAXIO_CORE_LINK_ENABLED`: a synced subscription goes on to the Maxio Core link, which
    /// then writes the outcome and the link to the Opportunity in one call.
    pub core_link: bool,
    /// `MAXIO_AB_BUDGET_TABLE`: the DynamoDB table of the AB sites' request budgets, shared by
    /// every container ([`crate::budget`]). The deployed AB functions refuse to start without
    /// it; elsewhere (the operator CLI) its absence makes each site's budget the process's own.
    pub budget_table: Option<String>,
}

const PAYMENT_COLLECTION_METHODS: [&str; 4] = ["automatic", "remittance", "prepaid", "invoice"];

impl AbConfig {
    pub fn read(env: &mut Env<'_>) -> Option<AbConfig> {
        let (base_url, timeout, secret_name) = env.endpoint(
            "MAXIO_AB",
            "https://<subdomain>.chargify.com",
            parse_base_url,
            15,
            "dealbridge/maxio-ab",
        );
        let method = env.or("MAXIO_AB_PAYMENT_COLLECTION_METHOD", "remittance");
        if !PAYMENT_COLLECTION_METHODS.contains(&method.as_str()) {
            env.problem(format!(
                "MAXIO_AB_PAYMENT_COLLECTION_METHOD {method:?} is not one of automatic, remittance, prepaid, invoice"
            ));
        }
        let product_handle = env.or("MAXIO_AB_PRODUCT_HANDLE", "monthly-usage");
        let core_link = env.flag("MAXIO_CORE_LINK_ENABLED", false);
        let budget_table = env.var(crate::budget::BUDGET_TABLE_VARIABLE);
        Some(AbConfig {
            client: AbClientSettings {
                base_url: base_url?,
                secret_name,
                timeout,
                retry: RetryPolicy::default(),
                max_concurrent_requests: MAX_CONCURRENT_REQUESTS,
            },
            deal: AbSettings {
                product_handle,
                payment_collection_method: method,
            },
            core_link,
            budget_table,
        })
    }
}

/// The Maxio Core tenant and how AB subscriptions are linked to its contracts.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub client: CoreClientSettings,
    pub link: LinkSettings,
}

impl CoreConfig {
    pub fn read(env: &mut Env<'_>) -> Option<CoreConfig> {
        let (base_url, timeout, secret_name) = env.endpoint(
            "MAXIO_CORE",
            "https://<server>.saasoptics.com/<account>/api/v1.0/",
            parse_api_root,
            15,
            "dealbridge/maxio-core",
        );
        let link = LinkSettings::read(env);
        Some(CoreConfig {
            client: CoreClientSettings {
                base_url: base_url?,
                secret_name,
                timeout,
                retry: RetryPolicy::default(),
                max_pages: 100,
            },
            link,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<T>(
        reader: fn(&mut Env<'_>) -> Option<T>,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<T, Vec<String>> {
        let mut env = Env::new(get);
        let value = reader(&mut env);
        env.finish(value)
    }

    #[test]
    fn the_ab_configuration_is_read_and_problems_named() {
        let ab = read(AbConfig::read, |k| match k {
            "MAXIO_AB_BASE_URL" => Some("https://acme.chargify.com".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(ab.client.secret_name, "dealbridge/maxio-ab");
        assert_eq!(ab.deal.payment_collection_method, "remittance");
        assert!(!ab.core_link);
        let problems = read(AbConfig::read, |k| match k {
            "MAXIO_AB_BASE_URL" => Some("http://acme.chargify.com".into()),
            "MAXIO_AB_PAYMENT_COLLECTION_METHOD" => Some("cheque".into()),
            "MAXIO_CORE_LINK_ENABLED" => Some("perhaps".into()),
            _ => None,
        })
        .unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn the_core_configuration_is_read_and_problems_named() {
        let core = read(CoreConfig::read, |k| match k {
            "MAXIO_CORE_BASE_URL" => Some("https://s12.saasoptics.com/acme/api/v1.0/".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(core.client.secret_name, "dealbridge/maxio-core");
        assert_eq!(core.link.contract_field, "text_field2");
        let problems = read(CoreConfig::read, |k| match k {
            "MAXIO_CORE_TIMEOUT_SECONDS" => Some("soon".into()),
            "MAXIO_CORE_CONTRACT_FIELD" => Some("id".into()),
            _ => None,
        })
        .unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("MAXIO_CORE_BASE_URL is not set"));
    }

    #[test]
    fn the_link_is_enabled_only_when_asked() {
        let enabled = |v: Option<&'static str>| {
            let mut env = Env::new(move |k| {
                if k == "MAXIO_AB_BASE_URL" {
                    Some("https://acme.chargify.com".into())
                } else if k == "MAXIO_CORE_LINK_ENABLED" {
                    v.map(str::to_string)
                } else {
                    None
                }
            });
            AbConfig::read(&mut env).unwrap().core_link
        };
        assert!(!enabled(None));
        assert!(enabled(Some("true")));
        assert!(!enabled(Some("false")));
    }
}
