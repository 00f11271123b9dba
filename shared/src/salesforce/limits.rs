//! The `Sforce-Limit-Info` response header: the org's rolling 24-hour API usage.

use serde::Serialize;

/// API usage as reported by Salesforce on a response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiUsage {
    pub used: u64,
    pub max: u64,
    /// `per-app-api-usage`, when the connected app has its own allocation.
    pub per_app: Option<AppUsage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppUsage {
    pub app: String,
    pub used: u64,
    pub max: u64,
}

impl ApiUsage {
    /// Parses `api-usage=10018/100000` optionally followed by
    /// `; per-app-api-usage=17/250(appName=sample-app)`. Unknown parts are ignored.
    pub fn parse(header: &str) -> Option<ApiUsage> {
        let mut usage: Option<(u64, u64)> = None;
        let mut per_app = None;
        for part in header.split(';').map(str::trim) {
            if let Some(rest) = part.strip_prefix("api-usage=") {
                usage = parse_ratio(rest);
            } else if let Some(rest) = part.strip_prefix("per-app-api-usage=") {
                let (ratio, app) = match rest.split_once('(') {
                    Some((ratio, tail)) => (
                        ratio,
                        tail.trim_end_matches(')')
                            .strip_prefix("appName=")
                            .unwrap_or(tail)
                            .to_string(),
                    ),
                    None => (rest, String::new()),
                };
                if let Some((used, max)) = parse_ratio(ratio) {
                    per_app = Some(AppUsage { app, used, max });
                }
            }
        }
        let (used, max) = usage?;
        Some(ApiUsage { used, max, per_app })
    }

    /// The share of the org's daily allocation used, from 0.0 (as a ratio for alarms and logs).
    pub fn used_ratio(&self) -> f64 {
        if self.max == 0 {
            return 1.0;
        }
        self.used as f64 / self.max as f64
    }
}

fn parse_ratio(s: &str) -> Option<(u64, u64)> {
    let (used, max) = s.trim().split_once('/')?;
    Some((used.trim().parse().ok()?, max.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_org_usage() {
        let u = ApiUsage::parse("api-usage=10018/100000").unwrap();
        assert_eq!((u.used, u.max), (10018, 100000));
        assert!(u.per_app.is_none());
        assert!((u.used_ratio() - 0.10018).abs() < 1e-9);
    }

    #[test]
    fn parses_per_app_usage() {
        let u = ApiUsage::parse("api-usage=25/5000; per-app-api-usage=17/250(appName=dealbridge)")
            .unwrap();
        assert_eq!(
            u.per_app,
            Some(AppUsage {
                app: "dealbridge".into(),
                used: 17,
                max: 250
            })
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(ApiUsage::parse("").is_none());
        assert!(ApiUsage::parse("api-usage=abc/100").is_none());
        assert!(ApiUsage::parse("per-app-api-usage=1/2(appName=x)").is_none());
    }
}
