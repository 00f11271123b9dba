//! The Maxio chain's steps against in-memory stand-ins of Maxio AB and Salesforce (the ports):
//! what is looked up, what is created, what goes on to the next queue, and what is written back.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::json;

use super::*;
use crate::clock::ManualClock;
use crate::ledger::{DEFAULT_RETENTION, InMemoryLedger};
use crate::maxio::ab::{
    Allocation, CurrencyPrice, Customer, NewCustomer, Product, Site, Subscription,
    SubscriptionComponent,
};
use crate::ports::SalesforceWrites;
use crate::queue::{InMemoryQueue, QueueName};
use crate::retry::RetryPolicy;
use crate::salesforce::{RecordUpdate, SalesforceError, SaveResult};
use crate::snapshot::DealRef;

/// An AB site in memory: subscriptions by reference, their components, and what was asked.
#[derive(Default)]
struct MemoryAb {
    subscriptions: Mutex<BTreeMap<String, Subscription>>,
    components: Mutex<BTreeMap<i64, Vec<SubscriptionComponent>>>,
    /// The first create creates the subscription but answers 409, as AB answers a repeated
    /// `uniqueness_token` (documented: reference/maxio.md, Idempotency): the case of an earlier attempt that
    /// created it and lost the answer; the subscription is there for the next lookup.
    duplicate_first_create: bool,
    /// Every lookup fails with a 503.
    down: bool,
    calls: Mutex<Vec<String>>,
}

/// What the stand-in answers for what it does not keep.
fn not_kept() -> MaxioError {
    MaxioError::Decode("the in-memory AB stand-in keeps subscriptions only".into())
}

impl MemoryAb {
    fn call(&self, what: &str) -> Result<(), MaxioError> {
        self.calls.lock().unwrap().push(what.to_string());
        if self.down {
            return Err(MaxioError::Server {
                status: 503,
                message: "down".into(),
            });
        }
        Ok(())
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl MaxioAb for MemoryAb {
    // Customers, components and price points are not kept: the subscription step never asks
    // for them, and a step that did would fail these tests with this error.
    async fn lookup_customer(&self, _: &str) -> Result<Option<Customer>, MaxioError> {
        Err(not_kept())
    }
    async fn create_customer(&self, _: &NewCustomer, _: &str) -> Result<Customer, MaxioError> {
        Err(not_kept())
    }
    async fn component(&self, _: &str) -> Result<Component, MaxioError> {
        Err(not_kept())
    }
    async fn price_point_by_handle(
        &self,
        _: i64,
        _: &str,
    ) -> Result<Option<PricePoint>, MaxioError> {
        Err(not_kept())
    }
    async fn list_price_points(&self, _: i64) -> Result<Vec<PricePoint>, MaxioError> {
        Err(not_kept())
    }
    async fn create_price_point(
        &self,
        _: i64,
        _: &PricePointSpec,
        _: &str,
    ) -> Result<PricePoint, MaxioError> {
        Err(not_kept())
    }
    async fn lookup_subscription(
        &self,
        reference: &str,
    ) -> Result<Option<Subscription>, MaxioError> {
        self.call("lookup_subscription")?;
        Ok(self.subscriptions.lock().unwrap().get(reference).cloned())
    }
    async fn create_subscription(
        &self,
        s: &NewSubscription,
        _token: &str,
    ) -> Result<Subscription, MaxioError> {
        self.call("create_subscription")?;
        let created = Subscription {
            id: 900,
            state: Some("active".into()),
            reference: Some(s.reference.clone()),
            customer: Some(Customer {
                id: s.customer_id,
                reference: None,
                email: None,
                organization: None,
            }),
            currency: s.currency.clone(),
            next_assessment_at: None,
        };
        // AB keeps the requested price points.
        let components = s
            .components
            .iter()
            .map(|c| {
                component(
                    c.component_id.as_i64().unwrap_or_default(),
                    c.allocated_quantity.as_deref().and_then(|q| q.parse().ok()),
                    c.price_point_id,
                )
            })
            .collect();
        self.components.lock().unwrap().insert(900, components);
        self.subscriptions
            .lock()
            .unwrap()
            .insert(s.reference.clone(), created.clone());
        if self.duplicate_first_create
            && self
                .calls()
                .iter()
                .filter(|c| *c == "create_subscription")
                .count()
                == 1
        {
            return Err(MaxioError::DuplicateSubmission);
        }
        Ok(created)
    }
    async fn subscription_components(
        &self,
        id: i64,
    ) -> Result<Vec<SubscriptionComponent>, MaxioError> {
        self.call("subscription_components")?;
        Ok(self
            .components
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .unwrap_or_default())
    }
    async fn site(&self) -> Result<Site, MaxioError> {
        Ok(Site {
            subdomain: None,
            currency: "USD".into(),
            non_primary_currencies: vec![],
        })
    }
    async fn product(&self, _: &str) -> Result<Option<Product>, MaxioError> {
        Err(not_kept())
    }
    async fn price_point(&self, _: i64, _: i64) -> Result<Option<PricePoint>, MaxioError> {
        Err(not_kept())
    }
    async fn add_currency_prices(
        &self,
        _: i64,
        _: &[NewCurrencyPrice],
    ) -> Result<Vec<CurrencyPrice>, MaxioError> {
        Err(not_kept())
    }
    async fn change_price_points(
        &self,
        subscription_id: i64,
        changes: &[(i64, i64)],
    ) -> Result<(), MaxioError> {
        self.call("change_price_points")?;
        let mut all = self.components.lock().unwrap();
        let components = all.entry(subscription_id).or_default();
        for (component_id, to) in changes {
            match components
                .iter_mut()
                .find(|c| c.component_id == *component_id)
            {
                Some(c) => c.price_point_id = Some(*to),
                None => components.push(component(*component_id, None, Some(*to))),
            }
        }
        Ok(())
    }
    async fn allocate(
        &self,
        subscription_id: i64,
        component_id: i64,
        allocation: &NewAllocation,
    ) -> Result<Allocation, MaxioError> {
        self.call(&format!(
            "allocate {component_id}={}@{:?}",
            allocation.quantity, allocation.price_point_id
        ))?;
        let quantity: Decimal = allocation.quantity.parse().unwrap();
        let mut all = self.components.lock().unwrap();
        let components = all.entry(subscription_id).or_default();
        match components
            .iter_mut()
            .find(|c| c.component_id == component_id)
        {
            Some(c) => {
                c.allocated_quantity = json!(quantity.to_string());
                if allocation.price_point_id.is_some() {
                    c.price_point_id = allocation.price_point_id;
                }
            }
            None => components.push(component(
                component_id,
                Some(quantity),
                allocation.price_point_id,
            )),
        }
        Ok(Allocation {
            allocation_id: Some(5000 + component_id),
            component_id: Some(component_id),
            quantity: json!(allocation.quantity),
            price_point_id: allocation.price_point_id,
        })
    }
}

fn component(
    id: i64,
    quantity: Option<Decimal>,
    price_point: Option<i64>,
) -> SubscriptionComponent {
    SubscriptionComponent {
        component_id: id,
        kind: Some("quantity_based_component".into()),
        allocated_quantity: quantity.map_or(serde_json::Value::Null, |q| json!(q.to_string())),
        enabled: None,
        currency: None,
        price_point_id: price_point,
        price_point_handle: None,
    }
}

/// Salesforce in memory: every Collections update, all accepted.
#[derive(Default)]
struct MemorySalesforce {
    updates: Mutex<Vec<RecordUpdate>>,
}

#[async_trait]
impl SalesforceWrites for MemorySalesforce {
    async fn update_records(
        &self,
        records: &[RecordUpdate],
        _all_or_none: bool,
    ) -> Result<Vec<SaveResult>, SalesforceError> {
        self.updates.lock().unwrap().extend(records.iter().cloned());
        Ok(records
            .iter()
            .map(|r| SaveResult {
                id: Some(r.id.to_string()),
                success: true,
                errors: Vec::new(),
            })
            .collect())
    }
}

const OPPORTUNITY: &str = "006A000010khO8J";
const ACCOUNT: &str = "001A000010khO8J";

struct Chain {
    deps: MaxioDeps,
    ab: Arc<MemoryAb>,
    salesforce: Arc<MemorySalesforce>,
    queue: InMemoryQueue,
}

fn chain(ab: MemoryAb, core_link: bool) -> Chain {
    let ab = Arc::new(ab);
    let salesforce = Arc::new(MemorySalesforce::default());
    let queue = InMemoryQueue::new(Duration::from_secs(60), 10);
    let clock = Arc::new(ManualClock::new(
        Utc.timestamp_opt(1_795_176_000, 0).single().unwrap(),
    ));
    let mapping = Arc::new(Mapping::default());
    let deps = MaxioDeps {
        sites: Arc::new(crate::maxio::sites::Sites::single(ab.clone())),
        queue: Arc::new(queue.clone()),
        writeback: Arc::new(WriteBack::new(
            salesforce.clone(),
            mapping.clone(),
            clock.clone(),
            RetryPolicy::immediate(1),
        )),
        mapping,
        settings: AbSettings::default(),
        max_receives: 10,
        seal: None,
        ledger: Arc::new(InMemoryLedger::new(DEFAULT_RETENTION)),
        clock,
        core_link,
    };
    Chain {
        deps,
        ab,
        salesforce,
        queue,
    }
}

fn plan() -> AbDealPlan {
    serde_json::from_value(json!({
        "opportunityId": OPPORTUNITY,
        "accountId": ACCOUNT,
        "customer": {
            "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com",
            "organization": "Analytical", "reference": SfId::parse(ACCOUNT).unwrap().to_string()
        },
        "items": [],
        "productHandle": "monthly-usage",
        "paymentCollectionMethod": "remittance",
        "subscriptionReference": SfId::parse(OPPORTUNITY).unwrap().to_string(),
    }))
    .unwrap()
}

fn seats(price_point_id: Option<i64>) -> ResolvedComponent {
    ResolvedComponent {
        order_item_id: SfId::parse("802A000010khO8J").unwrap(),
        product_name: "Seats".into(),
        component_id: 11,
        component_handle: "seats".into(),
        kind: Some("quantity_based_component".into()),
        quantity: Decimal::from(25),
        price_point_id,
        default_price_point_id: Some(1),
    }
}

fn subscription_step(components: Vec<ResolvedComponent>) -> Envelope {
    let deal = DealRef::Opportunity(SfId::parse(OPPORTUNITY).unwrap());
    let account = SfId::parse(ACCOUNT).unwrap();
    Envelope::new(
        "c-1",
        &deal,
        &account,
        None,
        Step::MaxioSubscription {
            plan: Box::new(plan()),
            customer_id: 7,
            components,
        },
    )
}

fn delivery(n: u32) -> Delivery {
    Delivery {
        queue: QueueName::MaxioSubscription,
        message_id: "m-1".into(),
        receive_count: n,
        deadline: None,
    }
}

fn opportunity_fields(salesforce: &MemorySalesforce) -> serde_json::Map<String, serde_json::Value> {
    let updates = salesforce.updates.lock().unwrap();
    let opp = updates
        .iter()
        .find(|u| u.sobject == "Opportunity")
        .expect("the Opportunity was written");
    opp.fields.clone()
}

#[tokio::test]
async fn a_new_subscription_is_created_checked_and_handed_to_the_core_link() {
    let c = chain(MemoryAb::default(), true);
    let handled = c
        .deps
        .handle(subscription_step(vec![seats(Some(42))]), &delivery(1))
        .await;
    assert_eq!(handled, Handled::Done);
    assert_eq!(
        c.ab.calls(),
        [
            "lookup_subscription",
            "create_subscription",
            "subscription_components"
        ]
    );
    let next = c.queue.sent(QueueName::MaxioCoreLink);
    assert_eq!(next.len(), 1);
    let Step::MaxioCoreLink { link } = Envelope::parse(&next[0].body).unwrap().step else {
        panic!("not a link step");
    };
    assert_eq!((link.customer_id, link.subscription_id), (7, 900));
    assert!(
        c.salesforce.updates.lock().unwrap().is_empty(),
        "with the Core link on, the link step writes the outcome"
    );
}

#[tokio::test]
async fn a_taken_reference_leads_back_to_a_lookup_and_nothing_is_created_twice() {
    let c = chain(
        MemoryAb {
            duplicate_first_create: true,
            ..MemoryAb::default()
        },
        false,
    );
    let handled = c
        .deps
        .handle(subscription_step(vec![seats(Some(42))]), &delivery(1))
        .await;
    assert_eq!(handled, Handled::Done);
    let creates =
        c.ab.calls()
            .iter()
            .filter(|x| *x == "create_subscription")
            .count();
    assert_eq!(creates, 1);
    let fields = opportunity_fields(&c.salesforce);
    assert_eq!(fields["Maxio_Sync_Status__c"], "Synced");
    assert_eq!(fields["Maxio_Subscription_Id__c"], "900");
}

fn existing(c: &Chain, quantity: i64, price_point: i64) {
    c.ab.subscriptions.lock().unwrap().insert(
        SfId::parse(OPPORTUNITY).unwrap().to_string(),
        Subscription {
            id: 900,
            state: Some("active".into()),
            reference: None,
            customer: None,
            currency: None,
            next_assessment_at: None,
        },
    );
    c.ab.components.lock().unwrap().insert(
        900,
        vec![component(
            11,
            Some(Decimal::from(quantity)),
            Some(price_point),
        )],
    );
}

#[tokio::test]
async fn a_subscription_on_another_price_point_is_moved_to_the_deals_and_then_synced() {
    let c = chain(MemoryAb::default(), false);
    existing(&c, 25, 1);
    let handled = c
        .deps
        .handle(subscription_step(vec![seats(Some(42))]), &delivery(1))
        .await;
    assert_eq!(handled, Handled::Done);
    assert_eq!(
        c.ab.calls(),
        [
            "lookup_subscription",
            "subscription_components",
            "change_price_points",
            "subscription_components"
        ],
        "no second subscription, no allocation: the price point is moved"
    );
    let fields = opportunity_fields(&c.salesforce);
    assert_eq!(fields["Maxio_Sync_Status__c"], "Synced");
    assert_eq!(fields["Maxio_Site__c"], "default");
    let record = c
        .deps
        .ledger
        .get(OPPORTUNITY_18, "maxio-subscription")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        record.targets["maxio_repaired"],
        "Seats (seats) is on price point 1 instead of 42"
    );
}

const OPPORTUNITY_18: &str = "006A000010khO8JIAU";

#[tokio::test]
async fn a_wrong_quantity_is_allocated_once_and_a_rerun_finds_nothing_to_do() {
    let c = chain(MemoryAb::default(), false);
    existing(&c, 1, 1);
    let handled = c
        .deps
        .handle(subscription_step(vec![seats(Some(42))]), &delivery(1))
        .await;
    assert_eq!(handled, Handled::Done);
    let allocations: Vec<String> =
        c.ab.calls()
            .into_iter()
            .filter(|x| x.starts_with("allocate"))
            .collect();
    assert_eq!(allocations, ["allocate 11=25@Some(42)"]);
    let guard = c
        .deps
        .ledger
        .get(OPPORTUNITY_18, "maxio-allocation 900/11=25@42")
        .await
        .unwrap()
        .expect("the allocation is recorded in the ledger");
    assert_eq!(guard.status, StepStatus::Completed);
    assert_eq!(guard.targets["maxio_allocation_id"], "5011");
    let again = c
        .deps
        .handle(subscription_step(vec![seats(Some(42))]), &delivery(2))
        .await;
    assert_eq!(again, Handled::Done);
    let allocations =
        c.ab.calls()
            .iter()
            .filter(|x| x.starts_with("allocate"))
            .count();
    assert_eq!(allocations, 1, "a second delivery allocates nothing");
}

#[tokio::test]
async fn an_allocation_another_attempt_is_making_is_not_sent_twice() {
    let c = chain(MemoryAb::default(), false);
    existing(&c, 1, 42);
    let now = c.deps.clock.now();
    c.deps
        .ledger
        .begin(
            OPPORTUNITY_18,
            "maxio-allocation 900/11=25@42",
            now,
            now + chrono::TimeDelta::minutes(5),
        )
        .await
        .unwrap();
    let handled = c
        .deps
        .handle(subscription_step(vec![seats(Some(42))]), &delivery(1))
        .await;
    let Handled::Retry(reason) = handled else {
        panic!("{handled:?}");
    };
    assert_eq!(reason.code, ErrorCode::LedgerBusy);
    assert!(!c.ab.calls().iter().any(|x| x.starts_with("allocate")));
}

#[tokio::test]
async fn a_passing_failure_is_retried_and_on_the_last_delivery_said_on_the_opportunity() {
    let c = chain(
        MemoryAb {
            down: true,
            ..MemoryAb::default()
        },
        false,
    );
    let first = c
        .deps
        .handle(subscription_step(vec![seats(None)]), &delivery(1))
        .await;
    let Handled::Retry(reason) = first else {
        panic!("{first:?}");
    };
    assert_eq!(reason.code, ErrorCode::MaxioUnavailable);
    assert!(c.salesforce.updates.lock().unwrap().is_empty());
    let last = c
        .deps
        .handle(subscription_step(vec![seats(None)]), &delivery(10))
        .await;
    let Handled::Conflict(failure) = last else {
        panic!("{last:?}");
    };
    assert_eq!(failure.code, ErrorCode::MaxioGaveUp);
    let fields = opportunity_fields(&c.salesforce);
    assert_eq!(fields["Maxio_Sync_Status__c"], "Failed");
    assert!(
        fields["Maxio_Sync_Error__c"].as_str().unwrap().starts_with(
            "MAXIO_GAVE_UP: maxio-subscription failed 10 times; last error: MAXIO_UNAVAILABLE"
        ),
        "{fields:?}"
    );
}
