//! The intake's own configuration.

use super::Env;
use crate::salesforce::SfId;

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
    /// Reads `INTAKE_SECRET_NAME`, `SALESFORCE_ORG_IDS`, `INTAKE_MAX_BODY_BYTES` and
    /// `INTAKE_SIGNATURE_TOLERANCE_SECONDS`.
    pub fn read(env: &mut Env<'_>) -> Option<IntakeSettings> {
        let secret_name = env.required(
            "INTAKE_SECRET_NAME",
            "the secret with hmac_key, bearer_token, soap_token",
        );
        let mut allowed_org_ids = Vec::new();
        for raw in env.or("SALESFORCE_ORG_IDS", "").split(',') {
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            match SfId::parse(raw) {
                Ok(id) if id.key_prefix() == "00D" => allowed_org_ids.push(id),
                Ok(_) => env.problem(format!(
                    "SALESFORCE_ORG_IDS: {raw} is not an Organization Id (they start with 00D)"
                )),
                Err(e) => env.problem(format!("SALESFORCE_ORG_IDS: {raw}: {e}")),
            }
        }
        let max_body_bytes = env.whole(
            "INTAKE_MAX_BODY_BYTES",
            DEFAULT_MAX_BODY_BYTES,
            1,
            64 * 1024 * 1024,
        );
        let signature_tolerance_secs =
            env.whole("INTAKE_SIGNATURE_TOLERANCE_SECONDS", 300, 1, 86_400);
        Some(IntakeSettings {
            secret_name: secret_name?,
            allowed_org_ids,
            max_body_bytes,
            signature_tolerance_secs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(get: impl Fn(&str) -> Option<String>) -> Result<IntakeSettings, Vec<String>> {
        let mut env = Env::new(get);
        let s = IntakeSettings::read(&mut env);
        env.finish(s)
    }

    #[test]
    fn org_ids_are_validated_and_problems_named() {
        let env = |k: &str| match k {
            "INTAKE_SECRET_NAME" => Some("s".to_string()),
            "SALESFORCE_ORG_IDS" => Some("00DSB0000000001, 001SB0000000001,bad".to_string()),
            "INTAKE_MAX_BODY_BYTES" => Some("-1".to_string()),
            _ => None,
        };
        let problems = read(env).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("001SB0000000001 is not an Organization Id"));
        assert!(problems[1].starts_with("SALESFORCE_ORG_IDS: bad:"));
        assert!(problems[2].contains("INTAKE_MAX_BODY_BYTES"));
        let ok = read(|k| match k {
            "INTAKE_SECRET_NAME" => Some("s".to_string()),
            "SALESFORCE_ORG_IDS" => Some("00DSB0000000001".to_string()),
            _ => None,
        })
        .unwrap();
        assert_eq!(ok.allowed_org_ids[0].as_str().len(), 18);
        assert_eq!(ok.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
    }
}
