//! A Salesforce consumption schedule on an order product, turned into a Maxio Advanced Billing
//! component price point. Pure.
//!
//! Salesforce tiers are half-open, `[LowerBound, UpperBound)` with a null upper bound meaning
//! unbounded; AB brackets are closed, `[starting_quantity, ending_quantity]` with a null ending
//! quantity meaning open. A tier `[L, U)` becomes the bracket `[L, U - 1]`, so a unit numbered `k`
//! (units are numbered from 1) falls in the same tier on both sides.
//!
//! | Salesforce `Type` | `PricingMethod` | AB `pricing_scheme` |
//! |---|---|---|
//! | Range (volume)    | PerUnit         | `volume`    |
//! | Slab (graduated)  | PerUnit         | `tiered`    |
//! | Range             | FlatFee         | `stairstep` |
//!
//! Anything else has no exact AB equivalent and is refused rather than approximated. Nothing is
//! rounded: a price AB cannot hold exactly (more than 8 decimal places) is an error.

use std::fmt;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::codes::ErrorCode;
use crate::salesforce::SfId;
use crate::snapshot::{
    ConsumptionRate, ConsumptionSchedule, OrderItem, PricingMethod, ScheduleType,
};

/// The most decimal places AB keeps in a `unit_price`.
pub const MAX_PRICE_DECIMALS: u32 = 8;
/// The longest price-point name this module produces, in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// The longest price-point handle this module produces, in characters.
pub const MAX_HANDLE_CHARS: usize = 64;
/// How many hex characters of the tier digest go into a handle.
const DIGEST_HEX_CHARS: usize = 10;
const NAME_SEPARATOR: &str = " · ";

/// AB's `pricing_scheme` of a price point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PricingScheme {
    /// Every unit at the one price.
    PerUnit,
    /// Every unit at the price of the bracket the whole quantity falls in.
    Volume,
    /// Each unit at the price of the bracket that unit falls in.
    Tiered,
    /// The flat price of the bracket the whole quantity falls in.
    Stairstep,
}

impl PricingScheme {
    /// The value AB expects in `pricing_scheme`.
    pub fn as_str(self) -> &'static str {
        match self {
            PricingScheme::PerUnit => "per_unit",
            PricingScheme::Volume => "volume",
            PricingScheme::Tiered => "tiered",
            PricingScheme::Stairstep => "stairstep",
        }
    }
}

impl fmt::Display for PricingScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One AB price bracket, serialized exactly as an item of a price point's `prices` in a create
/// request. Both ends are inclusive; `ending_quantity: null` is open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bracket {
    pub starting_quantity: u64,
    pub ending_quantity: Option<u64>,
    /// A plain decimal without trailing zeros, at most 8 decimal places (`"0.0045"`, `"500"`).
    pub unit_price: String,
}

/// The body of an AB `price_point` create request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricePointSpec {
    pub name: String,
    pub handle: String,
    pub pricing_scheme: PricingScheme,
    pub prices: Vec<Bracket>,
    /// `false` for a deal in one of the site's non-primary currencies: the price point then has
    /// its own prices in that currency (`currency_prices`, one per bracket, equal to `prices`)
    /// instead of AB converting at the site's exchange rate. Absent: AB's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_site_exchange_rate: Option<bool>,
    /// The non-primary currency the brackets' prices are in (carried between the steps; not
    /// part of AB's create body, see [`PricePointSpec::create_body`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

impl PricePointSpec {
    /// The `price_point` of AB's create request: everything but `currency`, whose prices AB
    /// takes in a separate request.
    pub fn create_body(&self) -> serde_json::Value {
        let mut body = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = body.as_object_mut() {
            map.remove("currency");
        }
        body
    }
}

/// Why a consumption schedule cannot become an AB price point. Every case is permanent: the
/// schedule has to be corrected in Salesforce.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error(
        "{product}: consumption schedule {schedule_id} has no rates; Maxio needs at least one price bracket"
    )]
    EmptySchedule { product: String, schedule_id: SfId },

    #[error(
        "{product}: Salesforce rates {rate_id} and {next_rate_id} leave a gap: {rate_id} ends before {upper_bound} but {next_rate_id} starts at {next_lower_bound}, so quantities {upper_bound} to {} have no price",
        .next_lower_bound - 1
    )]
    Gap {
        product: String,
        rate_id: SfId,
        upper_bound: u64,
        next_rate_id: SfId,
        next_lower_bound: u64,
    },

    #[error(
        "{product}: Salesforce rates {rate_id} and {next_rate_id} overlap: {rate_id} runs {} but {next_rate_id} starts at {next_lower_bound}",
        runs_to(.upper_bound)
    )]
    Overlap {
        product: String,
        rate_id: SfId,
        /// `None`: the earlier rate is unbounded yet another rate follows it.
        upper_bound: Option<u64>,
        next_rate_id: SfId,
        next_lower_bound: u64,
    },

    #[error(
        "{product}: Salesforce rate {rate_id} has {bound} bound {value}, which is not a whole number; Maxio quantities are integers"
    )]
    FractionalBound {
        product: String,
        rate_id: SfId,
        /// `"lower"` or `"upper"`.
        bound: &'static str,
        value: Decimal,
    },

    #[error(
        "{product}: Salesforce rate {rate_id} has {bound} bound {value}; Maxio quantities are whole numbers from 0 to {}",
        u64::MAX
    )]
    BoundOutOfRange {
        product: String,
        rate_id: SfId,
        /// `"lower"` or `"upper"`.
        bound: &'static str,
        value: Decimal,
    },

    #[error(
        "{product}: Salesforce rate {rate_id} has upper bound {upper_bound}, which is not above its lower bound {lower_bound}, so it prices no quantity"
    )]
    InvertedRate {
        product: String,
        rate_id: SfId,
        lower_bound: u64,
        upper_bound: u64,
    },

    #[error(
        "{product}: Salesforce rate {rate_id} has price {price}, which has more than 8 decimal places; Maxio keeps 8 and dealbridge does not round prices"
    )]
    TooManyDecimals {
        product: String,
        rate_id: SfId,
        price: Decimal,
    },

    #[error("{product}: Salesforce rate {rate_id} has negative price {price}")]
    NegativePrice {
        product: String,
        rate_id: SfId,
        price: Decimal,
    },

    #[error(
        "{product}: {reason} (consumption schedule {schedule_id}; rates {})",
        join_ids(.rate_ids)
    )]
    UnsupportedPricing {
        product: String,
        schedule_id: SfId,
        rate_ids: Vec<SfId>,
        reason: String,
    },
}

impl PricingError {
    /// A stable code for the problem, for logs and for the write-back to Salesforce.
    pub fn code(&self) -> ErrorCode {
        match self {
            PricingError::UnsupportedPricing { .. } => ErrorCode::MaxioUnsupportedPricing,
            PricingError::TooManyDecimals { .. } | PricingError::NegativePrice { .. } => {
                ErrorCode::MaxioInvalidPrice
            }
            PricingError::EmptySchedule { .. }
            | PricingError::Gap { .. }
            | PricingError::Overlap { .. }
            | PricingError::FractionalBound { .. }
            | PricingError::BoundOutOfRange { .. }
            | PricingError::InvertedRate { .. } => ErrorCode::MaxioInvalidTiers,
        }
    }
}

fn runs_to(upper_bound: &Option<u64>) -> String {
    match upper_bound {
        Some(u) => format!("up to {u} (exclusive)"),
        None => "without an upper bound".to_string(),
    }
}

fn join_ids(ids: &[SfId]) -> String {
    ids.iter().map(SfId::as_str).collect::<Vec<_>>().join(", ")
}

/// One rate after its bounds and price were checked.
struct CheckedRate<'a> {
    rate: &'a ConsumptionRate,
    lower: u64,
    upper: Option<u64>,
    unit_price: String,
}

/// The AB pricing scheme and brackets equivalent to `schedule`. `product_name` only goes into
/// error messages.
pub fn brackets(
    schedule: &ConsumptionSchedule,
    product_name: &str,
) -> Result<(PricingScheme, Vec<Bracket>), PricingError> {
    let product = || product_name.to_string();
    if schedule.rates.is_empty() {
        return Err(PricingError::EmptySchedule {
            product: product(),
            schedule_id: schedule.id.clone(),
        });
    }
    let scheme = scheme_of(schedule, product_name)?;

    let mut rates: Vec<&ConsumptionRate> = schedule.rates.iter().collect();
    rates.sort_by_key(|r| {
        (
            r.processing_order.is_none(),
            r.processing_order,
            r.lower_bound,
        )
    });

    let mut checked = Vec::with_capacity(rates.len());
    for rate in rates {
        let lower = whole_bound(rate, "lower", rate.lower_bound, product_name)?;
        let upper = rate
            .upper_bound
            .map(|u| whole_bound(rate, "upper", u, product_name))
            .transpose()?;
        if let Some(upper) = upper
            && upper <= lower
        {
            return Err(PricingError::InvertedRate {
                product: product(),
                rate_id: rate.id.clone(),
                lower_bound: lower,
                upper_bound: upper,
            });
        }
        let unit_price = unit_price(rate, product_name)?;
        checked.push(CheckedRate {
            rate,
            lower,
            upper,
            unit_price,
        });
    }

    for pair in checked.windows(2) {
        let [this, next] = pair else { continue };
        match this.upper {
            Some(upper) if upper == next.lower => {}
            Some(upper) if upper < next.lower => {
                return Err(PricingError::Gap {
                    product: product(),
                    rate_id: this.rate.id.clone(),
                    upper_bound: upper,
                    next_rate_id: next.rate.id.clone(),
                    next_lower_bound: next.lower,
                });
            }
            upper => {
                return Err(PricingError::Overlap {
                    product: product(),
                    rate_id: this.rate.id.clone(),
                    upper_bound: upper,
                    next_rate_id: next.rate.id.clone(),
                    next_lower_bound: next.lower,
                });
            }
        }
    }

    // Contiguity holds, so `upper - 1` is also the next rate's lower bound minus one; the last
    // bracket ends one below a bounded last rate, or is open.
    let brackets = checked
        .into_iter()
        .map(|c| Bracket {
            starting_quantity: c.lower,
            ending_quantity: c.upper.map(|u| u - 1),
            unit_price: c.unit_price,
        })
        .collect();
    Ok((scheme, brackets))
}

/// The AB scheme with exactly the meaning of the schedule's Type and its rates' PricingMethod.
fn scheme_of(
    schedule: &ConsumptionSchedule,
    product_name: &str,
) -> Result<PricingScheme, PricingError> {
    let unsupported = |rate_ids: Vec<SfId>, reason: String| PricingError::UnsupportedPricing {
        product: product_name.to_string(),
        schedule_id: schedule.id.clone(),
        rate_ids,
        reason,
    };
    let all_ids = || schedule.rates.iter().map(|r| r.id.clone()).collect();

    if let ScheduleType::Other(t) = &schedule.schedule_type {
        return Err(unsupported(
            all_ids(),
            format!(
                "consumption schedule Type {t:?} is neither Range (volume) nor Slab (graduated), so it has no known Maxio pricing scheme"
            ),
        ));
    }
    if let Some(rate) = schedule
        .rates
        .iter()
        .find(|r| matches!(r.pricing_method, PricingMethod::Other(_)))
    {
        let method = match &rate.pricing_method {
            PricingMethod::Other(m) => m.as_str(),
            _ => "",
        };
        return Err(unsupported(
            vec![rate.id.clone()],
            format!(
                "rate {} has PricingMethod {method:?}, which is neither PerUnit nor FlatFee, so it has no known Maxio pricing scheme",
                rate.id
            ),
        ));
    }

    let (per_unit, flat_fee): (Vec<&ConsumptionRate>, Vec<&ConsumptionRate>) = schedule
        .rates
        .iter()
        .partition(|r| r.pricing_method == PricingMethod::PerUnit);
    if !per_unit.is_empty() && !flat_fee.is_empty() {
        let ids = |rates: &[&ConsumptionRate]| {
            rates
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(unsupported(
            all_ids(),
            format!(
                "the schedule mixes per-unit rates ({}) with flat-fee rates ({}); a Maxio price point has one pricing scheme for all its brackets",
                ids(&per_unit),
                ids(&flat_fee)
            ),
        ));
    }

    match (&schedule.schedule_type, flat_fee.is_empty()) {
        (ScheduleType::Range, true) => Ok(PricingScheme::Volume),
        (ScheduleType::Slab, true) => Ok(PricingScheme::Tiered),
        (ScheduleType::Range, false) => Ok(PricingScheme::Stairstep),
        (ScheduleType::Slab, false) => Err(unsupported(
            all_ids(),
            "a Slab schedule with flat-fee rates (graduated flat fees) has no exact Maxio pricing scheme"
                .to_string(),
        )),
        (ScheduleType::Other(_), _) => Err(unsupported(
            all_ids(),
            "the consumption schedule Type is unknown".to_string(),
        )),
    }
}

/// A bound as an AB quantity: a whole number from 0 to `u64::MAX`.
fn whole_bound(
    rate: &ConsumptionRate,
    bound: &'static str,
    value: Decimal,
    product_name: &str,
) -> Result<u64, PricingError> {
    let value = value.normalize();
    if !value.fract().is_zero() {
        return Err(PricingError::FractionalBound {
            product: product_name.to_string(),
            rate_id: rate.id.clone(),
            bound,
            value,
        });
    }
    if value < Decimal::ZERO {
        return Err(PricingError::BoundOutOfRange {
            product: product_name.to_string(),
            rate_id: rate.id.clone(),
            bound,
            value,
        });
    }
    u64::try_from(value).map_err(|_| PricingError::BoundOutOfRange {
        product: product_name.to_string(),
        rate_id: rate.id.clone(),
        bound,
        value,
    })
}

/// The rate's price as AB's `unit_price`: exact, without trailing zeros.
fn unit_price(rate: &ConsumptionRate, product_name: &str) -> Result<String, PricingError> {
    let price = rate.price.normalize();
    if price < Decimal::ZERO {
        return Err(PricingError::NegativePrice {
            product: product_name.to_string(),
            rate_id: rate.id.clone(),
            price,
        });
    }
    if price.scale() > MAX_PRICE_DECIMALS {
        return Err(PricingError::TooManyDecimals {
            product: product_name.to_string(),
            rate_id: rate.id.clone(),
            price,
        });
    }
    Ok(price.to_string())
}

/// The AB price point for the consumption schedule on an order product: its brackets, a
/// deterministic handle and a readable name (`<Account> · <Product> · <effective date>`, then
/// the currency when it is one of the site's non-primary currencies, `non_primary_currency`).
pub fn price_point(
    account_name: &str,
    order_effective_date: Option<NaiveDate>,
    item: &OrderItem,
    schedule: &ConsumptionSchedule,
    non_primary_currency: Option<&str>,
) -> Result<PricePointSpec, PricingError> {
    let (pricing_scheme, prices) = brackets(schedule, &item.product.name)?;
    let product = match non_primary_currency {
        Some(c) => format!("{}{NAME_SEPARATOR}{c}", item.product.name.trim()),
        None => item.product.name.clone(),
    };
    Ok(PricePointSpec {
        name: name_for(account_name, &product, order_effective_date),
        handle: handle_for(&item.id, pricing_scheme, &prices, non_primary_currency),
        pricing_scheme,
        prices,
        use_site_exchange_rate: non_primary_currency.map(|_| false),
        currency: non_primary_currency.map(str::to_string),
    })
}

/// `sf-<order item 18-character Id, lowercased>-<10 hex characters of SHA-256 over the scheme and
/// brackets (and the currency, when non-primary)>`: the same tiers on the same order product always
/// give the same handle, and any change of scheme, bound, price or currency gives another.
/// Lowercase letters, digits and `-` only; 32 characters.
pub fn handle_for(
    item_id: &SfId,
    scheme: PricingScheme,
    brackets: &[Bracket],
    non_primary_currency: Option<&str>,
) -> String {
    let mut tiers = canonical_tiers(scheme, brackets);
    if let Some(c) = non_primary_currency {
        tiers.push_str(&format!("currency={c}\n"));
    }
    let digest = Sha256::digest(tiers.as_bytes());
    let mut hex = hex::encode(digest);
    hex.truncate(DIGEST_HEX_CHARS);
    format!("sf-{}-{hex}", item_id.as_str().to_ascii_lowercase())
}

/// The text the handle digest is taken over: one line for the scheme, one per bracket. Prices are
/// normalized so `"0.50"` and `"0.5"` hash alike.
fn canonical_tiers(scheme: PricingScheme, brackets: &[Bracket]) -> String {
    let mut text = format!("scheme={}\n", scheme.as_str());
    for b in brackets {
        let end = b
            .ending_quantity
            .map_or_else(|| "open".to_string(), |e| e.to_string());
        let price = b
            .unit_price
            .trim()
            .parse::<Decimal>()
            .map_or_else(|_| b.unit_price.clone(), |p| p.normalize().to_string());
        text.push_str(&format!("{}..{end}@{price}\n", b.starting_quantity));
    }
    text
}

/// `<Account> · <Product> · <YYYY-MM-DD>` (the date only when there is one), at most 255
/// characters: a long account name is cut short first.
fn name_for(account_name: &str, product_name: &str, date: Option<NaiveDate>) -> String {
    let account = account_name.trim();
    let rest: Vec<String> = [
        Some(product_name.trim().to_string()),
        date.map(|d| d.format("%Y-%m-%d").to_string()),
    ]
    .into_iter()
    .flatten()
    .filter(|part| !part.is_empty())
    .collect();
    let rest = rest.join(NAME_SEPARATOR);

    let joined = |account: &str| match (account.is_empty(), rest.is_empty()) {
        (true, _) => rest.clone(),
        (false, true) => account.to_string(),
        (false, false) => format!("{account}{NAME_SEPARATOR}{rest}"),
    };
    let full = joined(account);
    if full.chars().count() <= MAX_NAME_CHARS {
        return full;
    }
    let overflow = full.chars().count() - MAX_NAME_CHARS;
    let keep = account.chars().count().saturating_sub(overflow);
    let short_account: String = account.chars().take(keep).collect();
    let name = joined(short_account.trim_end());
    name.chars().take(MAX_NAME_CHARS).collect()
}

/// What AB charges for `quantity` units under `scheme` and `brackets`, with units numbered from 1
/// (a bracket starting at 0 holds the same units as one starting at 1):
///
/// - `per_unit`: quantity × the price of the one bracket;
/// - `volume`: quantity × the price of the bracket the quantity falls in;
/// - `tiered`: for every bracket, the units numbered inside it × its price, summed;
/// - `stairstep`: the flat price of the bracket the quantity falls in.
///
/// `None` when the quantity falls in no bracket (or `per_unit` has other than one bracket), when a
/// price does not parse, or on overflow.
pub fn charge(scheme: PricingScheme, brackets: &[Bracket], quantity: u64) -> Option<Decimal> {
    let price = |b: &Bracket| b.unit_price.parse::<Decimal>().ok();
    let containing = || {
        brackets.iter().find(|b| {
            b.starting_quantity <= quantity && b.ending_quantity.is_none_or(|e| quantity <= e)
        })
    };
    let q = Decimal::from(quantity);
    match scheme {
        PricingScheme::PerUnit => match brackets {
            [only] => price(only)?.checked_mul(q),
            _ => None,
        },
        PricingScheme::Volume => price(containing()?)?.checked_mul(q),
        PricingScheme::Stairstep => price(containing()?),
        PricingScheme::Tiered => {
            containing()?;
            brackets.iter().try_fold(Decimal::ZERO, |sum, b| {
                let first = b.starting_quantity.max(1);
                let last = b.ending_quantity.map_or(quantity, |e| e.min(quantity));
                if last < first {
                    return Some(sum);
                }
                let units = Decimal::from(last - first + 1);
                sum.checked_add(price(b)?.checked_mul(units)?)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use proptest::prelude::*;

    use super::*;
    use crate::snapshot::Product;

    fn id(prefix: &str, n: u64) -> SfId {
        SfId::parse(&format!("{prefix}{n:012}")).unwrap()
    }

    fn rate_id(n: u64) -> SfId {
        id("0RT", n)
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn rate(
        n: u64,
        lower: &str,
        upper: Option<&str>,
        price: &str,
        method: PricingMethod,
    ) -> ConsumptionRate {
        ConsumptionRate {
            id: rate_id(n),
            processing_order: Some(Decimal::from(n)),
            lower_bound: dec(lower),
            upper_bound: upper.map(dec),
            price: dec(price),
            pricing_method: method,
        }
    }

    fn per_unit(n: u64, lower: &str, upper: Option<&str>, price: &str) -> ConsumptionRate {
        rate(n, lower, upper, price, PricingMethod::PerUnit)
    }

    fn flat_fee(n: u64, lower: &str, upper: Option<&str>, price: &str) -> ConsumptionRate {
        rate(n, lower, upper, price, PricingMethod::FlatFee)
    }

    fn schedule(schedule_type: ScheduleType, rates: Vec<ConsumptionRate>) -> ConsumptionSchedule {
        ConsumptionSchedule {
            id: id("0SC", 1),
            schedule_type,
            rating_method: Some("Tier".into()),
            billing_term: Some(Decimal::ONE),
            billing_term_unit: Some("Month".into()),
            unit_of_measure: None,
            rates,
        }
    }

    fn item(product_name: &str) -> OrderItem {
        OrderItem {
            revised_item: None,
            segment_index: None,
            id: SfId::parse("802A000000AbCdE").unwrap(),
            quantity: Decimal::ONE,
            unit_price: None,
            service_date: None,
            end_date: None,
            whmcs_service_id: None,
            product: Product {
                id: id("01t", 1),
                name: product_name.into(),
                code: Some("API".into()),
                maxio_component_handle: Some("api-calls".into()),
                maxio_product_handle: None,
                whmcs_product_id: None,
                billing_cycle: None,
                item_class: None,
                config_options_json: None,
            },
            schedules: vec![],
        }
    }

    fn bracket(start: u64, end: Option<u64>, price: &str) -> Bracket {
        Bracket {
            starting_quantity: start,
            ending_quantity: end,
            unit_price: price.into(),
        }
    }

    fn three_tiers(schedule_type: ScheduleType) -> ConsumptionSchedule {
        schedule(
            schedule_type,
            vec![
                per_unit(1, "1", Some("1000"), "0.01"),
                per_unit(2, "1000", Some("10000"), "0.008"),
                per_unit(3, "10000", None, "0.005"),
            ],
        )
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn contiguous_salesforce_tiers_become_contiguous_inclusive_brackets() {
        let (scheme, prices) = brackets(&three_tiers(ScheduleType::Range), "API Calls").unwrap();
        assert_eq!(scheme, PricingScheme::Volume);
        assert_eq!(
            prices,
            vec![
                bracket(1, Some(999), "0.01"),
                bracket(1000, Some(9999), "0.008"),
                bracket(10000, None, "0.005"),
            ]
        );
    }

    #[test]
    fn a_single_open_tier_becomes_one_open_bracket() {
        let s = schedule(ScheduleType::Range, vec![per_unit(1, "1", None, "2.50")]);
        assert_eq!(
            brackets(&s, "Seats").unwrap(),
            (PricingScheme::Volume, vec![bracket(1, None, "2.5")])
        );
    }

    #[test]
    fn a_lower_bound_of_zero_is_kept_as_a_start_of_zero() {
        let s = schedule(
            ScheduleType::Slab,
            vec![
                per_unit(1, "0", Some("100"), "0"),
                per_unit(2, "100", None, "1"),
            ],
        );
        let (_, prices) = brackets(&s, "API Calls").unwrap();
        assert_eq!(
            prices,
            vec![bracket(0, Some(99), "0"), bracket(100, None, "1")]
        );
    }

    #[test]
    fn prices_with_eight_decimal_places_are_kept_and_nine_are_refused() {
        let eight = schedule(
            ScheduleType::Range,
            vec![per_unit(1, "1", None, "0.12345678")],
        );
        assert_eq!(
            brackets(&eight, "API Calls").unwrap().1[0].unit_price,
            "0.12345678"
        );

        let nine = schedule(
            ScheduleType::Range,
            vec![per_unit(7, "1", None, "0.123456789")],
        );
        let err = brackets(&nine, "API Calls").unwrap_err();
        assert!(
            matches!(err, PricingError::TooManyDecimals { .. }),
            "{err:?}"
        );
        assert_eq!(err.code(), "MAXIO_INVALID_PRICE");
        let message = err.to_string();
        assert!(message.starts_with("API Calls: "), "{message}");
        assert!(message.contains(rate_id(7).as_str()), "{message}");
        assert!(message.contains("0.123456789"), "{message}");
    }

    #[test]
    fn trailing_zeros_do_not_count_as_decimal_places_and_are_dropped() {
        let s = schedule(
            ScheduleType::Range,
            vec![
                per_unit(1, "1", Some("10"), "0.004500000000"),
                per_unit(2, "10", Some("20"), "500.00"),
                per_unit(3, "20", None, "0.00"),
            ],
        );
        let (_, prices) = brackets(&s, "API Calls").unwrap();
        let prices: Vec<&str> = prices.iter().map(|b| b.unit_price.as_str()).collect();
        assert_eq!(prices, ["0.0045", "500", "0"]);
    }

    #[test]
    fn a_range_schedule_is_volume_and_a_slab_schedule_is_tiered() {
        let (range, range_prices) = brackets(&three_tiers(ScheduleType::Range), "X").unwrap();
        let (slab, slab_prices) = brackets(&three_tiers(ScheduleType::Slab), "X").unwrap();
        assert_eq!(range, PricingScheme::Volume);
        assert_eq!(slab, PricingScheme::Tiered);
        assert_eq!(range_prices, slab_prices);
        // 1500 units: volume prices all of them at the second tier, tiered each slice at its own.
        assert_eq!(charge(range, &range_prices, 1500), Some(dec("12")));
        assert_eq!(
            charge(slab, &slab_prices, 1500),
            Some(dec("9.99") + dec("4.008"))
        );
    }

    #[test]
    fn range_flat_fee_rates_become_stairstep() {
        let s = schedule(
            ScheduleType::Range,
            vec![
                flat_fee(1, "1", Some("11"), "100"),
                flat_fee(2, "11", None, "180"),
            ],
        );
        let (scheme, prices) = brackets(&s, "Support").unwrap();
        assert_eq!(scheme, PricingScheme::Stairstep);
        assert_eq!(
            prices,
            vec![bracket(1, Some(10), "100"), bracket(11, None, "180")]
        );
        assert_eq!(charge(scheme, &prices, 10), Some(dec("100")));
        assert_eq!(charge(scheme, &prices, 11), Some(dec("180")));
    }

    #[test]
    fn slab_flat_fee_rates_are_refused_as_unsupported() {
        let s = schedule(
            ScheduleType::Slab,
            vec![
                flat_fee(1, "1", Some("11"), "100"),
                flat_fee(2, "11", None, "180"),
            ],
        );
        let err = brackets(&s, "API Calls").unwrap_err();
        assert_eq!(err.code(), "MAXIO_UNSUPPORTED_PRICING");
        let message = err.to_string();
        assert!(
            message.starts_with(
                "API Calls: a Slab schedule with flat-fee rates (graduated flat fees) has no exact Maxio pricing scheme"
            ),
            "{message}"
        );
        assert!(message.contains(s.id.as_str()), "{message}");
        assert!(message.contains(rate_id(1).as_str()), "{message}");
    }

    #[test]
    fn mixed_pricing_methods_are_refused_naming_the_rates() {
        let s = schedule(
            ScheduleType::Range,
            vec![
                per_unit(1, "1", Some("11"), "1"),
                flat_fee(2, "11", None, "180"),
            ],
        );
        let err = brackets(&s, "API Calls").unwrap_err();
        assert_eq!(err.code(), "MAXIO_UNSUPPORTED_PRICING");
        let message = err.to_string();
        assert!(message.starts_with("API Calls: "), "{message}");
        assert!(
            message.contains(&format!("per-unit rates ({})", rate_id(1))),
            "{message}"
        );
        assert!(
            message.contains(&format!("flat-fee rates ({})", rate_id(2))),
            "{message}"
        );
    }

    #[test]
    fn an_unknown_type_or_pricing_method_is_refused() {
        let unknown_type = schedule(
            ScheduleType::Other("Tiered".into()),
            vec![per_unit(1, "1", None, "1")],
        );
        let err = brackets(&unknown_type, "API Calls").unwrap_err();
        assert_eq!(err.code(), "MAXIO_UNSUPPORTED_PRICING");
        assert!(err.to_string().contains("\"Tiered\""), "{err}");

        let unknown_method = schedule(
            ScheduleType::Range,
            vec![
                per_unit(1, "1", Some("5"), "1"),
                rate(2, "5", None, "1", PricingMethod::Other("Block".into())),
            ],
        );
        let err = brackets(&unknown_method, "API Calls").unwrap_err();
        assert_eq!(err.code(), "MAXIO_UNSUPPORTED_PRICING");
        let message = err.to_string();
        assert!(message.contains("\"Block\""), "{message}");
        assert!(message.contains(rate_id(2).as_str()), "{message}");
    }

    #[test]
    fn a_gap_between_rates_is_refused_naming_both_rates() {
        let s = schedule(
            ScheduleType::Range,
            vec![
                per_unit(1, "1", Some("10"), "1"),
                per_unit(2, "12", None, "0.5"),
            ],
        );
        let err = brackets(&s, "API Calls").unwrap_err();
        assert_eq!(
            err,
            PricingError::Gap {
                product: "API Calls".into(),
                rate_id: rate_id(1),
                upper_bound: 10,
                next_rate_id: rate_id(2),
                next_lower_bound: 12,
            }
        );
        assert_eq!(err.code(), "MAXIO_INVALID_TIERS");
        assert_eq!(
            err.to_string(),
            format!(
                "API Calls: Salesforce rates {a} and {b} leave a gap: {a} ends before 10 but {b} starts at 12, so quantities 10 to 11 have no price",
                a = rate_id(1),
                b = rate_id(2)
            )
        );
    }

    #[test]
    fn an_overlap_between_rates_is_refused_naming_both_rates() {
        let s = schedule(
            ScheduleType::Slab,
            vec![
                per_unit(1, "1", Some("20"), "1"),
                per_unit(2, "10", None, "0.5"),
            ],
        );
        let err = brackets(&s, "API Calls").unwrap_err();
        assert!(
            matches!(
                &err,
                PricingError::Overlap {
                    upper_bound: Some(20),
                    next_lower_bound: 10,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(err.code(), "MAXIO_INVALID_TIERS");
        let message = err.to_string();
        assert!(message.starts_with("API Calls: "), "{message}");
        assert!(message.contains(rate_id(1).as_str()), "{message}");
        assert!(message.contains(rate_id(2).as_str()), "{message}");
    }

    #[test]
    fn an_unbounded_rate_that_is_not_the_last_is_an_overlap() {
        let s = schedule(
            ScheduleType::Range,
            vec![per_unit(1, "1", None, "1"), per_unit(2, "10", None, "0.5")],
        );
        let err = brackets(&s, "API Calls").unwrap_err();
        assert!(
            matches!(
                &err,
                PricingError::Overlap {
                    upper_bound: None,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("without an upper bound"), "{err}");
    }

    #[test]
    fn a_fractional_bound_is_refused_naming_it() {
        let s = schedule(
            ScheduleType::Range,
            vec![
                per_unit(1, "1", Some("10.5"), "1"),
                per_unit(2, "10.5", None, "0.5"),
            ],
        );
        let err = brackets(&s, "API Calls").unwrap_err();
        assert_eq!(
            err,
            PricingError::FractionalBound {
                product: "API Calls".into(),
                rate_id: rate_id(1),
                bound: "upper",
                value: dec("10.5"),
            }
        );
        assert_eq!(err.code(), "MAXIO_INVALID_TIERS");
        let message = err.to_string();
        assert!(message.contains("upper bound 10.5"), "{message}");
        assert!(message.contains(rate_id(1).as_str()), "{message}");
    }

    #[test]
    fn a_whole_bound_written_with_decimals_is_accepted() {
        let s = schedule(
            ScheduleType::Range,
            vec![
                per_unit(1, "1.0", Some("10.00"), "1"),
                per_unit(2, "10", None, "0.5"),
            ],
        );
        assert_eq!(
            brackets(&s, "API Calls").unwrap().1,
            vec![bracket(1, Some(9), "1"), bracket(10, None, "0.5")]
        );
    }

    #[test]
    fn a_negative_bound_is_refused() {
        let s = schedule(
            ScheduleType::Range,
            vec![
                per_unit(1, "-5", Some("10"), "1"),
                per_unit(2, "10", None, "0.5"),
            ],
        );
        let err = brackets(&s, "API Calls").unwrap_err();
        assert!(
            matches!(&err, PricingError::BoundOutOfRange { bound: "lower", .. }),
            "{err:?}"
        );
        assert_eq!(err.code(), "MAXIO_INVALID_TIERS");
        assert!(err.to_string().contains("lower bound -5"), "{err}");
    }

    #[test]
    fn a_rate_whose_upper_bound_is_not_above_its_lower_bound_is_refused() {
        for upper in ["10", "5"] {
            let s = schedule(
                ScheduleType::Range,
                vec![per_unit(3, "10", Some(upper), "1")],
            );
            let err = brackets(&s, "API Calls").unwrap_err();
            assert!(
                matches!(
                    &err,
                    PricingError::InvertedRate {
                        lower_bound: 10,
                        ..
                    }
                ),
                "{err:?}"
            );
            assert!(err.to_string().contains(rate_id(3).as_str()), "{err}");
        }
    }

    #[test]
    fn an_empty_schedule_is_refused() {
        let s = schedule(ScheduleType::Range, vec![]);
        let err = brackets(&s, "API Calls").unwrap_err();
        assert!(
            matches!(&err, PricingError::EmptySchedule { .. }),
            "{err:?}"
        );
        assert_eq!(err.code(), "MAXIO_INVALID_TIERS");
        assert!(
            err.to_string()
                .starts_with("API Calls: consumption schedule ")
        );
        assert!(err.to_string().contains(s.id.as_str()));
    }

    #[test]
    fn a_negative_price_is_refused_and_a_zero_price_is_kept() {
        let s = schedule(
            ScheduleType::Range,
            vec![
                per_unit(1, "1", Some("10"), "0"),
                per_unit(2, "10", None, "-0.5"),
            ],
        );
        let err = brackets(&s, "API Calls").unwrap_err();
        assert_eq!(
            err,
            PricingError::NegativePrice {
                product: "API Calls".into(),
                rate_id: rate_id(2),
                price: dec("-0.5"),
            }
        );
        assert_eq!(err.code(), "MAXIO_INVALID_PRICE");
    }

    #[test]
    fn a_bounded_last_tier_ends_one_below_its_upper_bound() {
        let s = schedule(
            ScheduleType::Range,
            vec![
                per_unit(1, "1", Some("100"), "1"),
                per_unit(2, "100", Some("500"), "0.5"),
            ],
        );
        let (scheme, prices) = brackets(&s, "API Calls").unwrap();
        assert_eq!(
            prices,
            vec![bracket(1, Some(99), "1"), bracket(100, Some(499), "0.5")]
        );
        assert_eq!(charge(scheme, &prices, 499), Some(dec("249.5")));
        assert_eq!(charge(scheme, &prices, 500), None);
    }

    #[test]
    fn rates_are_ordered_by_processing_order_then_lower_bound() {
        let mut tiers = three_tiers(ScheduleType::Range).rates;
        tiers.reverse();
        let (_, prices) = brackets(&schedule(ScheduleType::Range, tiers.clone()), "X").unwrap();
        assert_eq!(
            prices
                .iter()
                .map(|b| b.starting_quantity)
                .collect::<Vec<_>>(),
            [1, 1000, 10000]
        );

        // The same processing order everywhere: the lower bound decides.
        for r in &mut tiers {
            r.processing_order = Some(Decimal::ONE);
        }
        let (_, same_order) = brackets(&schedule(ScheduleType::Range, tiers.clone()), "X").unwrap();
        assert_eq!(same_order, prices);

        // A processing order that contradicts the bounds is not silently re-sorted.
        tiers[0].processing_order = Some(Decimal::ZERO); // the 10000+ tier first
        let err = brackets(&schedule(ScheduleType::Range, tiers), "X").unwrap_err();
        assert!(
            matches!(
                err,
                PricingError::Overlap {
                    upper_bound: None,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    fn handle_of(prices: &[Bracket]) -> String {
        handle_for(&item("X").id, PricingScheme::Volume, prices, None)
    }

    #[test]
    fn the_handle_is_deterministic_and_changes_with_the_scheme_and_every_bound_and_price() {
        let (scheme, prices) = brackets(&three_tiers(ScheduleType::Range), "X").unwrap();
        let id = item("X").id;
        let handle = handle_for(&id, scheme, &prices, None);
        assert_eq!(handle, handle_for(&id, scheme, &prices.clone(), None));
        assert_eq!(handle, handle_of(&prices));

        let mut variants = vec![
            handle_for(&id, PricingScheme::Tiered, &prices, None),
            handle_for(&id, scheme, &prices, Some("EUR")),
        ];
        for i in 0..prices.len() {
            let mut p = prices.clone();
            p[i].starting_quantity += 1;
            variants.push(handle_of(&p));
            let mut p = prices.clone();
            p[i].ending_quantity = match p[i].ending_quantity {
                Some(e) => Some(e + 1),
                None => Some(20000),
            };
            variants.push(handle_of(&p));
            let mut p = prices.clone();
            p[i].unit_price = format!("{}1", p[i].unit_price);
            variants.push(handle_of(&p));
        }
        variants.push(handle_of(&prices[..2]));
        for v in &variants {
            assert_ne!(v, &handle, "a change left the handle as it was");
        }
        let mut distinct = variants.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), variants.len());
    }

    #[test]
    fn the_handle_does_not_depend_on_how_a_price_is_written() {
        let a = [bracket(1, None, "0.5")];
        let b = [bracket(1, None, "0.50")];
        assert_eq!(handle_of(&a), handle_of(&b));
    }

    #[test]
    fn the_handle_names_the_order_item_in_maxio_handle_characters_within_64() {
        let (scheme, prices) = brackets(&three_tiers(ScheduleType::Slab), "X").unwrap();
        let item_id = item("X").id;
        let handle = handle_for(&item_id, scheme, &prices, None);
        let prefix = format!("sf-{}-", item_id.as_str().to_ascii_lowercase());
        assert_eq!(prefix, "sf-802a000000abcdeiav-");
        assert!(handle.starts_with(&prefix), "{handle}");
        let digest = &handle[prefix.len()..];
        assert_eq!(digest.len(), 10);
        assert!(
            digest
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_valid_handle(&handle);
    }

    fn assert_valid_handle(handle: &str) {
        assert!(handle.chars().count() <= MAX_HANDLE_CHARS, "{handle}");
        assert!(
            handle.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()),
            "{handle}"
        );
        assert!(
            handle
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".:-_".contains(c)),
            "{handle}"
        );
    }

    #[test]
    fn the_name_joins_account_product_and_effective_date() {
        let s = three_tiers(ScheduleType::Range);
        let spec = price_point(
            "Acme Corp",
            Some(date(2024, 3, 9)),
            &item("API Calls"),
            &s,
            None,
        )
        .unwrap();
        assert_eq!(spec.name, "Acme Corp · API Calls · 2024-03-09");
        let spec = price_point("Acme Corp", None, &item("API Calls"), &s, None).unwrap();
        assert_eq!(spec.name, "Acme Corp · API Calls");
    }

    #[test]
    fn a_long_account_name_is_cut_on_a_char_boundary_to_keep_the_name_within_255_chars() {
        let account = "Société Générale ".repeat(30);
        let name = name_for(&account, "API Calls", Some(date(2024, 3, 9)));
        assert_eq!(name.chars().count(), MAX_NAME_CHARS);
        assert!(name.ends_with(" · API Calls · 2024-03-09"), "{name}");
        assert!(name.starts_with("Société Générale Société"), "{name}");

        // Exactly at the limit nothing is cut.
        let tail = " · API Calls · 2024-03-09";
        let fits = "é".repeat(MAX_NAME_CHARS - tail.chars().count());
        assert_eq!(
            name_for(&fits, "API Calls", Some(date(2024, 3, 9))),
            format!("{fits}{tail}")
        );

        // A product name too long on its own still gives a name within the limit.
        let huge = name_for("Acme", &"P".repeat(400), None);
        assert_eq!(huge.chars().count(), MAX_NAME_CHARS);
    }

    #[test]
    fn price_point_assembles_name_handle_scheme_and_prices() {
        let s = three_tiers(ScheduleType::Slab);
        let item = item("API Calls");
        let spec = price_point("Acme Corp", Some(date(2024, 3, 9)), &item, &s, None).unwrap();
        let (scheme, prices) = brackets(&s, "API Calls").unwrap();
        assert_eq!(spec.pricing_scheme, PricingScheme::Tiered);
        assert_eq!(spec.handle, handle_for(&item.id, scheme, &prices, None));
        assert_eq!(spec.prices, prices);

        let bad = schedule(ScheduleType::Range, vec![]);
        let err = price_point("Acme Corp", None, &item, &bad, None).unwrap_err();
        assert!(err.to_string().starts_with("API Calls: "), "{err}");
    }

    #[test]
    fn a_price_point_serializes_as_maxio_expects_it() {
        let spec = PricePointSpec {
            name: "Acme · API Calls".into(),
            handle: "sf-x-0123456789".into(),
            pricing_scheme: PricingScheme::PerUnit,
            prices: vec![bracket(1, Some(9), "0.0045"), bracket(10, None, "500")],
            use_site_exchange_rate: None,
            currency: None,
        };
        assert_eq!(
            serde_json::to_value(&spec).unwrap(),
            serde_json::json!({
                "name": "Acme · API Calls",
                "handle": "sf-x-0123456789",
                "pricing_scheme": "per_unit",
                "prices": [
                    {"starting_quantity": 1, "ending_quantity": 9, "unit_price": "0.0045"},
                    {"starting_quantity": 10, "ending_quantity": null, "unit_price": "500"}
                ]
            })
        );
        for scheme in [
            PricingScheme::PerUnit,
            PricingScheme::Volume,
            PricingScheme::Tiered,
            PricingScheme::Stairstep,
        ] {
            assert_eq!(
                serde_json::to_value(scheme).unwrap(),
                serde_json::Value::String(scheme.as_str().into())
            );
        }
    }

    #[test]
    fn charge_follows_maxio_meaning_of_each_scheme() {
        let p = [
            bracket(1, Some(10), "2"),
            bracket(11, Some(20), "1.5"),
            bracket(21, None, "1"),
        ];
        assert_eq!(
            charge(PricingScheme::PerUnit, &[bracket(1, None, "0.25")], 7),
            Some(dec("1.75"))
        );
        assert_eq!(charge(PricingScheme::PerUnit, &p, 7), None);
        assert_eq!(charge(PricingScheme::Volume, &p, 15), Some(dec("22.5")));
        assert_eq!(charge(PricingScheme::Tiered, &p, 15), Some(dec("27.5")));
        assert_eq!(charge(PricingScheme::Tiered, &p, 25), Some(dec("40")));
        assert_eq!(charge(PricingScheme::Stairstep, &p, 15), Some(dec("1.5")));
        // A bracket starting at 0 holds units 1.., like one starting at 1.
        let from_zero = [bracket(0, Some(10), "2"), bracket(11, None, "1")];
        assert_eq!(
            charge(PricingScheme::Tiered, &from_zero, 12),
            Some(dec("22"))
        );
        assert_eq!(charge(PricingScheme::Volume, &from_zero, 0), Some(dec("0")));
    }

    #[test]
    fn charge_is_none_outside_the_brackets() {
        let p = [bracket(5, Some(10), "2")];
        for scheme in [
            PricingScheme::Volume,
            PricingScheme::Tiered,
            PricingScheme::Stairstep,
        ] {
            assert_eq!(charge(scheme, &p, 4), None);
            assert_eq!(charge(scheme, &p, 11), None);
            assert!(charge(scheme, &p, 5).is_some());
        }
    }

    // --- Salesforce's own meaning of a schedule, written against the Salesforce model ------------

    /// The rate whose half-open `[LowerBound, UpperBound)` holds `q`.
    fn sf_tier(s: &ConsumptionSchedule, q: Decimal) -> Option<&ConsumptionRate> {
        s.rates
            .iter()
            .find(|r| r.lower_bound <= q && r.upper_bound.is_none_or(|u| q < u))
    }

    /// What Salesforce charges for `q` units: Range prices every unit at the tier `q` falls in,
    /// Slab prices each unit `k` (1..=q) at the tier holding `k`, a Range flat fee is the price of
    /// the tier `q` falls in. `None` when no tier holds `q`.
    fn salesforce_charge(s: &ConsumptionSchedule, q: u64) -> Option<Decimal> {
        let qd = Decimal::from(q);
        let tier = sf_tier(s, qd)?;
        let flat = tier.pricing_method == PricingMethod::FlatFee;
        match (&s.schedule_type, flat) {
            (ScheduleType::Range, false) => Some(qd * tier.price),
            (ScheduleType::Range, true) => Some(tier.price),
            (ScheduleType::Slab, false) => Some(
                s.rates
                    .iter()
                    .map(|r| {
                        // Units k with max(L, 1) <= k < U and k <= q.
                        let from = r.lower_bound.max(Decimal::ONE);
                        let to = r
                            .upper_bound
                            .map_or(qd + Decimal::ONE, |u| u.min(qd + Decimal::ONE));
                        (to - from).max(Decimal::ZERO) * r.price
                    })
                    .sum(),
            ),
            _ => None,
        }
    }

    #[derive(Debug, Clone, Copy)]
    enum Kind {
        RangePerUnit,
        SlabPerUnit,
        RangeFlatFee,
    }

    /// A valid contiguous schedule (1–6 tiers, integer bounds, prices with up to 8 decimals, rates
    /// in shuffled order) and a quantity it covers.
    fn valid_schedule() -> impl Strategy<Value = (ConsumptionSchedule, u64)> {
        (
            prop_oneof![
                Just(Kind::RangePerUnit),
                Just(Kind::SlabPerUnit),
                Just(Kind::RangeFlatFee)
            ],
            prop_oneof![Just(0u64), Just(1u64), 0u64..=20],
            prop::collection::vec((1u64..=60, 0i64..=10_000_000_000, 0u32..=8), 1..=6),
            any::<bool>(),
        )
            .prop_flat_map(|(kind, first_lower, tiers, last_bounded)| {
                let (schedule_type, method) = match kind {
                    Kind::RangePerUnit => (ScheduleType::Range, PricingMethod::PerUnit),
                    Kind::SlabPerUnit => (ScheduleType::Slab, PricingMethod::PerUnit),
                    Kind::RangeFlatFee => (ScheduleType::Range, PricingMethod::FlatFee),
                };
                let n = tiers.len();
                let mut lower = first_lower;
                let mut rates = Vec::with_capacity(n);
                for (i, (width, mantissa, scale)) in tiers.into_iter().enumerate() {
                    let upper = lower + width;
                    let last = i + 1 == n;
                    rates.push(ConsumptionRate {
                        id: rate_id(i as u64 + 1),
                        processing_order: Some(Decimal::from(i as u64 + 1)),
                        lower_bound: Decimal::from(lower),
                        upper_bound: (!last || last_bounded).then(|| Decimal::from(upper)),
                        price: Decimal::new(mantissa, scale),
                        pricing_method: method.clone(),
                    });
                    lower = upper;
                }
                let last = rates.last().map_or((0, None), |r| {
                    (
                        u64::try_from(r.lower_bound).unwrap(),
                        r.upper_bound.map(|u| u64::try_from(u).unwrap()),
                    )
                });
                let highest = last.1.map_or(last.0 + 200, |u| u - 1);
                (
                    Just(schedule_type),
                    Just(rates).prop_shuffle(),
                    first_lower..=highest,
                )
            })
            .prop_map(|(schedule_type, rates, q)| (schedule(schedule_type, rates), q))
    }

    proptest! {
        #[test]
        fn maxio_charges_what_salesforce_charges_for_every_covered_quantity(
            (s, q) in valid_schedule()
        ) {
            let (scheme, prices) = brackets(&s, "API Calls").unwrap();
            let expected = salesforce_charge(&s, q);
            prop_assert!(expected.is_some());
            prop_assert_eq!(charge(scheme, &prices, q), expected);
        }

        #[test]
        fn converted_brackets_obey_maxio_bracket_rules((s, _q) in valid_schedule()) {
            let (_, prices) = brackets(&s, "API Calls").unwrap();
            prop_assert_eq!(prices.len(), s.rates.len());
            for pair in prices.windows(2) {
                let end = pair[0].ending_quantity;
                prop_assert_eq!(end.map(|e| e + 1), Some(pair[1].starting_quantity));
            }
            for b in &prices {
                if let Some(e) = b.ending_quantity {
                    prop_assert!(e >= b.starting_quantity);
                }
                let p = Decimal::from_str(&b.unit_price).unwrap();
                prop_assert_eq!(p.normalize().to_string(), b.unit_price.clone());
                prop_assert!(p.scale() <= MAX_PRICE_DECIMALS);
            }
            let last_open = s.rates.iter().any(|r| r.upper_bound.is_none());
            prop_assert_eq!(prices.last().unwrap().ending_quantity.is_none(), last_open);
            let spec = price_point("Acme", None, &item("API Calls"), &s, None).unwrap();
            assert_valid_handle(&spec.handle);
        }
    }

    #[test]
    fn error_codes_are_stable() {
        let product = || "X".to_string();
        let r = rate_id(1);
        let cases = [
            (
                PricingError::EmptySchedule {
                    product: product(),
                    schedule_id: r.clone(),
                },
                "MAXIO_INVALID_TIERS",
            ),
            (
                PricingError::InvertedRate {
                    product: product(),
                    rate_id: r.clone(),
                    lower_bound: 2,
                    upper_bound: 1,
                },
                "MAXIO_INVALID_TIERS",
            ),
            (
                PricingError::UnsupportedPricing {
                    product: product(),
                    schedule_id: r.clone(),
                    rate_ids: vec![],
                    reason: "r".into(),
                },
                "MAXIO_UNSUPPORTED_PRICING",
            ),
            (
                PricingError::TooManyDecimals {
                    product: product(),
                    rate_id: r,
                    price: Decimal::ONE,
                },
                "MAXIO_INVALID_PRICE",
            ),
        ];
        for (err, code) in cases {
            assert_eq!(err.code(), code, "{err:?}");
        }
    }
}
