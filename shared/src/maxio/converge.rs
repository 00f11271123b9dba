//! How an AB subscription differs from the deal, and the changes that bring it to the deal: a
//! component price point change (`POST /subscriptions/{id}/price_points.json`) or an allocation
//! (`POST .../components/{id}/allocations.json`, the new total, with the price point). Pure: the
//! subscription step applies the changes, and the dry run shows them.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::ab::SubscriptionComponent;
use super::prepare::ResolvedComponent;

/// One change to one component of the subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "change",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Change {
    /// Move the component to `to` (its quantity is right).
    PricePoint { component_id: i64, to: i64 },
    /// Set the component's quantity (1 turns an on/off component on), on `price_point_id`.
    Allocate {
        component_id: i64,
        quantity: Decimal,
        price_point_id: Option<i64>,
    },
}

/// One way the subscription differs from the deal, said for people, and the change that
/// repairs it (`None`: dealbridge cannot repair it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    pub component_id: i64,
    pub what: String,
    pub change: Option<Change>,
}

fn shown(q: Option<Decimal>) -> String {
    q.map_or_else(|| "none".to_string(), |q| q.normalize().to_string())
}

fn pp(id: Option<i64>) -> String {
    id.map_or_else(|| "none".to_string(), |i| i.to_string())
}

/// Every way `actual` (the subscription's components) differs from `wanted`, one entry per
/// component, in the order of `wanted`.
pub fn differences(
    wanted: &[ResolvedComponent],
    actual: &[SubscriptionComponent],
) -> Vec<Difference> {
    let mut out = Vec::new();
    for w in wanted {
        let got = actual.iter().find(|c| c.component_id == w.component_id);
        if w.quantity.is_zero() {
            // Removed from the Contract: off, at quantity 0, on whatever price point it has.
            let on = got.is_some_and(|c| {
                c.enabled == Some(true) || c.quantity().is_some_and(|q| !q.is_zero())
            });
            if let (true, Some(c)) = (on, got) {
                out.push(Difference {
                    component_id: w.component_id,
                    what: format!(
                        "{} ({}) has quantity {} instead of 0",
                        w.product_name,
                        w.component_handle,
                        shown(
                            c.quantity()
                                .or(c.enabled.map(|e| Decimal::from(u8::from(e))))
                        )
                    ),
                    change: Some(Change::Allocate {
                        component_id: w.component_id,
                        quantity: Decimal::ZERO,
                        price_point_id: None,
                    }),
                });
            }
            continue;
        }
        let expected = w.price_point_id.or(w.default_price_point_id);
        let got_pp = got.and_then(|c| c.price_point_id);
        let wrong_pp = expected.is_some_and(|e| got_pp != Some(e));
        let name = format!("{} ({})", w.product_name, w.component_handle);
        let pp_text = |what: &str| {
            format!(
                "{what} price point {} instead of {}{}",
                pp(got_pp),
                pp(expected),
                if w.price_point_id.is_some() {
                    ""
                } else {
                    " (its default)"
                }
            )
        };
        let quantity_based = w.kind.as_deref() == Some("quantity_based_component");
        let on_off = w.kind.as_deref() == Some("on_off_component");
        let (quantity_wrong, quantity_text) = if quantity_based {
            let q = got.and_then(SubscriptionComponent::quantity);
            let wrong = q.unwrap_or(Decimal::ZERO) != w.quantity;
            (
                wrong,
                format!(
                    "has quantity {} instead of {}",
                    shown(q.or(got.map(|_| Decimal::ZERO))),
                    w.quantity.normalize()
                ),
            )
        } else if on_off {
            let on = got.and_then(|c| c.enabled) == Some(true);
            (!on, "is off instead of on".to_string())
        } else {
            (false, String::new())
        };
        let difference = match (quantity_wrong, wrong_pp) {
            (false, false) if got.is_some() || expected.is_none() => None,
            (false, false) => Some((
                format!("{name} is not on the subscription"),
                expected.map(|to| Change::PricePoint {
                    component_id: w.component_id,
                    to,
                }),
            )),
            (true, wrong_pp) => Some((
                if wrong_pp {
                    format!("{name} {quantity_text}, on {}", pp_text("").trim_start())
                } else {
                    format!("{name} {quantity_text}")
                },
                Some(Change::Allocate {
                    component_id: w.component_id,
                    quantity: if on_off { Decimal::ONE } else { w.quantity },
                    price_point_id: expected,
                }),
            )),
            (false, true) => Some((
                format!("{name} is on {}", pp_text("").trim_start()),
                expected.map(|to| Change::PricePoint {
                    component_id: w.component_id,
                    to,
                }),
            )),
        };
        if let Some((what, change)) = difference {
            out.push(Difference {
                component_id: w.component_id,
                what,
                change,
            });
        }
    }
    out
}

/// `a; b; c`, for a message.
pub fn describe(differences: &[Difference]) -> String {
    differences
        .iter()
        .map(|d| d.what.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesforce::SfId;
    use serde_json::json;

    fn wanted(kind: &str, quantity: i64, price_point: Option<i64>) -> ResolvedComponent {
        ResolvedComponent {
            order_item_id: SfId::parse("802A000010khO8J").unwrap(),
            product_name: "Seats".into(),
            component_id: 7,
            component_handle: "seats".into(),
            kind: Some(kind.into()),
            quantity: Decimal::from(quantity),
            price_point_id: price_point,
            default_price_point_id: Some(70),
        }
    }

    fn actual(value: serde_json::Value) -> Vec<SubscriptionComponent> {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_matching_subscription_has_no_difference() {
        let got = actual(
            json!([{"component_id": 7, "kind": "quantity_based_component",
            "allocated_quantity": 40, "price_point_id": 71}]),
        );
        assert!(differences(&[wanted("quantity_based_component", 40, Some(71))], &got).is_empty());
        let got = actual(
            json!([{"component_id": 7, "allocated_quantity": "40.0", "price_point_id": 70}]),
        );
        assert!(
            differences(&[wanted("quantity_based_component", 40, None)], &got).is_empty(),
            "a string quantity and the default price point match"
        );
    }

    #[test]
    fn a_wrong_quantity_is_allocated_with_the_price_point_and_said_once() {
        let got =
            actual(json!([{"component_id": 7, "allocated_quantity": 1, "price_point_id": 70}]));
        let d = differences(&[wanted("quantity_based_component", 40, Some(71))], &got);
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[0].what,
            "Seats (seats) has quantity 1 instead of 40, on price point 70 instead of 71"
        );
        assert_eq!(
            d[0].change,
            Some(Change::Allocate {
                component_id: 7,
                quantity: Decimal::from(40),
                price_point_id: Some(71)
            })
        );
    }

    #[test]
    fn a_wrong_price_point_alone_is_a_price_point_change() {
        let got =
            actual(json!([{"component_id": 7, "allocated_quantity": 40, "price_point_id": 70}]));
        let d = differences(&[wanted("quantity_based_component", 40, Some(71))], &got);
        assert_eq!(
            d[0].what,
            "Seats (seats) is on price point 70 instead of 71"
        );
        assert_eq!(
            d[0].change,
            Some(Change::PricePoint {
                component_id: 7,
                to: 71
            })
        );
    }

    #[test]
    fn a_missing_component_and_an_off_switch_are_allocated() {
        let d = differences(&[wanted("quantity_based_component", 3, None)], &[]);
        assert_eq!(
            d[0].what,
            "Seats (seats) has quantity none instead of 3, on price point none instead of 70 (its default)"
        );
        let got = actual(json!([{"component_id": 7, "enabled": false, "price_point_id": 70}]));
        let d = differences(&[wanted("on_off_component", 1, None)], &got);
        assert_eq!(d[0].what, "Seats (seats) is off instead of on");
        assert!(matches!(
            d[0].change,
            Some(Change::Allocate { quantity, .. }) if quantity == Decimal::ONE
        ));
    }

    #[test]
    fn a_metered_component_is_compared_on_its_price_point_only() {
        let got = actual(json!([{"component_id": 7, "unit_balance": 0, "price_point_id": 71}]));
        assert!(differences(&[wanted("metered_component", 1, Some(71))], &got).is_empty());
        let d = differences(&[wanted("metered_component", 1, Some(72))], &got);
        assert!(matches!(
            d[0].change,
            Some(Change::PricePoint { to: 72, .. })
        ));
    }
}
