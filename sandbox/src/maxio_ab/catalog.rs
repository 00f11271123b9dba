//! The site's catalog: the components and products the seeded Salesforce deals map to, in one
//! product family, `dealbridge`.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use super::AbSettings;
use super::state::{Bracket, Component, PricePoint, PricePointType, Product, Store};

/// A component the site starts with. It gets one default price point with a single open bracket
/// starting at 1.
#[derive(Debug, Clone)]
pub struct ComponentSeed {
    pub handle: String,
    pub name: String,
    /// `metered_component`, `quantity_based_component` or `on_off_component`.
    pub kind: &'static str,
    pub unit_name: String,
    /// The default price point's pricing scheme (`per_unit`, `volume`, `tiered`, `stairstep`).
    pub default_scheme: &'static str,
    /// The default price point's unit price, as a decimal string.
    pub default_unit_price: &'static str,
}

/// A product the site starts with.
#[derive(Debug, Clone)]
pub struct ProductSeed {
    pub handle: String,
    pub name: String,
    pub price_in_cents: i64,
    pub interval: i32,
    /// `month` or `day`.
    pub interval_unit: &'static str,
}

fn component(
    handle: &str,
    name: &str,
    kind: &'static str,
    unit_name: &str,
    unit_price: &'static str,
) -> ComponentSeed {
    ComponentSeed {
        handle: handle.into(),
        name: name.into(),
        kind,
        unit_name: unit_name.into(),
        default_scheme: "per_unit",
        default_unit_price: unit_price,
    }
}

/// The components the seeded deals use.
pub fn default_components() -> Vec<ComponentSeed> {
    vec![
        component(
            "api-calls",
            "API Calls",
            "metered_component",
            "API call",
            "0.005",
        ),
        component("storage-gb", "Storage", "metered_component", "GB", "0.30"),
        component(
            "support-seats",
            "Support Seats",
            "quantity_based_component",
            "seat",
            "150",
        ),
        // On/off components have no meaningful unit; the fake names it like the UI does.
        component(
            "platform-fee",
            "Platform Fee",
            "on_off_component",
            "on/off",
            "1500",
        ),
        component(
            "premium-support",
            "Premium Support",
            "on_off_component",
            "on/off",
            "750",
        ),
    ]
}

/// The products the seeded deals use.
pub fn default_products() -> Vec<ProductSeed> {
    vec![
        ProductSeed {
            handle: "monthly-usage".into(),
            name: "Monthly Usage".into(),
            price_in_cents: 0,
            interval: 1,
            interval_unit: "month",
        },
        ProductSeed {
            handle: "annual-usage".into(),
            name: "Annual Usage".into(),
            price_in_cents: 0,
            interval: 12,
            interval_unit: "month",
        },
    ]
}

/// The handle of a component's default price point.
///
/// Choice: real default price points may have a null handle; the fake gives them
/// `<component handle>-default` so they can also be read with `handle:`.
pub fn default_price_point_handle(component_handle: &str) -> String {
    format!("{component_handle}-default")
}

/// The name real sites give the price point created with a component.
pub const DEFAULT_PRICE_POINT_NAME: &str = "Original";

pub(super) fn seed(store: &mut Store, settings: &AbSettings, now: DateTime<Utc>) {
    for seed in &settings.components {
        let id = store.ids.next("component");
        let price_point_id = store.ids.next("price_point");
        let price_id = store.ids.next("price");
        let unit_price = Decimal::from_str(seed.default_unit_price).unwrap_or(Decimal::ZERO);
        store.price_points.push(PricePoint {
            id: price_point_id,
            component_id: id,
            kind: PricePointType::Default,
            name: DEFAULT_PRICE_POINT_NAME.into(),
            handle: Some(default_price_point_handle(&seed.handle)),
            pricing_scheme: seed.default_scheme.into(),
            prices: vec![Bracket {
                id: price_id,
                starting_quantity: 1,
                ending_quantity: None,
                unit_price,
            }],
            subscription_id: None,
            tax_included: false,
            use_site_exchange_rate: true,
            interval: Value::Null,
            interval_unit: Value::Null,
            currency_prices: Vec::new(),
            created_at: now,
        });
        store.components.push(Component {
            id,
            handle: seed.handle.clone(),
            name: seed.name.clone(),
            kind: seed.kind,
            unit_name: seed.unit_name.clone(),
            default_price_point_id: price_point_id,
            created_at: now,
        });
    }
    for seed in &settings.products {
        let id = store.ids.next("product");
        // Product price points are not served; the id is only reported on the product.
        let price_point_id = store.ids.next("price_point");
        store.products.push(Product {
            id,
            handle: seed.handle.clone(),
            name: seed.name.clone(),
            price_in_cents: seed.price_in_cents,
            interval: seed.interval,
            interval_unit: seed.interval_unit,
            price_point_id,
            created_at: now,
        });
    }
}
