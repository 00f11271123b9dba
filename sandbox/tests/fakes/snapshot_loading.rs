//! Loading every seeded deal through the real Salesforce client against the sandbox org.

use std::str::FromStr;

use dealbridge::config::AuthFlow;
use dealbridge::salesforce::SfId;
use dealbridge::snapshot::{
    DealRef, DealSnapshot, LoadOutcome, PricingMethod, ScheduleType, SnapshotError,
};
use dealbridge_sandbox::harness::{Connected, connect};
use dealbridge_sandbox::salesforce::{OrgSettings, SalesforceSandbox, routes, seeded_org};
use rust_decimal::Decimal;

async fn sandbox() -> SalesforceSandbox {
    SalesforceSandbox::start(OrgSettings::default(), seeded_org().expect("seed loads"))
        .await
        .expect("sandbox starts")
}

fn id(sandbox: &SalesforceSandbox, reference: &str) -> SfId {
    let raw = sandbox
        .id_of(reference)
        .unwrap_or_else(|| panic!("no record {reference}"));
    SfId::parse(&raw).unwrap()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

async fn load(c: &Connected, deal: DealRef) -> DealSnapshot {
    match c.loader.load(&deal).await.expect("loads") {
        LoadOutcome::Loaded(s) => *s,
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

const MAXIO_DEALS: [&str; 6] = [
    "VolumeOpportunity",
    "GraduatedOpportunity",
    "FlatFeeOpportunity",
    "NoScheduleOpportunity",
    "NoEmailOpportunity",
    "UnmappedOpportunity",
];

#[tokio::test]
async fn each_deal_loads_in_one_salesforce_call_and_the_first_also_logs_in() {
    let sf = sandbox().await;
    let c = connect(&sf, AuthFlow::ClientCredentials, &[]).unwrap();
    for (n, reference) in MAXIO_DEALS
        .iter()
        .chain(["InternetOpportunity"].iter())
        .enumerate()
    {
        let before = sf.observer().requests().len();
        let s = load(&c, DealRef::Opportunity(id(&sf, reference))).await;
        assert_eq!(s.requested, DealRef::Opportunity(id(&sf, reference)));
        let made: Vec<String> = sf.observer().requests()[before..]
            .iter()
            .map(|r| r.route.clone())
            .collect();
        if n == 0 {
            assert_eq!(
                made,
                [routes::TOKEN, routes::COMPOSITE],
                "cold load of {reference}"
            );
        } else {
            assert_eq!(made, [routes::COMPOSITE], "warm load of {reference}");
        }
    }
    assert_eq!(
        sf.api_usage(),
        7,
        "one API call per deal; the token call is not an API call"
    );
}

#[tokio::test]
async fn every_order_loads_by_its_order_id_with_its_opportunity_and_account() {
    let sf = sandbox().await;
    let c = connect(&sf, AuthFlow::ClientCredentials, &[]).unwrap();
    let orders = [
        ("VolumeOrder", "VolumeOpportunity", "VolumeAccount"),
        ("GraduatedOrder", "GraduatedOpportunity", "GraduatedAccount"),
        ("FlatFeeOrder", "FlatFeeOpportunity", "FlatFeeAccount"),
        (
            "NoScheduleOrder",
            "NoScheduleOpportunity",
            "NoScheduleAccount",
        ),
        ("NoEmailOrder", "NoEmailOpportunity", "NoEmailAccount"),
        ("InternetOrder", "InternetOpportunity", "InternetAccount"),
        ("UnmappedOrder", "UnmappedOpportunity", "UnmappedAccount"),
    ];
    for (order, opp, account) in orders {
        let composite_before = sf.observer().count(routes::COMPOSITE);
        let s = load(&c, DealRef::Order(id(&sf, order))).await;
        assert_eq!(sf.observer().count(routes::COMPOSITE), composite_before + 1);
        assert_eq!(s.orders.len(), 1, "{order}");
        assert_eq!(s.orders[0].id, id(&sf, order));
        assert_eq!(
            s.opportunity.as_ref().map(|o| o.id.clone()),
            Some(id(&sf, opp))
        );
        assert_eq!(s.account.id, id(&sf, account));
        assert!(!s.orders[0].items.is_empty(), "{order} has items");
    }
    assert_eq!(sf.observer().count(routes::TOKEN), 1);
    assert_eq!(sf.observer().total(), 1 + orders.len());
}

#[tokio::test]
async fn the_volume_deal_carries_account_contact_products_and_range_tiers() {
    let sf = sandbox().await;
    let c = connect(&sf, AuthFlow::JwtBearer, &[]).unwrap();
    let s = load(&c, DealRef::Opportunity(id(&sf, "VolumeOpportunity"))).await;

    assert_eq!(s.account.name, "Larkspur Analytics, Inc.");
    let addr = &s.account.billing_address;
    assert_eq!(addr.city.as_deref(), Some("San Francisco"));
    assert_eq!(addr.state_code.as_deref(), Some("CA"));
    assert_eq!(addr.country_code.as_deref(), Some("US"));
    assert!(s.account.maxio_customer_id.is_none());

    let opp = s.opportunity.as_ref().unwrap();
    assert!(opp.is_won && opp.is_closed);
    assert_eq!(opp.stage, "Closed Won");
    assert!(opp.contact_roles.first().is_some_and(|r| r.is_primary));

    let quote = s.quote.as_ref().expect("primary quote");
    assert_eq!(quote.id, id(&sf, "VolumeQuote"));
    let contact = quote.primary_contact.as_ref().expect("quote contact");
    assert_eq!(
        contact.email.as_deref(),
        Some("priya.raman@larkspur-analytics.example.com")
    );
    assert_eq!(contact.first_name.as_deref(), Some("Priya"));

    assert_eq!(s.orders.len(), 1);
    let items = &s.orders[0].items;
    let handles: Vec<_> = items
        .iter()
        .map(|i| i.product.maxio_component_handle.as_deref())
        .collect();
    assert_eq!(handles, [Some("api-calls"), Some("platform-fee")]);

    let api = &items[0];
    assert_eq!(api.id, id(&sf, "VolumeApiCallsItem"));
    assert_eq!(api.schedules.len(), 1);
    let schedule = &api.schedules[0];
    assert_eq!(schedule.schedule_type, ScheduleType::Range);
    let tiers: Vec<(Decimal, Option<Decimal>, Decimal)> = schedule
        .rates
        .iter()
        .map(|r| (r.lower_bound, r.upper_bound, r.price))
        .collect();
    assert_eq!(
        tiers,
        vec![
            (dec("1"), Some(dec("100001")), dec("0.004")),
            (dec("100001"), Some(dec("1000001")), dec("0.0032")),
            (dec("1000001"), Some(dec("10000001")), dec("0.0025")),
            (dec("10000001"), None, dec("0.0018")),
        ]
    );
    assert!(
        schedule
            .rates
            .iter()
            .all(|r| r.pricing_method == PricingMethod::PerUnit)
    );
    assert!(
        items[1].schedules.is_empty(),
        "the platform fee has no schedule"
    );
    assert_eq!(items[1].unit_price, Some(dec("1500")));
}

#[tokio::test]
async fn graduated_flat_fee_unscheduled_and_unmapped_deals_keep_their_differences() {
    let sf = sandbox().await;
    let c = connect(&sf, AuthFlow::ClientCredentials, &[]).unwrap();

    let graduated = load(&c, DealRef::Opportunity(id(&sf, "GraduatedOpportunity"))).await;
    let g = &graduated.orders[0].items[0].schedules[0];
    assert_eq!(g.schedule_type, ScheduleType::Slab);
    assert_eq!(
        g.rates.iter().map(|r| r.price).collect::<Vec<_>>(),
        [dec("0.25"), dec("0.20"), dec("0.15")]
    );

    let flat = load(&c, DealRef::Opportunity(id(&sf, "FlatFeeOpportunity"))).await;
    let item = &flat.orders[0].items[0];
    assert_eq!(item.quantity, dec("25"));
    assert!(
        item.schedules[0]
            .rates
            .iter()
            .all(|r| r.pricing_method == PricingMethod::FlatFee)
    );
    assert_eq!(item.schedules[0].rates[0].price, dec("500"));

    let plain = load(&c, DealRef::Opportunity(id(&sf, "NoScheduleOpportunity"))).await;
    let item = &plain.orders[0].items[0];
    assert_eq!(
        item.product.maxio_component_handle.as_deref(),
        Some("premium-support")
    );
    assert!(item.schedules.is_empty());

    let unmapped = load(&c, DealRef::Opportunity(id(&sf, "UnmappedOpportunity"))).await;
    let workshop = unmapped
        .order_items()
        .map(|(_, i)| i)
        .find(|i| i.id == id(&sf, "UnmappedWorkshopItem"))
        .expect("workshop item");
    assert_eq!(workshop.product.name, "Custom Onboarding Workshop");
    assert!(workshop.product.maxio_component_handle.is_none());
    assert!(workshop.product.whmcs_product_id.is_none());
}

#[tokio::test]
async fn a_deal_whose_contacts_have_no_email_loads_with_the_email_missing() {
    let sf = sandbox().await;
    let c = connect(&sf, AuthFlow::ClientCredentials, &[]).unwrap();
    let s = load(&c, DealRef::Opportunity(id(&sf, "NoEmailOpportunity"))).await;
    let quote_contact = s
        .quote
        .as_ref()
        .and_then(|q| q.primary_contact.as_ref())
        .unwrap();
    assert_eq!(quote_contact.id, id(&sf, "NoEmailContact"));
    assert_eq!(quote_contact.email, None);
    let opp = s.opportunity.as_ref().unwrap();
    assert!(opp.contact_roles.iter().all(|r| r.contact.email.is_none()));
}

#[tokio::test]
async fn the_internet_order_carries_the_whmcs_mapping_fields_in_item_order() {
    let sf = sandbox().await;
    let gold_product = id(&sf, "InternetGoldAptProduct");
    sf.with_org(|org| {
        let mut f = serde_json::Map::new();
        f.insert(
            "Portal_ConfigOptions_JSON__c".into(),
            serde_json::Value::String(r#"{"12":"34"}"#.into()),
        );
        org.update(Some("Product2"), gold_product.as_str(), &f)
            .unwrap();
    });
    let c = connect(&sf, AuthFlow::ClientCredentials, &[]).unwrap();
    let s = load(&c, DealRef::Order(id(&sf, "InternetOrder"))).await;
    assert_eq!(s.account.whmcs_client_id.as_deref(), Some("1"));
    assert_eq!(
        s.account.billing_address.country_code.as_deref(),
        Some("JP")
    );
    let order = &s.orders[0];
    assert_eq!(order.status, "Pending Review");
    assert_eq!(order.activation_status.as_deref(), Some("Activating"));
    assert_eq!(order.whmcs_order_id, None);
    let lines: Vec<(Option<&str>, Option<&str>, Decimal)> = order
        .items
        .iter()
        .map(|i| {
            (
                i.product.whmcs_product_id.as_deref(),
                i.product.billing_cycle.as_deref(),
                i.quantity,
            )
        })
        .collect();
    assert_eq!(
        lines,
        vec![
            (Some("185"), Some("Monthly"), dec("1")),
            (Some("242"), Some("One-time"), dec("1")),
            (Some("246"), Some("Monthly"), dec("1")),
        ]
    );
    let gold = &order.items[0].product;
    assert_eq!(gold.code.as_deref(), Some("INTERNET-GOLD-APT-1G"));
    assert_eq!(gold.item_class.as_deref(), Some("Service"));
    assert_eq!(gold.config_options_json.as_deref(), Some(r#"{"12":"34"}"#));
    assert_eq!(s.opportunity.as_ref().unwrap().stage, "Post Processing");
}

#[tokio::test]
async fn seed_001s_product_field_name_is_one_mapping_change_away() {
    let sf = sandbox().await;
    let c = connect(
        &sf,
        AuthFlow::ClientCredentials,
        &[(
            "DEALBRIDGE_MAPPING",
            r#"{"product":{"whmcs_product_id":"WHMCS_Product_Id__c"}}"#,
        )],
    )
    .unwrap();
    let s = load(&c, DealRef::Order(id(&sf, "InternetOrder"))).await;
    let pids: Vec<_> = s.orders[0]
        .items
        .iter()
        .map(|i| i.product.whmcs_product_id.clone())
        .collect();
    assert_eq!(
        pids,
        [
            Some("185".to_string()),
            Some("242".into()),
            Some("246".into())
        ]
    );
}

#[tokio::test]
async fn an_opportunity_without_an_order_is_pending_and_costs_one_call() {
    let sf = sandbox().await;
    let c = connect(&sf, AuthFlow::ClientCredentials, &[]).unwrap();
    let outcome = c
        .loader
        .load(&DealRef::Opportunity(id(&sf, "PendingOpportunity")))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        LoadOutcome::OrderPending {
            opportunity_id: id(&sf, "PendingOpportunity"),
            account_id: id(&sf, "PendingAccount"),
            stage: "Closed Won".into(),
        }
    );
    assert_eq!(sf.observer().count(routes::COMPOSITE), 1);
}

#[tokio::test]
async fn standard_consumption_schedules_give_the_same_tiers_as_cpq() {
    let sf = sandbox().await;
    let cpq = connect(&sf, AuthFlow::ClientCredentials, &[]).unwrap();
    let standard = connect(
        &sf,
        AuthFlow::ClientCredentials,
        &[("DEALBRIDGE_MAPPING", r#"{"schedules":"standard"}"#)],
    )
    .unwrap();
    for reference in [
        "VolumeOpportunity",
        "GraduatedOpportunity",
        "FlatFeeOpportunity",
        "NoScheduleOpportunity",
    ] {
        let deal = DealRef::Opportunity(id(&sf, reference));
        let a = load(&cpq, deal.clone()).await;
        let b = load(&standard, deal).await;
        for (x, y) in a.order_items().zip(b.order_items()) {
            let tiers = |i: &dealbridge::snapshot::OrderItem| {
                i.schedules
                    .iter()
                    .map(|s| {
                        (
                            s.schedule_type.clone(),
                            s.rates
                                .iter()
                                .map(|r| {
                                    (
                                        r.lower_bound,
                                        r.upper_bound,
                                        r.price,
                                        r.pricing_method.clone(),
                                    )
                                })
                                .collect::<Vec<_>>(),
                        )
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(tiers(x.1), tiers(y.1), "{reference} {}", x.1.product.name);
        }
    }
}

#[tokio::test]
async fn small_pages_and_paged_child_results_load_the_same_snapshot() {
    let sf = sandbox().await;
    let c = connect(&sf, AuthFlow::ClientCredentials, &[]).unwrap();
    let deal = DealRef::Opportunity(id(&sf, "VolumeOpportunity"));
    let whole = load(&c, deal.clone()).await;
    sf.configure(|s| {
        s.batch_size = 1;
        s.child_batch_size = 1;
    });
    let paged = load(&c, deal).await;
    assert_eq!(paged, whole);
    // 4 rates in pages of 1, 2 order items in child pages of 1, 2 contact roles maybe: each extra
    // page is one queryMore call.
    let more = sf.observer().count(routes::QUERY_MORE);
    assert!(more >= 4, "expected queryMore calls, saw {more}");
    assert_eq!(sf.observer().count(routes::COMPOSITE), 2);
}

#[tokio::test]
async fn a_missing_opportunity_is_a_permanent_not_found() {
    let sf = sandbox().await;
    let c = connect(&sf, AuthFlow::ClientCredentials, &[]).unwrap();
    let ghost = SfId::parse("006SB0000000999").unwrap();
    let err = c
        .loader
        .load(&DealRef::Opportunity(ghost.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SnapshotError::NotFound { sobject: "Opportunity", id } if *id == ghost),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert_eq!(sf.observer().count(routes::COMPOSITE), 1);
}

#[tokio::test]
async fn an_order_outside_any_opportunity_loads_with_its_account() {
    let sf = sandbox().await;
    let account = id(&sf, "InternetAccount");
    let order = sf.with_org(|org| {
        let mut fields = serde_json::Map::new();
        fields.insert("AccountId".into(), account.to_string().into());
        fields.insert("Status".into(), "Pending Review".into());
        fields.insert("EffectiveDate".into(), "2026-11-20".into());
        org.insert("Order", &fields).expect("insert order")
    });
    let c = connect(&sf, AuthFlow::ClientCredentials, &[]).unwrap();
    let s = load(&c, DealRef::Order(order.clone())).await;
    assert!(s.opportunity.is_none());
    assert!(s.quote.is_none());
    assert_eq!(s.account.id, account);
    assert_eq!(s.orders[0].id, order);
    assert!(s.orders[0].items.is_empty());
}
