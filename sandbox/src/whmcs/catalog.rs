//! What a fresh installation holds: the WHMCS products the seeded Salesforce catalog maps to
//! (`Product2.WHMCS_Product_Id__c`; names and cycles from `sandbox/data/salesforce/seed.json`), the
//! client the seeded internet Order belongs to (`Account.WH_Account__c = 1`), a Closed and an
//! Inactive client, and the payment gateways.
//!
//! Prices are in yen. Those of 185, 242 and 246 are the seeded Order's unit prices; the others
//! are the fake's own.

use rust_decimal::Decimal;

use super::model::{Client, ClientStatus, Currency, PaymentMethod, Product};

const INTERNET: &str = "Internet";
const INSTALLATION: &str = "Internet Installation";
const ADD_ONS: &str = "Internet Add-ons";
const VPN: &str = "VPN";

/// The client of the seeded internet Order: Active.
pub const ACTIVE_CLIENT_ID: u64 = 1;
/// A Closed client: AddOrder refuses it.
pub const CLOSED_CLIENT_ID: u64 = 2;
/// An Inactive client: AddOrder still takes orders for it.
pub const INACTIVE_CLIENT_ID: u64 = 3;

fn yen(amount: i64) -> Decimal {
    Decimal::from(amount)
}

/// Every product of the seeded catalog. Monthly products offer only `monthly`; one-time ones
/// only `onetime`.
pub fn default_products() -> Vec<Product> {
    vec![
        Product::monthly(181, "Internet Silver (Home 1G)", INTERNET, yen(5800)),
        Product::monthly(182, "Internet Gold (Home 1G)", INTERNET, yen(6300)),
        Product::monthly(183, "Internet Platinum (Home 1G)", INTERNET, yen(7300)),
        Product::monthly(184, "Internet Silver (Apartment 1G)", INTERNET, yen(4800)),
        Product::monthly(185, "Internet Gold (Apartment 1G)", INTERNET, yen(5300)),
        Product::monthly(186, "Internet Platinum (Apartment 1G)", INTERNET, yen(6300)),
        Product::one_time(242, "Single Installation", INSTALLATION, yen(22000)),
        Product::one_time(243, "12-Month Installation", INSTALLATION, yen(22000)),
        Product::one_time(244, "24-Month Installation", INSTALLATION, yen(22000)),
        Product::one_time(245, "Weekend Installation Fee", INSTALLATION, yen(3300)),
        Product::monthly(246, "Hikari Denwa Service", ADD_ONS, yen(550)),
        Product::one_time(247, "Hikari Denwa Installation", ADD_ONS, yen(1100)),
        Product::monthly(33, "VPN USA (San Francisco)", VPN, yen(1100)),
        Product::monthly(54, "VPN UK (London)", VPN, yen(1100)),
        Product::one_time(37, "VPN Activation Fee", VPN, yen(3300)),
    ]
}

/// Client 1 (Haruka Sato, Active, the seeded Account's `WH_Account__c`), client 2 (Closed) and
/// client 3 (Inactive).
pub fn default_clients() -> Vec<Client> {
    vec![
        Client {
            id: ACTIVE_CLIENT_ID,
            first_name: "Haruka".into(),
            last_name: "Sato".into(),
            email: "haruka.sato@example.com".into(),
            status: ClientStatus::Active,
            address1: "Azabu Terrace 402, 1-9-12 Minami-Azabu".into(),
            city: "Minato-ku".into(),
            state: "Tokyo".into(),
            postcode: "106-0047".into(),
            country_code: "JP".into(),
            phone: "+81.355550134".into(),
            created: "2025-06-02".into(),
            default_gateway: "mailin".into(),
            ..Client::default()
        },
        Client {
            id: CLOSED_CLIENT_ID,
            first_name: "Kenji".into(),
            last_name: "Watanabe".into(),
            email: "kenji.watanabe@example.com".into(),
            status: ClientStatus::Closed,
            city: "Shibuya-ku".into(),
            state: "Tokyo".into(),
            postcode: "150-0002".into(),
            country_code: "JP".into(),
            created: "2023-03-14".into(),
            ..Client::default()
        },
        Client {
            id: INACTIVE_CLIENT_ID,
            first_name: "Yui".into(),
            last_name: "Tanaka".into(),
            company_name: "Tanaka Design".into(),
            email: "yui@tanaka-design.example.jp".into(),
            status: ClientStatus::Inactive,
            city: "Kita-ku".into(),
            state: "Osaka".into(),
            postcode: "530-0001".into(),
            country_code: "JP".into(),
            created: "2024-11-20".into(),
            ..Client::default()
        },
    ]
}

/// The active gateways, in display order: `mailin` (what the seeded orders pay with) and
/// `banktransfer`.
pub fn default_payment_methods() -> Vec<PaymentMethod> {
    vec![
        PaymentMethod::new("mailin", "Mail In Payment"),
        PaymentMethod::new("banktransfer", "Bank Transfer"),
    ]
}

/// Japanese yen, formatted `¥5300.00 JPY`.
pub fn default_currency() -> Currency {
    Currency {
        id: 1,
        code: "JPY".into(),
        prefix: "¥".into(),
        suffix: " JPY".into(),
    }
}
