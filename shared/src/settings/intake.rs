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
        let allowed_org_ids = org_ids(env);
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

/// The secret that seals the queues' messages ([`crate::seal`]).
#[derive(Debug, Clone)]
pub struct SealSettings {
    pub secret_name: String,
}

impl SealSettings {
    /// Reads `ENVELOPE_SECRET_NAME`.
    pub fn read(env: &mut Env<'_>) -> Option<SealSettings> {
        let secret_name = env.required(
            "ENVELOPE_SECRET_NAME",
            "the secret with the keys that seal the queue messages",
        )?;
        Some(SealSettings { secret_name })
    }
}

/// `SALESFORCE_ORG_IDS`: the Organizations whose Outbound Messages and relayed Platform Events
/// are accepted (none when empty).
pub fn org_ids(env: &mut Env<'_>) -> Vec<SfId> {
    let mut allowed = Vec::new();
    for raw in env.or("SALESFORCE_ORG_IDS", "").split(',') {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        match SfId::parse(raw) {
            Ok(id) if id.key_prefix() == "00D" => allowed.push(id),
            Ok(_) => env.problem(format!(
                "SALESFORCE_ORG_IDS: {raw} is not an Organization Id (they start with 00D)"
            )),
            Err(e) => env.problem(format!("SALESFORCE_ORG_IDS: {raw}: {e}")),
        }
    }
    allowed
}

/// Where relayed Platform Events may come from.
#[derive(Debug, Clone, Default)]
pub struct EventSourceSettings {
    /// The Organizations an event's partner event source may name.
    pub allowed_org_ids: Vec<SfId>,
    /// The partner event source names accepted (`aws.partner/salesforce.com/<org>/<channel>`);
    /// empty: any channel of an allowed Organization.
    pub sources: Vec<String>,
}

/// Why an event's source is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceRefused {
    #[error(
        "the event's source {0:?} is not a Salesforce partner event source (aws.partner/salesforce.com/<orgId>/<channelId>)"
    )]
    NotSalesforce(String),
    #[error(
        "the event comes from Organization {0}, which SALESFORCE_ORG_IDS does not list: add it there if its events are to be taken"
    )]
    OrganizationNotAllowed(String),
    #[error(
        "the event comes from the event source {0:?}, which PLATFORM_EVENT_SOURCES does not list"
    )]
    SourceNotAllowed(String),
}

impl EventSourceSettings {
    /// Reads `SALESFORCE_ORG_IDS` and `PLATFORM_EVENT_SOURCES` (comma-separated).
    pub fn read(env: &mut Env<'_>) -> Option<EventSourceSettings> {
        let allowed_org_ids = org_ids(env);
        let mut sources = Vec::new();
        for raw in env.or("PLATFORM_EVENT_SOURCES", "").split(',') {
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            match partner_source_org(raw) {
                Some(_) => sources.push(raw.to_string()),
                None => env.problem(format!(
                    "PLATFORM_EVENT_SOURCES: {raw} is not a Salesforce partner event source (aws.partner/salesforce.com/<orgId>/<channelId>)"
                )),
            }
        }
        Some(EventSourceSettings {
            allowed_org_ids,
            sources,
        })
    }

    /// Whether an event with `source` is taken: a Salesforce partner event source of an allowed
    /// Organization, and one of [`Self::sources`] when any are configured.
    pub fn check(&self, source: &str) -> Result<(), SourceRefused> {
        let shown: String = source.chars().take(120).collect::<String>();
        let shown = shown.escape_debug().to_string();
        let org = partner_source_org(source)
            .ok_or_else(|| SourceRefused::NotSalesforce(shown.clone()))?;
        if !self.allowed_org_ids.iter().any(|a| a.same_record(&org)) {
            return Err(SourceRefused::OrganizationNotAllowed(org.to_string()));
        }
        if !self.sources.is_empty() && !self.sources.iter().any(|s| s == source) {
            return Err(SourceRefused::SourceNotAllowed(shown));
        }
        Ok(())
    }
}

/// The Organization of a partner event source name `aws.partner/salesforce.com/<org>/<channel>`.
fn partner_source_org(source: &str) -> Option<SfId> {
    let rest = source.strip_prefix("aws.partner/salesforce.com/")?;
    let (org, channel) = rest.split_once('/')?;
    let org = SfId::parse(org).ok().filter(|o| o.key_prefix() == "00D")?;
    let channel_ok = !channel.is_empty()
        && channel.len() <= 64
        && channel.chars().all(|c| c.is_ascii_alphanumeric());
    channel_ok.then_some(org)
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

    #[test]
    fn only_salesforce_sources_of_allowed_organizations_are_taken() {
        let mut env = Env::new(|k| match k {
            "SALESFORCE_ORG_IDS" => Some("00DSB0000000001".to_string()),
            _ => None,
        });
        let any_channel = EventSourceSettings::read(&mut env).unwrap();
        assert!(env.problems().is_empty());
        let ours = "aws.partner/salesforce.com/00DSB00000000012AA/0YLSB0000000001AAA";
        assert_eq!(any_channel.check(ours), Ok(()));
        assert!(matches!(
            any_channel.check("aws.partner/salesforce.com/00DSB0000000002/0YLSB0000000001AAA"),
            Err(SourceRefused::OrganizationNotAllowed(_))
        ));
        for bad in [
            "evil.example",
            "aws.partner/salesforce.com/00DSB0000000001",
            "aws.partner/salesforce.com/001SB0000000001/0YL1",
            "aws.partner/salesforce.com/00DSB0000000001/0YL\n",
        ] {
            assert!(
                matches!(any_channel.check(bad), Err(SourceRefused::NotSalesforce(_))),
                "{bad}"
            );
        }
        let mut env = Env::new(|k| match k {
            "SALESFORCE_ORG_IDS" => Some("00DSB0000000001".to_string()),
            "PLATFORM_EVENT_SOURCES" => Some(format!("{ours}, bad")),
            _ => None,
        });
        let one = EventSourceSettings::read(&mut env).unwrap();
        assert_eq!(env.problems().len(), 1, "{:?}", env.problems());
        assert_eq!(one.check(ours), Ok(()));
        assert!(matches!(
            one.check("aws.partner/salesforce.com/00DSB0000000001/0YLSB0000000009AAA"),
            Err(SourceRefused::SourceNotAllowed(_))
        ));
        assert!(
            EventSourceSettings::default().check(ours).is_err(),
            "no Organization: nothing taken"
        );
    }
}
