//! Deals that change a contract already billed: a CPQ amendment (the Opportunity's
//! `SBQQ__AmendedContract__c`) or renewal (`SBQQ__RenewedContract__c`). Their Orders hold delta
//! lines (+5 seats, −3 for a removal) and continue the original deal's subscription and services;
//! billed as a first sale they would make a second AB subscription and new WHMCS services, billing
//! the customer twice. Until dealbridge applies them to what exists, they are refused before any
//! write, with a stable code on the record, and a person applies the change. Recognised from the
//! Opportunity, never from `Order.Type`, which admins can edit (lifecycle reference §1.1). Pure.

use crate::codes::ErrorCode;
use crate::snapshot::DealSnapshot;

/// Why the deal is not billed as a first sale, when it changes an existing contract.
pub fn refused(snapshot: &DealSnapshot) -> Option<(ErrorCode, String)> {
    let opportunity = snapshot.opportunity.as_ref()?;
    if let Some(contract) = &opportunity.amended_contract {
        return Some((
            ErrorCode::AmendmentNotSupported,
            format!(
                "Opportunity {} amends Contract {contract}; dealbridge does not apply CPQ amendments to the contract's existing subscription and services yet, and will not bill the amendment's lines as a new sale. Apply the change in Maxio AB and WHMCS by hand",
                opportunity.id
            ),
        ));
    }
    if let Some(contract) = &opportunity.renewed_contract {
        return Some((
            ErrorCode::RenewalNotSupported,
            format!(
                "Opportunity {} renews Contract {contract}; the contract's AB subscription keeps billing, and dealbridge does not apply renewal changes yet, so it creates nothing for the renewal. Apply any change in Maxio AB and WHMCS by hand",
                opportunity.id
            ),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesforce::SfId;
    use crate::snapshot::{Account, Address, DealRef, Opportunity};

    fn snapshot(amends: Option<&str>, renews: Option<&str>) -> DealSnapshot {
        let id = |s: &str| SfId::parse(s).unwrap();
        DealSnapshot {
            requested: DealRef::Opportunity(id("006A000010khO8J")),
            account: Account {
                id: id("001A000010khO8J"),
                name: "Acme".into(),
                phone: None,
                billing_address: Address::default(),
                customer_number: None,
                whmcs_client_id: None,
                maxio_customer_id: None,
            },
            opportunity: Some(Opportunity {
                id: id("006A000010khO8J"),
                name: "O".into(),
                stage: "Closed Won".into(),
                close_date: None,
                is_won: true,
                is_closed: true,
                amount: None,
                account_id: None,
                maxio_subscription_id: None,
                maxio_product_handle: None,
                whmcs_service_id: None,
                maxio_sync_status: None,
                maxio_site: None,
                currency: None,
                amended_contract: amends.map(id),
                renewed_contract: renews.map(id),
                contact_roles: vec![],
            }),
            quote: None,
            orders: vec![],
        }
    }

    #[test]
    fn amendments_and_renewals_are_named_with_their_contract_and_first_sales_pass() {
        assert_eq!(refused(&snapshot(None, None)), None);
        let (code, message) = refused(&snapshot(Some("800A000010khO8J"), None)).unwrap();
        assert_eq!(code, ErrorCode::AmendmentNotSupported);
        assert!(
            message.contains("amends Contract 800A000010khO8JIAU"),
            "{message}"
        );
        let (code, message) = refused(&snapshot(None, Some("800A000010khO8J"))).unwrap();
        assert_eq!(code, ErrorCode::RenewalNotSupported);
        assert!(
            message.contains("renews Contract 800A000010khO8JIAU"),
            "{message}"
        );
    }
}
