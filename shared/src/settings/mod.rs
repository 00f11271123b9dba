//! The one configuration of every function: [`Settings`], read once per container through one
//! reader ([`Env`]), every problem named at once, nothing falling back silently.
//!
//! A function reads the [`Section`]s it needs ([`Function::sections`]); the local stack reads them
//! all, with the sandbox's URLs, through the same code; the operator CLI reads the sections a
//! command needs. [`variables`] lists what a function reads, which a test checks against
//! `template.yaml`.

#[cfg(test)]
mod dashboard_tests;
mod env;
mod intake;
#[cfg(test)]
mod template_tests;

use std::collections::BTreeMap;

pub use env::{Env, Need};
pub use intake::{
    DEFAULT_MAX_BODY_BYTES, EventSourceSettings, IntakeSettings, SealSettings, SourceRefused,
};

use crate::config::{Config, ConfigError};
use crate::ledger::LedgerSettings;
use crate::maxio::settings::{AbConfig, CoreConfig};
use crate::queue::{QueueName, QueueUrls};
use crate::reconcile::ReconcileSettings;
use crate::whmcs::WhmcsClientSettings;

/// The deployed functions, by their template names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Function {
    Intake,
    PlatformEvents,
    Reconciler,
    Delayed,
    MaxioCustomer,
    MaxioPricePoints,
    MaxioSubscription,
    MaxioCoreLink,
    WhmcsProvision,
    BillingSync,
}

/// A part of the configuration, read as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Section {
    /// The queues' URLs (every function sends to a queue).
    Queues,
    /// `WORKER_MAX_RECEIVES`: the maxReceiveCount of the queue a worker consumes.
    Worker,
    /// The URL of the dead-letter queue of the queue a worker consumes (`<QUEUE>_DLQ_URL`),
    /// where it moves a message that can never be handled.
    DeadLetterQueue(QueueName),
    /// The DynamoDB ledger.
    Ledger,
    /// Maxio Advanced Billing (and whether the chain goes on to the Core link).
    MaxioAb,
    /// Maxio Core.
    MaxioCore,
    Whmcs,
    Intake,
    /// Where relayed Platform Events may come from.
    EventSources,
    /// The key that seals the queue messages (every function sends or receives them).
    Seal,
    Reconciler,
}

impl Section {
    pub const ALL: [Section; 16] = [
        Section::Queues,
        Section::Worker,
        Section::DeadLetterQueue(QueueName::MaxioCustomer),
        Section::DeadLetterQueue(QueueName::MaxioPricePoints),
        Section::DeadLetterQueue(QueueName::MaxioSubscription),
        Section::DeadLetterQueue(QueueName::MaxioCoreLink),
        Section::DeadLetterQueue(QueueName::WhmcsProvision),
        Section::DeadLetterQueue(QueueName::Delayed),
        Section::Ledger,
        Section::MaxioAb,
        Section::MaxioCore,
        Section::Whmcs,
        Section::Intake,
        Section::EventSources,
        Section::Seal,
        Section::Reconciler,
    ];
}

impl Function {
    pub const ALL: [Function; 10] = [
        Function::Intake,
        Function::PlatformEvents,
        Function::Reconciler,
        Function::Delayed,
        Function::MaxioCustomer,
        Function::MaxioPricePoints,
        Function::MaxioSubscription,
        Function::MaxioCoreLink,
        Function::WhmcsProvision,
        Function::BillingSync,
    ];

    /// The name of the function (its crate directory, binary and metrics dimension).
    pub fn name(self) -> &'static str {
        match self {
            Function::Intake => "intake",
            Function::PlatformEvents => "platform-events",
            Function::Reconciler => "reconciler",
            Function::Delayed => "delayed",
            Function::MaxioCustomer => "maxio-customer",
            Function::MaxioPricePoints => "maxio-price-points",
            Function::MaxioSubscription => "maxio-subscription",
            Function::MaxioCoreLink => "maxio-core-link",
            Function::WhmcsProvision => "whmcs-provision",
            Function::BillingSync => "billing-sync",
        }
    }

    /// The queue a worker function consumes.
    pub fn queue(self) -> Option<QueueName> {
        match self {
            Function::Intake | Function::PlatformEvents | Function::Reconciler => None,
            Function::Delayed => Some(QueueName::Delayed),
            Function::MaxioCustomer => Some(QueueName::MaxioCustomer),
            Function::MaxioPricePoints => Some(QueueName::MaxioPricePoints),
            Function::MaxioSubscription => Some(QueueName::MaxioSubscription),
            Function::MaxioCoreLink => Some(QueueName::MaxioCoreLink),
            Function::WhmcsProvision => Some(QueueName::WhmcsProvision),
            Function::BillingSync => Some(QueueName::BillingSync),
        }
    }

    /// What the function reads besides Salesforce and the mapping.
    pub fn sections(self) -> &'static [Section] {
        use Section::*;
        match self {
            Function::Intake => &[Queues, Seal, Intake],
            Function::PlatformEvents => &[Queues, Seal, EventSources],
            Function::Reconciler => &[Queues, Seal, Reconciler],
            Function::Delayed => &[
                Queues,
                Seal,
                Worker,
                DeadLetterQueue(QueueName::Delayed),
                Ledger,
            ],
            Function::MaxioCustomer => &[
                Queues,
                Seal,
                Worker,
                DeadLetterQueue(QueueName::MaxioCustomer),
                Ledger,
                MaxioAb,
            ],
            Function::MaxioPricePoints => &[
                Queues,
                Seal,
                Worker,
                DeadLetterQueue(QueueName::MaxioPricePoints),
                Ledger,
                MaxioAb,
            ],
            Function::MaxioSubscription => &[
                Queues,
                Seal,
                Worker,
                DeadLetterQueue(QueueName::MaxioSubscription),
                Ledger,
                MaxioAb,
            ],
            Function::MaxioCoreLink => &[
                Queues,
                Seal,
                Worker,
                DeadLetterQueue(QueueName::MaxioCoreLink),
                Ledger,
                MaxioCore,
            ],
            Function::WhmcsProvision => &[
                Queues,
                Seal,
                Worker,
                DeadLetterQueue(QueueName::WhmcsProvision),
                Ledger,
                Whmcs,
            ],
            Function::BillingSync => &[
                Queues,
                Seal,
                Worker,
                DeadLetterQueue(QueueName::BillingSync),
                Ledger,
                MaxioAb,
                Whmcs,
            ],
        }
    }
}

/// `Settings::max_receives` when `WORKER_MAX_RECEIVES` is not read: no delivery counts as the
/// last (the operator CLI never tells a handler it has a message's last delivery).
pub const NO_LAST_DELIVERY: u32 = u32::MAX;

/// Everything a function is configured with. A section not read is `None`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Salesforce, the secrets cache and the mapping document: every function reads them.
    pub config: Config,
    pub queues: Option<QueueUrls>,
    /// The dead-letter queue URL of each [`Section::DeadLetterQueue`] read (a queue function's
    /// own queue).
    pub dead_letters: Option<QueueUrls>,
    /// The consumed queue's maxReceiveCount, so a handler knows a message's last delivery.
    pub max_receives: u32,
    pub ledger: Option<LedgerSettings>,
    pub ab: Option<AbConfig>,
    pub core: Option<CoreConfig>,
    pub whmcs: Option<WhmcsClientSettings>,
    pub intake: Option<IntakeSettings>,
    pub event_sources: Option<EventSourceSettings>,
    pub seal: Option<SealSettings>,
    pub reconcile: Option<ReconcileSettings>,
}

impl Settings {
    /// `function`'s configuration from the process environment.
    pub fn from_env(function: Function) -> Result<Settings, ConfigError> {
        Settings::read(function.sections(), &mut Env::process())
    }

    /// `function`'s configuration through `get`.
    pub fn from_lookup(
        function: Function,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        Settings::read(function.sections(), &mut Env::new(get))
    }

    /// Salesforce and the mapping, and `sections`, every problem named at once.
    pub fn read(sections: &[Section], env: &mut Env<'_>) -> Result<Settings, ConfigError> {
        let has = |s: Section| sections.contains(&s);
        let config = Config::read(env);
        let queues = has(Section::Queues).then(|| QueueUrls::read(env)).flatten();
        let dead_letter_queues: Vec<QueueName> = sections
            .iter()
            .filter_map(|s| match s {
                Section::DeadLetterQueue(q) => Some(*q),
                _ => None,
            })
            .collect();
        let dead_letters = (!dead_letter_queues.is_empty())
            .then(|| QueueUrls::read_dead_letters(&dead_letter_queues, env))
            .flatten();
        let max_receives = if has(Section::Worker) {
            env.required(
                "WORKER_MAX_RECEIVES",
                "the maxReceiveCount of the function's queue",
            )
            .and_then(|raw| match raw.parse::<u32>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    env.problem(format!(
                        "WORKER_MAX_RECEIVES {raw:?} is not a whole number above 0 (the queue's maxReceiveCount)"
                    ));
                    None
                }
            })
            .unwrap_or(NO_LAST_DELIVERY)
        } else {
            NO_LAST_DELIVERY
        };
        let ledger = has(Section::Ledger)
            .then(|| LedgerSettings::read(env))
            .flatten();
        let ab = has(Section::MaxioAb).then(|| AbConfig::read(env)).flatten();
        let core = has(Section::MaxioCore)
            .then(|| CoreConfig::read(env))
            .flatten();
        let whmcs = has(Section::Whmcs)
            .then(|| WhmcsClientSettings::read(env))
            .flatten();
        let intake = has(Section::Intake)
            .then(|| IntakeSettings::read(env))
            .flatten();
        let event_sources = has(Section::EventSources)
            .then(|| EventSourceSettings::read(env))
            .flatten();
        let seal = has(Section::Seal)
            .then(|| SealSettings::read(env))
            .flatten();
        let reconcile = has(Section::Reconciler)
            .then(|| ReconcileSettings::read(env))
            .flatten();
        match config {
            Some(config) if env.problems().is_empty() => Ok(Settings {
                config,
                queues,
                dead_letters,
                max_receives,
                ledger,
                ab,
                core,
                whmcs,
                intake,
                event_sources,
                seal,
                reconcile,
            }),
            _ => Err(ConfigError {
                problems: env.problems().to_vec(),
            }),
        }
    }
}

/// Every variable `function` reads, and whether it must be set.
pub fn variables(function: Function) -> BTreeMap<String, Need> {
    let mut env = Env::new(|_| None);
    let _ = Settings::read(function.sections(), &mut env);
    env.asked()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_without_a_valid_max_receives_is_refused_by_name() {
        let problems = Settings::from_lookup(Function::Delayed, |k| match k {
            "WORKER_MAX_RECEIVES" => Some("ten".into()),
            _ => None,
        })
        .unwrap_err()
        .problems;
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("WORKER_MAX_RECEIVES \"ten\" is not a whole number")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.starts_with("LEDGER_TABLE_NAME")),
            "every problem is named at once: {problems:?}"
        );
    }

    #[test]
    fn a_queue_function_without_its_dead_letter_queue_url_is_refused_by_name() {
        let problems = Settings::from_lookup(Function::MaxioCustomer, |_| None)
            .unwrap_err()
            .problems;
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("MAXIO_CUSTOMER_DLQ_URL is not set")),
            "{problems:?}"
        );
        let problems = Settings::from_lookup(Function::Delayed, |k| {
            (k == "DELAYED_DLQ_URL").then(|| "sqs.us-east-1.amazonaws.com/1/dlq".to_string())
        })
        .unwrap_err()
        .problems;
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("DELAYED_DLQ_URL \"sqs.us-east-1")
                    && p.ends_with("is not a queue URL")),
            "{problems:?}"
        );
    }

    #[test]
    fn each_queue_function_reads_its_own_dead_letter_queue_only() {
        for f in Function::ALL {
            let read: Vec<String> = variables(f)
                .into_keys()
                .filter(|v| v.ends_with("_DLQ_URL"))
                .collect();
            let own: Vec<String> = f
                .queue()
                .map(|q| q.dead_letter_url_variable().to_string())
                .into_iter()
                .collect();
            assert_eq!(read, own, "{f:?}");
            if let Some(v) = own.first() {
                assert_eq!(variables(f).get(v), Some(&Need::Required), "{f:?}");
            }
        }
    }

    #[test]
    fn each_function_reads_only_its_sections() {
        let intake = variables(Function::Intake);
        assert_eq!(intake.get("INTAKE_SECRET_NAME"), Some(&Need::Required));
        assert!(!intake.contains_key("MAXIO_AB_BASE_URL"));
        assert!(!intake.contains_key("WORKER_MAX_RECEIVES"));
        let whmcs = variables(Function::WhmcsProvision);
        assert_eq!(whmcs.get("WHMCS_BASE_URL"), Some(&Need::Required));
        assert_eq!(whmcs.get("WORKER_MAX_RECEIVES"), Some(&Need::Required));
        assert_eq!(whmcs.get("LEDGER_TABLE_NAME"), Some(&Need::Required));
        assert!(!whmcs.contains_key("MAXIO_CORE_BASE_URL"));
        for f in Function::ALL {
            assert_eq!(
                variables(f).get("SALESFORCE_LOGIN_URL"),
                Some(&Need::Required),
                "{f:?}"
            );
        }
    }
}
