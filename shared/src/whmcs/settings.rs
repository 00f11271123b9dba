//! The whmcs-provision function's WHMCS configuration.

use super::client::WhmcsClientSettings;
use crate::config::parse_api_root;
use crate::retry::RetryPolicy;
use crate::settings::Env;

impl WhmcsClientSettings {
    /// Reads `WHMCS_BASE_URL`, `WHMCS_SECRET_NAME` and `WHMCS_TIMEOUT_SECONDS`.
    pub fn read(env: &mut Env<'_>) -> Option<WhmcsClientSettings> {
        let (base_url, timeout, secret_name) = env.endpoint(
            "WHMCS",
            "the WHMCS installation, e.g. https://billing.example.com/",
            parse_api_root,
            30,
            "dealbridge/whmcs",
        );
        Some(WhmcsClientSettings {
            base_url: base_url?,
            secret_name,
            timeout,
            retry: RetryPolicy::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(get: impl Fn(&str) -> Option<String>) -> Result<WhmcsClientSettings, Vec<String>> {
        let mut env = Env::new(get);
        let s = WhmcsClientSettings::read(&mut env);
        env.finish(s)
    }

    #[test]
    fn the_whmcs_configuration_is_read_and_problems_named() {
        let s = read(|k| match k {
            "WHMCS_BASE_URL" => Some("https://billing.example.com/whmcs".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.base_url.as_str(), "https://billing.example.com/whmcs/");
        assert_eq!(s.secret_name, "dealbridge/whmcs");
        let problems = read(|k| match k {
            "WHMCS_BASE_URL" => Some("http://billing.example.com".into()),
            "WHMCS_TIMEOUT_SECONDS" => Some("slow".into()),
            _ => None,
        })
        .unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
