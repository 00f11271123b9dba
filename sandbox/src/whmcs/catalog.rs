//! What a fresh installation holds: the WHMCS products the seeded Salesforce catalog maps to
//! (`Product2.WHMCS_Product_Id__c`; names and cycles from `sandbox/data/salesforce/seed.json`), the
//! client the seeded internet Order belongs to (`Account.WH_Account__c = 1`), a Closed and an
//! Inactive client, the payment gateways, and the currencies: yen (the default, every seeded
//! client's), US dollars and euros.
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
            currency: JPY_CURRENCY_ID,
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
            currency: JPY_CURRENCY_ID,
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
            currency: JPY_CURRENCY_ID,
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

/// The id of the default currency, Japanese yen: the seeded clients' currency.
pub const JPY_CURRENCY_ID: u64 = 1;
/// The id of US dollars, a second currency of the installation.
pub const USD_CURRENCY_ID: u64 = 2;
/// The id of euros, a third currency of the installation.
pub const EUR_CURRENCY_ID: u64 = 3;

/// Japanese yen, the installation's default, formatted `¥5300.00 JPY`.
pub fn default_currency() -> Currency {
    Currency {
        id: JPY_CURRENCY_ID,
        code: "JPY".into(),
        prefix: "¥".into(),
        suffix: " JPY".into(),
        format: 1,
        rate: Decimal::ONE,
    }
}

/// The installation's other currencies: US dollars (`$5300.00 USD`) and euros (`€5300.00 EUR`),
/// at made-up rates. No client of the catalog uses them; tests add clients in them.
pub fn other_currencies() -> Vec<Currency> {
    vec![
        Currency {
            id: USD_CURRENCY_ID,
            code: "USD".into(),
            prefix: "$".into(),
            suffix: " USD".into(),
            format: 2,
            rate: Decimal::new(67, 4),
        },
        Currency {
            id: EUR_CURRENCY_ID,
            code: "EUR".into(),
            prefix: "€".into(),
            suffix: " EUR".into(),
            format: 3,
            rate: Decimal::new(62, 4),
        },
    ]
}
