//! Everything the Maxio AB chain will create for a deal, decided before anything is created: the
//! customer (from the Account and a real person with an email), one price point per scheduled
//! order product, and the subscription. Every problem is found at once and nothing is created when
//! there is one, so a deal that cannot be billed leaves no half-made records in Maxio. Pure.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::ab::NewCustomer;
use super::pricing::{PricePointSpec, price_point};
use crate::codes::ErrorCode;
use crate::failure::Failure;
use crate::mapping::Mapping;
use crate::salesforce::SfId;
use crate::snapshot::{DealSnapshot, Person};

/// Deployment settings of the AB chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbSettings {
    /// The AB product every subscription is on, unless the Opportunity or a product overrides it.
    pub product_handle: String,
    pub payment_collection_method: String,
}

impl Default for AbSettings {
    fn default() -> Self {
        AbSettings {
            product_handle: "monthly-usage".into(),
            payment_collection_method: "remittance".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AbItem {
    pub order_item_id: SfId,
    pub product_name: String,
    pub component_handle: String,
    pub quantity: Decimal,
    /// `None`: the component's default price point (the product has no consumption schedule).
    pub price_point: Option<PricePointSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AbDealPlan {
    pub opportunity_id: SfId,
    pub account_id: SfId,
    pub customer: NewCustomer,
    pub items: Vec<AbItem>,
    pub product_handle: String,
    pub payment_collection_method: String,
    /// The subscription's `reference`: the Opportunity Id.
    pub subscription_reference: String,
}

/// A component of the subscription-to-be, resolved in AB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedComponent {
    pub order_item_id: SfId,
    pub product_name: String,
    pub component_id: i64,
    pub component_handle: String,
    pub kind: Option<String>,
    pub quantity: Decimal,
    /// `None`: the component's default price point.
    pub price_point_id: Option<i64>,
    pub default_price_point_id: Option<i64>,
}

/// Why a deal cannot be billed, with a stable code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealProblem {
    pub code: ErrorCode,
    pub message: String,
}

impl DealProblem {
    fn new(code: ErrorCode, message: String) -> Self {
        DealProblem { code, message }
    }
}

/// `CODE: message; CODE: message`, for Salesforce.
pub fn describe(problems: &[DealProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.code, p.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The problems as one failure: the first one's code, every problem said (`CODE: message; ...`).
pub fn failure(problems: &[DealProblem]) -> Failure {
    Failure::of_all(problems.iter().map(|p| (p.code, p.message.as_str())))
}

fn full_name(p: &Person) -> String {
    [p.first_name.as_deref(), p.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The person to bill: the primary quote contact, else the Opportunity's primary contact role,
/// else any contact role, whichever first has an email.
fn billing_person(snapshot: &DealSnapshot) -> Option<&Person> {
    let quote = snapshot
        .quote
        .as_ref()
        .and_then(|q| q.primary_contact.as_ref());
    let roles = snapshot
        .opportunity
        .iter()
        .flat_map(|o| o.contact_roles.iter())
        .map(|r| &r.contact);
    quote
        .into_iter()
        .chain(roles)
        .find(|p| p.email.as_deref().is_some_and(|e| e.contains('@')))
}

fn who_was_checked(snapshot: &DealSnapshot) -> String {
    let mut names = Vec::new();
    if let Some(p) = snapshot
        .quote
        .as_ref()
        .and_then(|q| q.primary_contact.as_ref())
    {
        names.push(format!("the primary quote contact {}", full_name(p)));
    }
    let roles = snapshot
        .opportunity
        .iter()
        .flat_map(|o| o.contact_roles.iter())
        .count();
    if roles > 0 {
        names.push(format!("{roles} Opportunity contact role(s)"));
    }
    if names.is_empty() {
        "the deal has no quote contact and no contact roles".to_string()
    } else {
        format!("checked {}", names.join(" and "))
    }
}

pub fn prepare(
    snapshot: &DealSnapshot,
    mapping: &Mapping,
    settings: &AbSettings,
) -> Result<AbDealPlan, Vec<DealProblem>> {
    let mut problems = Vec::new();
    let account = &snapshot.account;
    let Some(opportunity) = snapshot.opportunity.as_ref() else {
        return Err(vec![DealProblem::new(
            ErrorCode::MaxioNoOpportunity,
            "Maxio billing starts from a won Opportunity; this Order has none".into(),
        )]);
    };

    let person = billing_person(snapshot);
    if person.is_none() {
        problems.push(DealProblem::new(
            ErrorCode::MaxioNoBillingEmail,
            format!(
                "no contact with an email address to bill for {} ({}); add an email to the primary quote contact or an Opportunity contact role",
                account.name,
                who_was_checked(snapshot)
            ),
        ));
    }
    if let Some(p) = person
        && (p.first_name.is_none() || p.last_name.is_none())
    {
        problems.push(DealProblem::new(
            ErrorCode::MaxioContactNameMissing,
            format!(
                "the billing contact {} needs a first and a last name for Maxio",
                p.email.as_deref().unwrap_or_default()
            ),
        ));
    }

    let mut items = Vec::new();
    let mut unmapped = Vec::new();
    let mut product_handles: Vec<(String, String)> = Vec::new();
    for (order, item) in snapshot.order_items() {
        let product = &item.product;
        let Some(handle) = mapping.component_handle(product) else {
            if product.whmcs_product_id.is_none() {
                unmapped.push(match &product.code {
                    Some(code) => format!("{} ({code})", product.name),
                    None => product.name.clone(),
                });
            }
            continue;
        };
        if let Some(h) = &product.maxio_product_handle {
            product_handles.push((product.name.clone(), h.clone()));
        }
        let price_point: Option<PricePointSpec> = match item.schedules.as_slice() {
            [] => None,
            [schedule] => match price_point(&account.name, order.effective_date, item, schedule) {
                Ok(spec) => Some(spec),
                Err(e) => {
                    problems.push(DealProblem::new(e.code(), e.to_string()));
                    None
                }
            },
            many => {
                problems.push(DealProblem::new(
                    ErrorCode::MaxioInvalidTiers,
                    format!(
                        "{} has {} consumption schedules; Maxio prices a component with one",
                        product.name,
                        many.len()
                    ),
                ));
                None
            }
        };
        items.push(AbItem {
            order_item_id: item.id.clone(),
            product_name: product.name.clone(),
            component_handle: handle.to_string(),
            quantity: item.quantity,
            price_point,
        });
    }
    if !unmapped.is_empty() {
        problems.push(DealProblem::new(
            ErrorCode::MaxioUnmappedProduct,
            format!(
                "no Maxio component for {}; set the product's Maxio component handle or add it to the mapping",
                unmapped.join(", ")
            ),
        ));
    }
    if items.is_empty() && unmapped.is_empty() {
        problems.push(DealProblem::new(
            ErrorCode::MaxioNoProducts,
            "no order product maps to a Maxio component".into(),
        ));
    }

    let product_handle = match &opportunity.maxio_product_handle {
        Some(h) => h.clone(),
        None => {
            let mut distinct: Vec<&String> = product_handles.iter().map(|(_, h)| h).collect();
            distinct.sort();
            distinct.dedup();
            match distinct.as_slice() {
                [] => settings.product_handle.clone(),
                [one] => (*one).clone(),
                _ => {
                    problems.push(DealProblem::new(
                        ErrorCode::MaxioConflictingProducts,
                        format!(
                            "the products name different Maxio products ({}); set the Opportunity's Maxio product handle",
                            product_handles
                                .iter()
                                .map(|(n, h)| format!("{n}: {h}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                    settings.product_handle.clone()
                }
            }
        }
    };

    match (problems.is_empty(), person) {
        (true, Some(person)) => {
            let address = &account.billing_address;
            let (line1, line2) = match address.street.as_deref() {
                Some(street) => {
                    let mut lines = street.lines().map(str::trim).filter(|l| !l.is_empty());
                    let first = lines.next().map(str::to_string);
                    let rest: Vec<&str> = lines.collect();
                    (first, (!rest.is_empty()).then(|| rest.join(", ")))
                }
                None => (None, None),
            };
            let country = address
                .country_code
                .clone()
                .or_else(|| address.country.clone().filter(|c| c.len() == 2));
            let state = address
                .state_code
                .clone()
                .or_else(|| address.state.clone().filter(|s| s.len() <= 3));
            Ok(AbDealPlan {
                opportunity_id: opportunity.id.clone(),
                account_id: account.id.clone(),
                customer: NewCustomer {
                    first_name: person.first_name.clone().unwrap_or_default(),
                    last_name: person.last_name.clone().unwrap_or_default(),
                    email: person.email.clone().unwrap_or_default(),
                    organization: account.name.clone(),
                    reference: account.id.to_string(),
                    address: line1,
                    address_2: line2,
                    city: address.city.clone(),
                    state,
                    zip: address.postal_code.clone(),
                    country,
                    phone: account.phone.clone().or_else(|| person.phone.clone()),
                    salesforce_id: Some(account.id.to_string()),
                },
                items,
                product_handle,
                payment_collection_method: settings.payment_collection_method.clone(),
                subscription_reference: opportunity.id.to_string(),
            })
        }
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::*;
    use rust_decimal::Decimal;

    fn id(s: &str) -> SfId {
        SfId::parse(s).unwrap()
    }

    fn person(email: Option<&str>) -> Person {
        Person {
            id: id("003A000010khO8J"),
            first_name: Some("Ada".into()),
            last_name: Some("Byron".into()),
            email: email.map(Into::into),
            phone: Some("+1 555 0100".into()),
        }
    }

    fn item(name: &str, handle: Option<&str>, product_handle: Option<&str>) -> OrderItem {
        OrderItem {
            id: id("802A000010khO8J"),
            quantity: Decimal::from(3),
            unit_price: None,
            service_date: None,
            end_date: None,
            whmcs_service_id: None,
            product: Product {
                id: id("01tA000010khO8J"),
                name: name.into(),
                code: Some(name.to_uppercase()),
                maxio_component_handle: handle.map(Into::into),
                maxio_product_handle: product_handle.map(Into::into),
                whmcs_product_id: None,
                billing_cycle: None,
                item_class: None,
                config_options_json: None,
            },
            schedules: vec![],
        }
    }

    fn snapshot(
        quote_contact: Option<Person>,
        roles: Vec<Person>,
        items: Vec<OrderItem>,
    ) -> DealSnapshot {
        DealSnapshot {
            requested: DealRef::Opportunity(id("006A000010khO8J")),
            account: Account {
                id: id("001A000010khO8J"),
                name: "Acme Ltd".into(),
                phone: None,
                billing_address: Address {
                    street: Some("1 Main St\nSuite 5".into()),
                    city: Some("Springfield".into()),
                    state: Some("Oregon".into()),
                    state_code: Some("OR".into()),
                    postal_code: Some("97477".into()),
                    country: Some("United States".into()),
                    country_code: Some("US".into()),
                },
                customer_number: None,
                whmcs_client_id: None,
                maxio_customer_id: None,
            },
            opportunity: Some(Opportunity {
                id: id("006A000010khO8J"),
                name: "Deal".into(),
                stage: "Closed Won".into(),
                close_date: None,
                is_won: true,
                is_closed: true,
                amount: None,
                account_id: Some(id("001A000010khO8J")),
                maxio_subscription_id: None,
                maxio_product_handle: None,
                whmcs_service_id: None,
                contact_roles: roles
                    .into_iter()
                    .map(|contact| ContactRole {
                        contact,
                        is_primary: true,
                        role: None,
                    })
                    .collect(),
            }),
            quote: Some(Quote {
                id: id("a0AA000010khO8J"),
                name: None,
                primary_contact: quote_contact,
                start_date: None,
                subscription_term: None,
                billing_frequency: None,
            }),
            orders: vec![Order {
                id: id("801A000010khO8J"),
                number: None,
                status: "Activated".into(),
                effective_date: None,
                account_id: None,
                opportunity_id: None,
                activation_status: None,
                whmcs_order_id: None,
                items,
            }],
        }
    }

    #[test]
    fn the_customer_comes_from_the_account_and_the_quote_contact() {
        let s = snapshot(
            Some(person(Some("ada@example.com"))),
            vec![],
            vec![item("Support", Some("support"), None)],
        );
        let plan = prepare(&s, &Mapping::default(), &AbSettings::default()).unwrap();
        let c = &plan.customer;
        assert_eq!(
            (
                c.first_name.as_str(),
                c.last_name.as_str(),
                c.email.as_str()
            ),
            ("Ada", "Byron", "ada@example.com")
        );
        assert_eq!(c.organization, "Acme Ltd");
        assert_eq!(c.reference, "001A000010khO8JIAU");
        assert_eq!(c.address.as_deref(), Some("1 Main St"));
        assert_eq!(c.address_2.as_deref(), Some("Suite 5"));
        assert_eq!(
            (c.state.as_deref(), c.country.as_deref()),
            (Some("OR"), Some("US"))
        );
        assert_eq!(c.phone.as_deref(), Some("+1 555 0100"));
        assert_eq!(plan.product_handle, "monthly-usage");
        assert_eq!(plan.subscription_reference, "006A000010khO8JIAU");
        assert_eq!(
            plan.items[0].price_point, None,
            "no schedule: the default price point"
        );
    }

    #[test]
    fn a_contact_role_with_an_email_stands_in_for_a_quote_contact_without_one() {
        let s = snapshot(
            Some(person(None)),
            vec![person(Some("role@example.com"))],
            vec![item("Support", Some("support"), None)],
        );
        let plan = prepare(&s, &Mapping::default(), &AbSettings::default()).unwrap();
        assert_eq!(plan.customer.email, "role@example.com");
    }

    #[test]
    fn no_email_anywhere_and_unmapped_products_are_all_reported() {
        let s = snapshot(
            Some(person(None)),
            vec![person(None)],
            vec![
                item("Support", Some("support"), None),
                item("Workshop", None, None),
            ],
        );
        let problems = prepare(&s, &Mapping::default(), &AbSettings::default()).unwrap_err();
        let codes: Vec<&str> = problems.iter().map(|p| p.code.as_str()).collect();
        assert_eq!(codes, ["MAXIO_NO_BILLING_EMAIL", "MAXIO_UNMAPPED_PRODUCT"]);
        assert!(problems[0].message.contains("Acme Ltd"));
        assert!(problems[1].message.contains("Workshop (WORKSHOP)"));
        assert!(describe(&problems).starts_with("MAXIO_NO_BILLING_EMAIL: "));
    }

    #[test]
    fn the_product_handle_comes_from_the_opportunity_then_the_products_then_the_default() {
        let m = Mapping::default();
        let settings = AbSettings::default();
        let mut s = snapshot(
            Some(person(Some("a@b.co"))),
            vec![],
            vec![item("A", Some("a"), Some("annual-usage"))],
        );
        assert_eq!(
            prepare(&s, &m, &settings).unwrap().product_handle,
            "annual-usage"
        );
        if let Some(o) = s.opportunity.as_mut() {
            o.maxio_product_handle = Some("enterprise".into());
        }
        assert_eq!(
            prepare(&s, &m, &settings).unwrap().product_handle,
            "enterprise"
        );
        let s = snapshot(
            Some(person(Some("a@b.co"))),
            vec![],
            vec![
                item("A", Some("a"), Some("annual-usage")),
                item("B", Some("b"), Some("monthly-usage")),
            ],
        );
        let problems = prepare(&s, &m, &settings).unwrap_err();
        assert_eq!(problems[0].code, "MAXIO_CONFLICTING_PRODUCTS");
    }
}
