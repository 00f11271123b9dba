//! The intake's own configuration, read once from the environment.

use dealbridge::salesforce::SfId;

#[derive(Debug, Clone)]
pub struct IntakeSettings {
    /// Secrets Manager secret with `hmac_key`, `bearer_token` and `soap_token`.
    pub secret_name: String,
    /// Organization Ids whose Outbound Messages are accepted.
    pub allowed_org_ids: Vec<SfId>,
    pub max_body_bytes: usize,
    /// How far a signature's timestamp may be from now, in seconds.
    pub signature_tolerance_secs: i64,
}

pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

impl IntakeSettings {
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<IntakeSettings, Vec<String>> {
        let mut problems = Vec::new();
        let var = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let secret_name = var("INTAKE_SECRET_NAME").unwrap_or_else(|| {
            problems.push("INTAKE_SECRET_NAME is not set (the secret with hmac_key, bearer_token, soap_token)".into());
            String::new()
        });
        let mut allowed_org_ids = Vec::new();
        for raw in var("SALESFORCE_ORG_IDS").unwrap_or_default().split(',') {
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            match SfId::parse(raw) {
                Ok(id) if id.key_prefix() == "00D" => allowed_org_ids.push(id),
                Ok(_) => problems.push(format!(
                    "SALESFORCE_ORG_IDS: {raw} is not an Organization Id (they start with 00D)"
                )),
                Err(e) => problems.push(format!("SALESFORCE_ORG_IDS: {raw}: {e}")),
            }
        }
        let number = |name: &str, default: i64, problems: &mut Vec<String>| match var(name) {
            None => default,
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .unwrap_or_else(|| {
                    problems.push(format!("{name} {raw:?} is not a positive whole number"));
                    default
                }),
        };
        let max_body_bytes = number(
            "INTAKE_MAX_BODY_BYTES",
            DEFAULT_MAX_BODY_BYTES as i64,
            &mut problems,
        ) as usize;
        let signature_tolerance_secs =
            number("INTAKE_SIGNATURE_TOLERANCE_SECONDS", 300, &mut problems);
        if problems.is_empty() {
            Ok(IntakeSettings {
                secret_name,
                allowed_org_ids,
                max_body_bytes,
                signature_tolerance_secs,
            })
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_ids_are_validated_and_problems_named() {
        let env = |k: &str| match k {
            "INTAKE_SECRET_NAME" => Some("s".to_string()),
            "SALESFORCE_ORG_IDS" => Some("00DSB0000000001, 001SB0000000001,bad".to_string()),
            "INTAKE_MAX_BODY_BYTES" => Some("-1".to_string()),
            _ => None,
        };
        let problems = IntakeSettings::from_lookup(env).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("001SB0000000001 is not an Organization Id"));
        assert!(problems[1].starts_with("SALESFORCE_ORG_IDS: bad:"));
        assert!(problems[2].contains("INTAKE_MAX_BODY_BYTES"));
        let ok = IntakeSettings::from_lookup(|k| match k {
            "INTAKE_SECRET_NAME" => Some("s".to_string()),
            "SALESFORCE_ORG_IDS" => Some("00DSB0000000001".to_string()),
            _ => None,
        })
        .unwrap();
        assert_eq!(ok.allowed_org_ids[0].as_str().len(), 18);
        assert_eq!(ok.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
    }
}
