//! What a deal is to its CPQ Contract: the first sale, an amendment (the Opportunity's
//! `SBQQ__AmendedContract__c`) or a renewal (`SBQQ__RenewedContract__c`). Amendment Orders hold
//! delta lines (+5 seats, −3 for a removal) against the Contract's one AB subscription; billed as a
//! first sale they would make a second subscription and bill the customer twice. The AB chain
//! applies amendments to the Contract's subscription ([`super::net`]), the WHMCS chain orders only
//! what is new ([`crate::whmcs::contract_lines`]); what no chain applies is refused before any
//! write, with a stable code on the record, and a person applies the change.
//! Pure.

use crate::codes::ErrorCode;
use crate::snapshot::DealSnapshot;

/// Why the AB chain does not bill the deal: an amendment or renewal whose Contract could not be
/// loaded (a mapping without the CPQ Contract fields).
pub fn refused_for_maxio(snapshot: &DealSnapshot) -> Option<(ErrorCode, String)> {
    let opportunity = snapshot.opportunity.as_ref()?;
    if let Some(contract) = &opportunity.amended_contract
        && snapshot.contract.is_none()
    {
        return Some((
            ErrorCode::AmendmentNotSupported,
            format!(
                "Opportunity {} amends Contract {contract}, but the Contract's first sale cannot be read (the mapping's contract.quote, order.quote or quote.opportunity is empty), so dealbridge cannot apply the amendment to the Contract's subscription and will not bill its lines as a new sale. Apply the change in Maxio AB by hand",
                opportunity.id
            ),
        ));
    }
    match (&opportunity.renewed_contract, &snapshot.contract) {
        (Some(contract), None) => Some((
            ErrorCode::RenewalNotSupported,
            format!(
                "Opportunity {} renews Contract {contract}, but the Contract's first sale cannot be read (the mapping's contract.quote, order.quote or quote.opportunity is empty), so dealbridge cannot continue the Contract's subscription and will not bill the renewal as a new sale. Apply any change in Maxio AB by hand",
                opportunity.id
            ),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesforce::SfId;
    use crate::snapshot::{Account, Address, Contract, ContractHistory, DealRef, Opportunity};

    fn id(s: &str) -> SfId {
        SfId::parse(s).unwrap()
    }

    fn snapshot(amends: Option<&str>, renews: Option<&str>, history: bool) -> DealSnapshot {
        DealSnapshot {
            dispatched_on: None,
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
                scheduled_cancellation: None,
                cancellation_status: None,
                cancellation_detail: None,
                contact_roles: vec![],
            }),
            quote: None,
            orders: vec![],
            contract: history.then(|| ContractHistory {
                contract: Contract {
                    id: id("800A000010khO8J"),
                    number: None,
                    account_id: None,
                    start_date: None,
                    end_date: None,
                    term: None,
                    currency: None,
                    quote_id: None,
                    coterm_disabled: false,
                },
                original: None,
                orders: vec![],
            }),
        }
    }

    #[test]
    fn amendments_go_to_ab_with_their_contract() {
        let first_sale = snapshot(None, None, false);
        assert_eq!(refused_for_maxio(&first_sale), None);

        let amendment = snapshot(Some("800A000010khO8J"), None, true);
        assert_eq!(refused_for_maxio(&amendment), None);

        let unreadable = snapshot(Some("800A000010khO8J"), None, false);
        let (code, message) = refused_for_maxio(&unreadable).unwrap();
        assert_eq!(code, ErrorCode::AmendmentNotSupported);
        assert!(message.contains("first sale cannot be read"), "{message}");
    }

    #[test]
    fn a_renewal_whose_contract_cannot_be_read_is_refused() {
        let renewal = snapshot(None, Some("800A000010khO8J"), false);
        let (code, message) = refused_for_maxio(&renewal).unwrap();
        assert_eq!(code, ErrorCode::RenewalNotSupported);
        assert!(
            message.contains("renews Contract 800A000010khO8JIAU"),
            "{message}"
        );
    }
}
