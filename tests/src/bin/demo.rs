//! `make demo`: runs dealbridge locally against the sandbox and shows what it sees.
//!
//! Starts the fake Salesforce org seeded with the bundled deals, connects the real Salesforce
//! client to it exactly as a deployment would (configuration plus a credentials secret), and loads
//! every deal's snapshot by Opportunity Id and by Order Id.

use anyhow::Context;
use dealbridge::config::AuthFlow;
use dealbridge::salesforce::SfId;
use dealbridge::snapshot::{DealRef, DealSnapshot, LoadOutcome};
use dealbridge_sandbox::harness::connect;
use dealbridge_sandbox::salesforce::{OrgSettings, SalesforceSandbox, routes, seeded_org};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let org = seeded_org().context("loading the seeded sandbox org")?;
    let opportunities: Vec<(String, String)> = {
        let mut list: Vec<(String, String)> = org
            .records("Opportunity")
            .iter()
            .filter_map(|r| {
                Some((
                    r.get("Name")?.as_str()?.to_string(),
                    r.get("Id")?.as_str()?.to_string(),
                ))
            })
            .collect();
        list.sort();
        list
    };
    let sandbox = SalesforceSandbox::start(OrgSettings::default(), org).await?;
    println!(
        "dealbridge demo: sandbox Salesforce org at {}\n",
        sandbox.url()
    );
    let connected = connect(&sandbox, AuthFlow::JwtBearer, &[])?;

    for (name, id) in &opportunities {
        let before = sandbox.observer().total();
        let deal = DealRef::Opportunity(SfId::parse(id)?);
        match connected.loader.load(&deal).await {
            Ok(LoadOutcome::Loaded(snapshot)) => print_snapshot(&snapshot),
            Ok(LoadOutcome::OrderPending { stage, .. }) => {
                println!(
                    "■ {name} ({id})\n  stage {stage}: no Order yet; dealbridge re-dispatches later\n"
                )
            }
            Err(e) => println!("■ {name} ({id})\n  error: {e}\n"),
        }
        println!(
            "  Salesforce calls for this load: {}\n",
            sandbox.observer().total() - before
        );
    }

    let orders: Vec<String> = sandbox.with_org(|org| {
        org.records("Order")
            .iter()
            .filter_map(|r| r.get("Id")?.as_str().map(str::to_string))
            .collect()
    });
    let mut loaded = 0;
    for id in &orders {
        if let Ok(LoadOutcome::Loaded(_)) = connected
            .loader
            .load(&DealRef::Order(SfId::parse(id)?))
            .await
        {
            loaded += 1;
        }
    }
    println!(
        "Loaded {loaded} of {} Orders by Order Id as well.",
        orders.len()
    );
    let log = sandbox.observer();
    println!(
        "Salesforce requests in total: {} ({} token, {} composite, {} other); org API usage {}",
        log.total(),
        log.count(routes::TOKEN),
        log.count(routes::COMPOSITE),
        log.total() - log.count(routes::TOKEN) - log.count(routes::COMPOSITE),
        connected
            .client
            .api_usage()
            .map(|u| format!("{}/{}", u.used, u.max))
            .unwrap_or_else(|| "unknown".into())
    );
    Ok(())
}

fn print_snapshot(s: &DealSnapshot) {
    let opp = s.opportunity.as_ref();
    println!(
        "■ {} ({})",
        opp.map(|o| o.name.as_str()).unwrap_or("(no opportunity)"),
        s.requested.id()
    );
    if let Some(o) = opp {
        println!(
            "  stage {} · won {} · close date {}",
            o.stage,
            o.is_won,
            o.close_date.map(|d| d.to_string()).unwrap_or_default()
        );
    }
    let a = &s.account;
    println!(
        "  account {} · {} {} {} · WHMCS client {} · Maxio customer {}",
        a.name,
        a.billing_address.city.as_deref().unwrap_or("-"),
        a.billing_address.state_code.as_deref().unwrap_or("-"),
        a.billing_address.country_code.as_deref().unwrap_or("-"),
        a.whmcs_client_id.as_deref().unwrap_or("-"),
        a.maxio_customer_id.as_deref().unwrap_or("-"),
    );
    let contact = s
        .quote
        .as_ref()
        .and_then(|q| q.primary_contact.as_ref())
        .or_else(|| {
            opp.and_then(|o| o.contact_roles.first())
                .map(|r| &r.contact)
        });
    match contact {
        Some(c) => println!(
            "  billing contact {} {} <{}>",
            c.first_name.as_deref().unwrap_or(""),
            c.last_name.as_deref().unwrap_or(""),
            c.email.as_deref().unwrap_or("no email")
        ),
        None => println!("  billing contact: none"),
    }
    for order in &s.orders {
        println!(
            "  order {} {} · status {} · activation {}",
            order.number.as_deref().unwrap_or("-"),
            order.id,
            order.status,
            order.activation_status.as_deref().unwrap_or("-")
        );
        for item in &order.items {
            let p = &item.product;
            let target = match (&p.maxio_component_handle, &p.whmcs_product_id) {
                (Some(h), _) => format!("Maxio component {h}"),
                (None, Some(pid)) => format!(
                    "WHMCS pid {pid} {}",
                    p.billing_cycle.as_deref().unwrap_or("")
                ),
                (None, None) => "unmapped".to_string(),
            };
            println!(
                "    {} × {} [{}] → {}",
                item.quantity.normalize(),
                p.name,
                p.code.as_deref().unwrap_or("-"),
                target
            );
            for schedule in &item.schedules {
                let tiers: Vec<String> = schedule
                    .rates
                    .iter()
                    .map(|r| {
                        format!(
                            "{}–{} @ {} {:?}",
                            r.lower_bound.normalize(),
                            r.upper_bound
                                .map(|u| u.normalize().to_string())
                                .unwrap_or_else(|| "∞".into()),
                            r.price.normalize(),
                            r.pricing_method
                        )
                    })
                    .collect();
                println!(
                    "      {:?} schedule: {}",
                    schedule.schedule_type,
                    tiers.join(", ")
                );
            }
        }
    }
}
