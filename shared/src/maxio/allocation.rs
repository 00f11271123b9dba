//! What an AB allocation sets, and the ledger step that guards it (an allocation is not
//! idempotent: each call is recorded and may charge).
//!
//! The step is named after the target, `maxio-allocation <subscription>/<component>=<quantity>@<price
//! point or default>`, so the name alone says what a dead attempt was sending.

use rust_decimal::Decimal;

use super::ab::model::SubscriptionComponent;

const PREFIX: &str = "maxio-allocation ";

/// One component of a subscription at a quantity (on a price point, or any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationTarget {
    pub subscription_id: i64,
    pub component_id: i64,
    pub quantity: Decimal,
    pub price_point_id: Option<i64>,
}

impl AllocationTarget {
    /// The ledger step guarding the allocation.
    pub fn step(&self) -> String {
        format!(
            "{PREFIX}{}/{}={}@{}",
            self.subscription_id,
            self.component_id,
            self.quantity.normalize(),
            self.price_point_id
                .map_or_else(|| "default".to_string(), |p| p.to_string())
        )
    }

    /// The target a ledger step of [`AllocationTarget::step`] names; `None` for another step.
    pub fn from_step(step: &str) -> Option<AllocationTarget> {
        let rest = step.strip_prefix(PREFIX)?;
        let (subscription, rest) = rest.split_once('/')?;
        let (component, rest) = rest.split_once('=')?;
        let (quantity, price_point) = rest.split_once('@')?;
        Some(AllocationTarget {
            subscription_id: subscription.parse().ok()?,
            component_id: component.parse().ok()?,
            quantity: quantity.parse().ok()?,
            price_point_id: match price_point {
                "default" => None,
                p => Some(p.parse().ok()?),
            },
        })
    }

    /// Whether the subscription's components already stand at the target (an on/off component
    /// enabled counts as quantity 1).
    pub fn reached(&self, components: &[SubscriptionComponent]) -> bool {
        components
            .iter()
            .find(|c| c.component_id == self.component_id)
            .is_some_and(|c| {
                (c.quantity() == Some(self.quantity)
                    || (c.enabled == Some(true) && self.quantity == Decimal::ONE))
                    && self
                        .price_point_id
                        .is_none_or(|p| c.price_point_id == Some(p))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(price_point_id: Option<i64>) -> AllocationTarget {
        AllocationTarget {
            subscription_id: 900,
            component_id: 11,
            quantity: Decimal::new(250, 1),
            price_point_id,
        }
    }

    #[test]
    fn a_step_name_reads_back_as_its_target() {
        for t in [target(Some(42)), target(None)] {
            assert_eq!(AllocationTarget::from_step(&t.step()), Some(t.clone()));
        }
        assert_eq!(target(Some(42)).step(), "maxio-allocation 900/11=25@42");
        assert_eq!(target(None).step(), "maxio-allocation 900/11=25@default");
        for other in [
            "maxio-subscription",
            "maxio-allocation 900/x=1@2",
            "maxio-allocation 1/2=3",
        ] {
            assert_eq!(AllocationTarget::from_step(other), None, "{other}");
        }
    }

    #[test]
    fn a_target_is_reached_at_its_quantity_and_price_point() {
        let component = |quantity: &str, price_point: i64| -> SubscriptionComponent {
            serde_json::from_value(serde_json::json!({
                "component_id": 11, "allocated_quantity": quantity, "price_point_id": price_point
            }))
            .unwrap()
        };
        assert!(target(Some(42)).reached(&[component("25", 42)]));
        assert!(target(None).reached(&[component("25.0", 7)]));
        assert!(!target(Some(42)).reached(&[component("25", 7)]));
        assert!(!target(Some(42)).reached(&[component("24", 42)]));
        assert!(!target(Some(42)).reached(&[]));
    }
}
