//! The lookups: GetClientsDetails (reference B4.1), GetClients (B4.2), GetClientsProducts (B4.4),
//! GetPaymentMethods (B4.5) and GetCurrencies (`lifecycle.md` §4); and AddClient (§4).
//!
//! Id and count types vary across WHMCS's calls (reference B1: "numbers are often JSON strings");
//! the fake picks per call: GetClientsDetails gives the client's ids and counts as integers (as
//! WHMCS 8's model-backed details do), the list calls give record values as strings (database
//! rows) and their counts as integers.

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::WhmcsSettings;
use super::http::{Reply, container};
use super::model::{Client, ClientStatus, ServiceStatus};
use super::orders::window;
use super::params::{Params, php_int, php_truthy};
use super::php::PhpValue;
use super::state::Store;

fn full_name(client: &Client) -> String {
    format!("{} {}", client.first_name, client.last_name)
}

fn money(amount: Decimal) -> String {
    format!("{:.2}", amount.round_dp(2))
}

/// A truthy scalar parameter.
fn given<'p>(params: &'p Params, name: &str) -> Option<&'p str> {
    params.scalar(name).filter(|v| php_truthy(v))
}

/// GetClientsDetails: by `clientid`, else by `email` (exact, any case). The client's fields come
/// under `client` and again at the top level (WHMCS's deprecated duplicate); `stats=true` adds a
/// few counts under `stats`.
pub(super) fn get_clients_details(
    settings: &WhmcsSettings,
    store: &Store,
    params: &Params,
) -> Reply {
    let client = match (given(params, "clientid"), given(params, "email")) {
        (Some(id), _) => u64::try_from(php_int(id))
            .ok()
            .and_then(|id| store.clients.get(&id)),
        (None, Some(email)) => store
            .clients
            .values()
            .find(|c| c.email.eq_ignore_ascii_case(email.trim())),
        (None, None) => return Reply::error("Either clientid Or email Is Required"),
    };
    let Some(client) = client else {
        return Reply::error("Client Not Found");
    };
    let details = json!({
        "userid": client.id,
        "client_id": client.id,
        "id": client.id,
        "owner_user_id": client.id,
        "uuid": format!("00000000-0000-4000-8000-{:012}", client.id),
        "firstname": client.first_name,
        "lastname": client.last_name,
        "fullname": full_name(client),
        "companyname": client.company_name,
        "email": client.email,
        "address1": client.address1,
        "address2": "",
        "city": client.city,
        "fullstate": client.state,
        "state": client.state,
        "postcode": client.postcode,
        "countrycode": client.country_code,
        "country": client.country_code,
        "phonenumber": client.phone,
        // The client's own currency: its id, and its code (ASSUMED: "" when the id names no
        // currency of the installation, which only a test can set up).
        "currency": client.currency,
        "currency_code": settings
            .currency_by_id(client.currency)
            .map_or("", |c| c.code.as_str()),
        "defaultgateway": client.default_gateway,
        "groupid": 0,
        "status": client.status.as_str(),
        "credit": "0.00",
        "language": "",
        "customfields": [],
        "users": {"user": [{
            "id": client.id,
            "name": full_name(client),
            "email": client.email,
            "is_owner": true,
        }]},
        "email_preferences": {
            "general": true, "invoice": true, "support": true,
            "product": true, "domain": true, "affiliate": true,
        },
    });
    let mut reply = Reply::success(json!({ "client": details }));
    if let Value::Object(fields) = details {
        for (key, value) in fields {
            reply.body.entry(key).or_insert(value);
        }
    }
    if params.truthy("stats") {
        let orders = store.orders.values().filter(|o| o.client_id == client.id);
        let services: Vec<_> = store
            .services
            .values()
            .filter(|s| s.client_id == client.id)
            .collect();
        let count = |status: ServiceStatus| services.iter().filter(|s| s.status == status).count();
        reply.body.insert(
            "stats".into(),
            json!({
                "numorders": orders.count(),
                "productsnumactive": count(ServiceStatus::Active),
                "productsnumpending": count(ServiceStatus::Pending),
                "productsnumtotal": services.len(),
            }),
        );
    }
    reply
}

/// GetClients: `status` (exact), `search` (prefix of email, first name, last name, full name or
/// company, any case), ordered by `orderby` (default `id`) `sorting` ASC/DESC, then
/// `limitstart` / `limitnum`.
pub(super) fn get_clients(settings: &WhmcsSettings, store: &Store, params: &Params) -> Reply {
    let status = given(params, "status");
    let search = given(params, "search").map(str::to_lowercase);
    let mut matching: Vec<&Client> = store
        .clients
        .values()
        .filter(|c| status.is_none_or(|s| c.status.as_str().eq_ignore_ascii_case(s)))
        .filter(|c| {
            search.as_deref().is_none_or(|s| {
                [
                    &c.email,
                    &c.first_name,
                    &c.last_name,
                    &full_name(c),
                    &c.company_name,
                ]
                .iter()
                .any(|field| field.to_lowercase().starts_with(s))
            })
        })
        .collect();
    let text_key = |c: &Client| -> String {
        match params.scalar("orderby").unwrap_or("id") {
            "firstname" => c.first_name.to_lowercase(),
            "lastname" => c.last_name.to_lowercase(),
            "companyname" => c.company_name.to_lowercase(),
            "email" => c.email.to_lowercase(),
            "datecreated" => c.created.clone(),
            "status" => c.status.as_str().into(),
            _ => format!("{:020}", c.id),
        }
    };
    matching.sort_by_cached_key(|c| (text_key(c), c.id));
    if params
        .scalar("sorting")
        .is_some_and(|s| s.eq_ignore_ascii_case("desc"))
    {
        matching.reverse();
    }
    let (start, limit, start_echo) = window(params);
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(limit)
        .map(|c| {
            json!({
                "id": c.id.to_string(),
                "firstname": c.first_name,
                "lastname": c.last_name,
                "companyname": c.company_name,
                "email": c.email,
                "datecreated": c.created,
                "groupid": "0",
                "status": c.status.as_str(),
            })
        })
        .collect();
    let mut reply = Reply::success(json!({
        "totalresults": matching.len(),
        "startnumber": start_echo,
        "numreturned": page.len(),
    }));
    if let Some(clients) = container(settings.empty_lists, "client", page) {
        reply.body.insert("clients".into(), clients);
    }
    reply
}

/// GetClientsProducts: the services, filtered by `clientid`, `serviceid`, `pid`, `domain`,
/// oldest first, `limitstart` / `limitnum`; the filters are echoed (null when not given). Each
/// shows its current `status` (Pending, Active, Suspended, Terminated, Cancelled, Fraud,
/// Completed, as orders, the cron and UpdateClientProduct move it), `regdate`, `nextduedate`
/// and `terminationdate`.
pub(super) fn get_clients_products(
    settings: &WhmcsSettings,
    store: &Store,
    params: &Params,
) -> Reply {
    let number = |name: &str| given(params, name).map(php_int);
    let (client_id, service_id, pid) = (number("clientid"), number("serviceid"), number("pid"));
    let domain = given(params, "domain");
    let equals = |filter: Option<i64>, value: u64| {
        filter.is_none_or(|f| i64::try_from(value).is_ok_and(|v| v == f))
    };
    let matching: Vec<_> = store
        .services
        .values()
        .filter(|s| equals(client_id, s.client_id))
        .filter(|s| equals(service_id, s.id))
        .filter(|s| equals(pid, s.pid))
        .filter(|s| domain.is_none_or(|d| s.domain.eq_ignore_ascii_case(d)))
        .collect();
    let (start, limit, start_echo) = window(params);
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(limit)
        .map(|s| {
            let product = store.products.get(&s.pid);
            let order = store.orders.get(&s.order_id);
            let gateway = store
                .payment_methods
                .iter()
                .find(|m| m.module == s.payment_method);
            let options: Vec<Value> = s
                .config_options
                .iter()
                .map(|(key, value)| {
                    // `{"optionid": y, "qty": z}` (UpdateClientProduct's quantity form) shows
                    // its quantity, or else its option.
                    let shown = match value {
                        PhpValue::Array(a) => a
                            .get("qty")
                            .or_else(|| a.get("optionid"))
                            .map_or_else(String::new, PhpValue::to_php_string),
                        other => other.to_php_string(),
                    };
                    json!({
                        "id": key.to_string(),
                        "option": key.to_string(),
                        "type": "dropdown",
                        "value": shown,
                    })
                })
                .collect();
            let fields: Vec<Value> = s
                .custom_fields
                .iter()
                .map(|(key, value)| {
                    json!({
                        "id": key.to_string(),
                        "name": key.to_string(),
                        "translated_name": key.to_string(),
                        "value": value.to_php_string(),
                    })
                })
                .collect();
            let mut record = json!({
                "id": s.id.to_string(),
                "qty": s.qty.to_string(),
                "clientid": s.client_id.to_string(),
                "orderid": s.order_id.to_string(),
                "ordernumber": order.map_or_else(String::new, |o| o.order_number.clone()),
                "pid": s.pid.to_string(),
                "regdate": s.registered,
                "name": product.map_or_else(String::new, |p| p.name.clone()),
                "translated_name": product.map_or_else(String::new, |p| p.name.clone()),
                "groupname": product.map_or_else(String::new, |p| p.group_name.clone()),
                "translated_groupname": product.map_or_else(String::new, |p| p.group_name.clone()),
                "domain": s.domain,
                "dedicatedip": "",
                "serverid": "0",
                "servername": "",
                "serverip": null,
                "serverhostname": null,
                "suspensionreason": "",
                "firstpaymentamount": money(s.first_payment_amount),
                "recurringamount": money(s.recurring_amount),
                "paymentmethod": s.payment_method,
                "paymentmethodname": gateway.map_or_else(String::new, |g| g.display_name.clone()),
                "billingcycle": s.billing_cycle.label(),
            });
            let rest = json!({
                "nextduedate": s.next_due,
                // The reference's field list has no `terminationdate`; the fake shows it
                // (WHMCS's empty date until one is set) so the end of a service can be read.
                "terminationdate": s.termination_date.as_deref().unwrap_or("0000-00-00"),
                "status": s.status.as_str(),
                "username": "",
                "password": "",
                "subscriptionid": "",
                "promoid": "0",
                "overideautosuspend": "0",
                "overidesuspenduntil": "0000-00-00",
                "ns1": "",
                "ns2": "",
                "assignedips": "",
                "notes": s.notes,
                "diskusage": "0",
                "disklimit": "0",
                "bwusage": "0",
                "bwlimit": "0",
                "lastupdate": "0000-00-00 00:00:00",
                "customfields": {"customfield": fields},
                "configoptions": {"configoption": options},
            });
            if let (Value::Object(record), Value::Object(rest)) = (&mut record, rest) {
                record.extend(rest);
            }
            record
        })
        .collect();
    let echo = |name: &str| params.scalar(name).map_or(Value::Null, |v| json!(v));
    let mut reply = Reply::success(json!({
        "clientid": echo("clientid"),
        "serviceid": echo("serviceid"),
        "pid": echo("pid"),
        "domain": echo("domain"),
        "totalresults": matching.len(),
        "startnumber": start_echo,
        "numreturned": page.len(),
    }));
    if let Some(products) = container(settings.empty_lists, "product", page) {
        reply.body.insert("products".into(), products);
    }
    reply
}

/// GetPaymentMethods: the active gateways, `module` being what AddOrder's `paymentmethod` takes.
pub(super) fn get_payment_methods(store: &Store) -> Reply {
    let methods: Vec<Value> = store
        .payment_methods
        .iter()
        .map(|m| json!({"module": m.module, "displayname": m.display_name}))
        .collect();
    Reply::success(json!({
        "totalresults": methods.len(),
        "paymentmethods": {"paymentmethod": methods},
    }))
}

/// GetCurrencies: every currency set up, by id. ASSUMED shape (the documentation shows it
/// flattened, `currencies[currency][0][id]`): nested as the other lists,
/// `currencies: {"currency": [...]}`, with database-row strings (`"id": "1"`, `"format": "1"`,
/// `"rate": "1.00000"`) and `totalresults` a string, as the documentation's example has it.
pub(super) fn get_currencies(settings: &WhmcsSettings) -> Reply {
    let currencies: Vec<Value> = settings
        .currencies()
        .into_iter()
        .map(|c| {
            json!({
                "id": c.id.to_string(),
                "code": c.code,
                "prefix": c.prefix,
                "suffix": c.suffix,
                "format": c.format.to_string(),
                "rate": format!("{:.5}", c.rate.round_dp(5)),
            })
        })
        .collect();
    Reply::success(json!({
        "totalresults": currencies.len().to_string(),
        "currencies": {"currency": currencies},
    }))
}

/// A scalar parameter, trimmed, when not blank.
fn filled<'p>(params: &'p Params, name: &str) -> Option<&'p str> {
    params.scalar(name).map(str::trim).filter(|v| !v.is_empty())
}

/// Loosely an address: something, one `@`, then a dotted domain.
fn is_email(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !text.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// AddClient (`lifecycle.md` §4), checked in the order of its documented errors:
/// 1. `owner_user_id`, when given, is an existing user (`Invalid Owner User ID`). The fake keeps
///    no users apart from clients: ASSUMED, a user id is the id of the client it owns.
/// 2. Unless `skipvalidation` is truthy, the required fields: `firstname`, `lastname`, `email`,
///    `address1`, `city`, `state`, `postcode`, `phonenumber`, each with its documented message
///    (`You did not enter your  address line 1` has its two spaces).
/// 3. `email` is an address (`The email address you entered was not valid`; also with
///    `skipvalidation`).
/// 4. Unless `skipvalidation`: `country` is two letters (`Valid country required`), and
///    `phonenumber` has digits and only `+ . - ( )` and spaces besides (`Invalid telephone
///    phone number`; ASSUMED rule).
/// 5. The email is not taken, in any case: `A user already exists with that email address`
///    when a user would be created (no `owner_user_id`), else `The email address entered is not
///    available for use.` (ASSUMED: which text applies when).
/// 6. `currency`: absent, blank or `0` is the default currency; otherwise the id of a currency
///    set up (ASSUMED: anything else is refused with the fake's own `Invalid Currency ID`, where
///    WHMCS's behaviour is not documented).
///
/// The client is Active, created today, with no default gateway. `password2`, custom fields,
/// groups and languages are not modelled. The answer is `{"result": "success", "clientid": "5"}`.
pub(super) fn add_client(settings: &WhmcsSettings, store: &mut Store, params: &Params) -> Reply {
    let owner = filled(params, "owner_user_id");
    if let Some(owner) = owner {
        let known = u64::try_from(php_int(owner))
            .ok()
            .is_some_and(|id| store.clients.contains_key(&id));
        if !known {
            return Reply::error("Invalid Owner User ID");
        }
    }
    let email = filled(params, "email").unwrap_or_default();
    if !params.truthy("skipvalidation") {
        for (name, message) in [
            ("firstname", "You did not enter your first name"),
            ("lastname", "You did not enter your last name"),
            ("email", "You did not enter your email address"),
            ("address1", "You did not enter your  address line 1"),
            ("city", "You did not enter your city"),
            ("state", "You did not enter your state"),
            ("postcode", "You did not enter your postcode"),
            ("phonenumber", "You did not enter your phone number"),
        ] {
            if filled(params, name).is_none() {
                return Reply::error(message);
            }
        }
    }
    if !is_email(email) {
        return Reply::error("The email address you entered was not valid");
    }
    let country = filled(params, "country").unwrap_or_default();
    let phone = filled(params, "phonenumber").unwrap_or_default();
    if !params.truthy("skipvalidation") {
        if !(country.len() == 2 && country.chars().all(|c| c.is_ascii_alphabetic())) {
            return Reply::error("Valid country required");
        }
        let phone_ok = phone.chars().any(|c| c.is_ascii_digit())
            && phone
                .chars()
                .all(|c| c.is_ascii_digit() || " +.-()".contains(c));
        if !phone_ok {
            return Reply::error("Invalid telephone phone number");
        }
    }
    if store
        .clients
        .values()
        .any(|c| c.email.eq_ignore_ascii_case(email))
    {
        return Reply::error(if owner.is_some() {
            "The email address entered is not available for use."
        } else {
            "A user already exists with that email address"
        });
    }
    let currency = match filled(params, "currency") {
        None | Some("0") => settings.currency.id,
        Some(id) => match id
            .parse::<u64>()
            .ok()
            .and_then(|id| settings.currency_by_id(id))
        {
            Some(currency) => currency.id,
            None => return Reply::error("Invalid Currency ID"),
        },
    };
    let text = |name: &str| filled(params, name).unwrap_or_default().to_string();
    let id = store.add_client(Client {
        id: 0,
        first_name: text("firstname"),
        last_name: text("lastname"),
        company_name: text("companyname"),
        email: email.to_string(),
        status: ClientStatus::Active,
        address1: text("address1"),
        city: text("city"),
        state: text("state"),
        postcode: text("postcode"),
        country_code: country.to_ascii_uppercase(),
        phone: phone.to_string(),
        created: String::new(),
        default_gateway: String::new(),
        currency,
    });
    Reply::success(json!({ "clientid": id.to_string() }))
}
