//! The stable error codes dealbridge writes to Salesforce (`CODE: message`), to the ledger's
//! `last_error` and to the logs, as one enum.
//!
//! The text of a code is part of the product's interface: operators search for it, Salesforce
//! reports filter on it, and `docs/runbook.md` ("Error codes") explains each one. A test below
//! checks that the runbook lists exactly these codes.
//!
//! "Permanent" means trying again cannot help until someone fixes the data or the configuration:
//! the code is written to the record and the message is done. "Transient" means the step is tried
//! again (the code is then normally seen only in the ledger, the logs, and after a `..._GAVE_UP`
//! code's `last error:`).

use std::fmt;

/// One stable error code. Its text ([`ErrorCode::as_str`], `Display`, serde) is the
/// SCREAMING_SNAKE_CASE form of the variant name, e.g. `MaxioNoBillingEmail` is
/// `MAXIO_NO_BILLING_EMAIL`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    // Maxio AB: checks of the deal before anything is created in AB (shared/src/maxio/prepare.rs,
    // shared/src/maxio/pricing.rs).
    /// AB billing was asked for a deal without an Opportunity (an Order on its own); only
    /// logged, as there is no Opportunity to write it to. Permanent.
    MaxioNoOpportunity,
    /// Neither the primary quote contact nor any Opportunity contact role has an email address
    /// to bill. Permanent.
    MaxioNoBillingEmail,
    /// The billing contact has no first name or no last name. Permanent.
    MaxioContactNameMissing,
    /// Order products map to neither an AB component nor a WHMCS product. Permanent.
    MaxioUnmappedProduct,
    /// No order product maps to an AB component. Permanent.
    MaxioNoProducts,
    /// The products' `Maxio_Product_Handle__c` name different AB products and the Opportunity
    /// names none. Permanent.
    MaxioConflictingProducts,
    /// A consumption schedule with no rates, a gap or overlap, a fractional or out-of-range
    /// bound, an upper bound not above its lower bound, or several schedules on one order
    /// product. Permanent.
    MaxioInvalidTiers,
    /// A negative price, or one with more than 8 decimal places (dealbridge never rounds).
    /// Permanent.
    MaxioInvalidPrice,
    /// A schedule AB cannot express exactly (`Slab` with flat fees, per-unit and flat-fee rates
    /// mixed, an unknown `Type` or `PricingMethod`). Permanent.
    MaxioUnsupportedPricing,
    /// The Opportunity's currency is not the Order's, or the deal's Orders are in different
    /// currencies. Permanent.
    CurrencyMismatch,
    /// The Order has no currency and the mapping names no `maxio.org_currency`. Permanent.
    CurrencyMissing,
    /// No configured AB site bills the deal's currency. Permanent.
    MaxioCurrencyUnsupported,
    /// The mapping's AB sites contradict what the sites report (a declared currency a site does
    /// not bill), or the deal was billed on a site that is no longer configured. Permanent.
    MaxioSiteMisconfigured,
    /// Order lines of one component at different prices or schedules. Permanent.
    MaxioSplitPrice,
    /// A negative quantity, a fractional one on a component that counts whole units, or an
    /// on/off component whose lines do not add up to 1. Permanent.
    MaxioInvalidQuantity,
    /// The Order starts before the current billing period. Permanent.
    MaxioBackdatedStart,
    /// The Order has no start date. Permanent.
    MaxioNoStartDate,
    /// The AB product the subscription would be on does not exist on the site. Permanent.
    MaxioProductNotFound,
    /// A component's default price point has no prices in the deal's (non-primary) currency, so
    /// AB would convert at the site's exchange rate. Permanent.
    MaxioCurrencyPriceMissing,

    // Maxio AB: the steps and AB's answers (shared/src/maxio/steps.rs, shared/src/maxio/ab/error.rs).
    /// The product's component handle does not exist in AB. Permanent.
    MaxioComponentNotFound,
    /// A price point with the order product's handle already exists in AB with other tiers.
    /// Permanent.
    MaxioPricePointConflict,
    /// The subscription with the Opportunity's reference belongs to another AB customer.
    /// Permanent.
    MaxioSubscriptionConflict,
    /// The subscription is not on the price points dealbridge asked for, or lacks a component.
    /// Permanent.
    MaxioPricePointMismatch,
    /// AB refused the API key (401). Permanent.
    MaxioUnauthorized,
    /// AB answered 404 where a resource was required. Permanent.
    MaxioNotFound,
    /// AB refused the request (any other non-success status: 400, 403, 422, ...); AB's messages
    /// follow. Permanent.
    MaxioRejected,
    /// AB answered 409 (duplicate submission) outside a create that looks the object up.
    /// Permanent.
    MaxioDuplicate,
    /// AB's answer could not be read. Permanent.
    MaxioUnexpectedAnswer,
    /// AB is throttling requests (429). Transient.
    MaxioRateLimited,
    /// AB answered 408 or 5xx. Transient.
    MaxioUnavailable,
    /// No request slot of the AB site's budget could be had in time: the budget stayed full, or
    /// its DynamoDB table did not answer. Nothing was sent to AB. Transient.
    MaxioBudgetBusy,
    /// AB could not be reached, or the request timed out. Transient.
    MaxioUnreachable,
    /// The AB credentials could not be read or parsed from the secret store. Transient.
    MaxioCredentials,
    /// A Maxio step failed for a transient reason on its last delivery; written to the
    /// Opportunity and the message goes to the step's DLQ. Permanent (needs a redrive).
    MaxioGaveUp,

    // Other codes on the Opportunity (shared/src/maxio/steps.rs, shared/src/delayed.rs,
    // shared/src/whmcs/provision.rs).
    /// The won Opportunity still had no Order after the dispatcher's last attempt (8, about an
    /// hour). Permanent.
    DispatchNoOrder,
    /// A delayed re-dispatch or deferred step failed for a transient reason on its last
    /// delivery; written to the record and the message goes to the `delayed` DLQ. Permanent
    /// (needs a redrive or a new dispatch).
    DelayedGaveUp,
    /// Salesforce refused to write an outcome for a reason that is not passing (a validation
    /// rule, field-level security, a missing picklist value). Permanent.
    SalesforceWriteFailed,
    /// The next step's message could not be sent to its queue for good (queue missing, access
    /// denied). Permanent.
    DealbridgeQueue,
    /// A run of the billing sync failed (AB, Salesforce or the ledger unavailable, or a
    /// configuration it cannot use); its hints are retried and end in the billing-sync
    /// dead-letter queue if it never succeeds. Only in the logs and the queue: no deal's record
    /// is to blame. Transient.
    BillingSyncFailed,
    /// The next step's message could not be built. Permanent.
    DealbridgeInternal,
    /// A queue message without a valid seal: not sent by this stack's dealbridge, or sealed with
    /// a key the envelope secret no longer holds. Never handled; it ends in the dead-letter queue.
    /// Transient only while the envelope secret cannot be read.
    DealbridgeUnsealed,
    /// A queue message dealbridge cannot read (no body, not an envelope, another version) or one on
    /// the wrong queue. Returned to its queue; ends in the dead-letter queue.
    DealbridgeBadMessage,
    /// Not handled: an earlier message of its group in the FIFO batch is retried, so this one
    /// returns too, in order. Transient.
    DealbridgeHeldBack,
    /// The ledger (DynamoDB) did not answer or refused a write. Transient.
    LedgerUnavailable,
    /// Another delivery holds the step's lease in the ledger. Transient.
    LedgerBusy,
    /// Writing the outcome to Salesforce failed for a passing reason (a timeout, 5xx,
    /// `UNABLE_TO_LOCK_ROW`, the daily limit). Transient.
    SalesforceUnavailable,
    /// AB said another attempt created the record (customer, price point, subscription) but it
    /// cannot be read yet. Transient.
    MaxioNotVisibleYet,
    /// Maxio Core does not show the customer or contract yet; the link waits. Not yet.
    CoreNotSynced,
    /// A re-dispatch could not load the deal or enqueue its work. Transient or permanent, as
    /// its cause.
    DispatchFailed,
    /// The deal's work message is larger than SQS takes (256 KiB: an Order with a great many
    /// lines); it cannot be enqueued. Permanent.
    DispatchTooLarge,

    // Maxio Core link (shared/src/maxio/core/error.rs, shared/src/maxio/link.rs,
    // shared/src/maxio/core_link.rs).
    /// Core refused the API token (401). Transient for the link: it keeps waiting (`Pending`)
    /// until someone fixes the token or the deadline passes, though the client does not retry it.
    CoreUnauthorized,
    /// Core forbids the token's user the call (403). Transient for the link, as for
    /// [`ErrorCode::CoreUnauthorized`].
    CoreForbidden,
    /// Core is throttling requests (429). Transient.
    CoreRateLimited,
    /// Core answered 408 or 5xx. Transient.
    CoreUnavailable,
    /// Core could not be reached, or the request timed out. Transient.
    CoreUnreachable,
    /// The Core credentials could not be read or parsed from the secret store. Transient.
    CoreCredentials,
    /// Core answered 404 (a wrong base URL or field name); a contract that vanishes during its
    /// update is waited on instead. Permanent.
    CoreNotFound,
    /// Core refused the request (400 or another 4xx); Core's message follows. Permanent.
    CoreRejected,
    /// Core's answer could not be read, or it listed a customer or contract without an id.
    /// Permanent.
    CoreBadAnswer,
    /// A Core list ran past the page limit: the tenant ignores the filter. Permanent.
    CoreTooManyPages,
    /// Several Core customers hold the Account Id and not exactly one of them is active.
    /// Permanent.
    CoreCustomerAmbiguous,
    /// No contract has `sf_id` = the Opportunity and several active unlinked ones could be it.
    /// Permanent.
    CoreContractAmbiguous,
    /// The Opportunity's contract already holds another subscription id in the contract field
    /// (never overwritten). Permanent.
    CoreContractLinkedElsewhere,
    /// Core accepted the contract update but the field does not hold the id (not a writable
    /// field). Permanent.
    CoreFieldNotSaved,

    // WHMCS: checks of the Order before any WHMCS call (shared/src/whmcs/prepare.rs,
    // shared/src/whmcs/model.rs).
    /// Neither the Order's `Status` nor its `Activation_Status__c` is an approved value.
    /// Permanent.
    WhmcsOrderNotApproved,
    /// The Order's `WHMCS_Order_Id__c` is already set; alone it is not written (the message is
    /// simply done). Permanent.
    WhmcsOrderExists,
    /// The WHMCS client's currency is not the Order's. Permanent.
    WhmcsCurrencyMismatch,

    // Contract changes (shared/src/contract/).
    /// The Opportunity is a CPQ amendment of a contract; not billed as a first sale. Permanent.
    AmendmentNotSupported,
    /// The Opportunity is a CPQ renewal of a contract; nothing is created for it. Permanent.
    RenewalNotSupported,
    /// The Contract's first sale has no AB subscription (or customer) yet: the amendment waits for it. Retryable; written when it never appears.
    AmendmentOriginalNotBilled,
    /// The amended Contract cannot be traced to its first sale (no quote, or the quote's Opportunity is not visible). Permanent.
    AmendmentOriginalNotFound,
    /// The amendment takes effect before today; AB applies changes now. Permanent.
    AmendmentBackdated,
    /// After the amendment, one component bills at two prices on the Contract. Permanent.
    AmendmentSplitPrice,
    /// The amendment changes the price of a product without a consumption schedule, which bills at AB's catalog price. Permanent.
    AmendmentPriceNotScheduled,
    /// The amendment's lines end on another day than the Contract, or the Contract disables co-termination. Permanent.
    AmendmentNotCoterminous,
    /// The amendment adds or changes a metered component, which AB cannot allocate. Permanent.
    AmendmentMeteredChange,
    /// The amendment removes more than the Contract has (or revises a line not on it). Permanent.
    AmendmentNegativeQuantity,
    /// A line of the Contract is an MDQ segment. Permanent.
    AmendmentSegmented,
    /// The renewal does not start the day after the renewed Contract ends. Permanent.
    RenewalNotContiguous,
    /// The Contract was renewed: its first sale or an amendment of it is not applied over the
    /// renewal. Permanent.
    ContractRenewed,
    /// The amendment nets every line of the Contract to zero (a CPQ cancellation); not applied automatically. Permanent.
    ContractCancellationNotSupported,
    /// The Opportunity is at the cancelling stage without the date the cancellation takes
    /// effect (`opportunity.scheduled_cancellation`). Permanent.
    CancellationDateMissing,
    /// A cancellation of a deal with nothing billed to cancel: no AB subscription, no WHMCS
    /// service. Permanent.
    CancellationNothingBilled,
    /// The stage moved back from cancelling, but a system cannot withdraw what it was asked
    /// (a WHMCS cancellation request, which its API cannot delete; a subscription AB has
    /// already canceled). Needs a person.
    CancellationNotWithdrawable,
    /// WHMCS was asked to cancel a service and still shows it active two days after the
    /// cancellation's time (its daily cron did not carry the request out). Needs a person.
    CancellationNotConfirmed,
    /// An amendment or renewal Order changes a WHMCS service's quantity or price (or adds a
    /// second line of a product WHMCS already provides), which dealbridge does not apply in
    /// WHMCS. Permanent.
    WhmcsChangeNotSupported,
    /// The Account's WHMCS client id (`WH_Account__c`) is empty. Permanent.
    WhmcsClientMissing,
    /// The Account's WHMCS client id is not a positive whole number. Permanent.
    WhmcsClientInvalid,
    /// A product has no WHMCS product id, or one that is not a whole number. Permanent.
    WhmcsProductUnmapped,
    /// A product has no billing cycle. Permanent.
    WhmcsBillingCycleMissing,
    /// A product's billing cycle is not in the mapping's billing cycle map. Permanent.
    WhmcsBillingCycleUnmapped,
    /// A quantity that is not a positive whole number. Permanent.
    WhmcsInvalidQuantity,
    /// `Portal_ConfigOptions_JSON__c` is not a JSON object. Permanent.
    WhmcsInvalidConfigOptions,
    /// The Order has no products. Permanent.
    WhmcsOrderEmpty,
    /// The Order is not in the deal that was loaded, or the WHMCS order is not found (WHMCS's
    /// `Order ID Not Found`, or gone after AcceptOrder). Permanent.
    WhmcsOrderNotFound,
    /// AddOrder was refused before sending (no lines, a billing cycle WHMCS does not have, ...).
    /// Permanent.
    WhmcsInvalidRequest,

    // WHMCS: WHMCS's answers (shared/src/whmcs/error.rs, shared/src/whmcs/provision.rs).
    /// WHMCS does not know the client (`Client ID Not Found`). Permanent.
    WhmcsClientNotFound,
    /// The WHMCS client is Closed. Permanent.
    WhmcsClientClosed,
    /// "No items added to cart" or another invalid-product message: the pid is invalid, hidden
    /// or has no price for the billing cycle. Permanent.
    WhmcsInvalidProduct,
    /// WHMCS refused the billing cycle. Permanent.
    WhmcsInvalidBillingCycle,
    /// WHMCS refused the payment method. Permanent.
    WhmcsInvalidPaymentMethod,
    /// WHMCS refused the promotion code. Permanent.
    WhmcsInvalidPromoCode,
    /// WHMCS refused an addon id. Permanent.
    WhmcsInvalidAddon,
    /// The order dealbridge placed is not Active and cannot be accepted (for example cancelled
    /// in WHMCS). Permanent.
    WhmcsOrderNotAccepted,
    /// AcceptOrder on an order that is not Pending; for dealbridge's own order this is success
    /// once WHMCS shows it Active, else [`ErrorCode::WhmcsOrderNotAccepted`]. Permanent.
    WhmcsOrderNotPending,
    /// A service or domain is not owned by the client given. Permanent.
    WhmcsNotOwnedByClient,
    /// A service or domain cannot be renewed. Permanent.
    WhmcsNotRenewable,
    /// WHMCS expected a parameter to be an array (an older WHMCS). Permanent.
    WhmcsExpectedArray,
    /// WHMCS says a required parameter is missing. Permanent.
    WhmcsMissingParameter,
    /// WHMCS does not know the action (`Command Not Found`), or the API role lacks it.
    /// Permanent.
    WhmcsUnknownAction,
    /// Any other WHMCS error message (a provisioning module's, for instance), quoted. Permanent.
    WhmcsError,
    /// WHMCS refused the API credentials (403 or an authentication message). Permanent.
    WhmcsAuthenticationFailed,
    /// The caller's IP is not in WHMCS's API allow-list (`Invalid IP`). Permanent.
    WhmcsIpNotAllowed,
    /// The API role has no permission for the action (`Access Denied`). Permanent.
    WhmcsAccessDenied,
    /// The WHMCS credentials could not be read from the secret store. Permanent when the secret
    /// is missing or malformed, transient when the store is unavailable.
    WhmcsCredentials,
    /// The WHMCS client settings are unusable (the base URL). Permanent.
    WhmcsConfiguration,
    /// An HTTP status without a WHMCS answer other than 429 and 5xx. Permanent, except a 408,
    /// which is retried.
    WhmcsHttpError,
    /// A successful status whose body is not a WHMCS answer (an HTML page, a PHP error).
    /// Permanent.
    WhmcsUnexpectedAnswer,
    /// WHMCS (or a proxy in front of it) is throttling requests (429). Transient.
    WhmcsRateLimited,
    /// WHMCS (or a proxy in front of it) answered 5xx. Transient.
    WhmcsUnavailable,
    /// No connection to WHMCS could be made: the request certainly did not arrive. Transient.
    WhmcsUnreachable,
    /// The connection failed or timed out after the request may have been sent. Transient.
    WhmcsNoAnswer,
    /// AddOrder may have been processed but its answer was lost; the next attempt reconciles
    /// against GetOrders instead of sending it again. Transient.
    WhmcsAnswerLost,
    /// WHMCS provisioning failed for a transient reason on its last delivery; written to the
    /// Order and the message goes to the DLQ. Permanent (needs a redrive).
    WhmcsGaveUp,
    /// An earlier attempt may have placed the order and the WHMCS client has several newer
    /// orders that could be it; written to the Order and dead-lettered for a person. Permanent.
    WhmcsReconcileAmbiguous,
    /// The WHMCS order holds a different number of products than the Order has lines, so its
    /// service ids cannot be matched to the order products; written to the Order and
    /// dead-lettered for a person. Permanent.
    WhmcsServicesMismatch,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::MaxioNoOpportunity,
        ErrorCode::MaxioNoBillingEmail,
        ErrorCode::MaxioContactNameMissing,
        ErrorCode::MaxioUnmappedProduct,
        ErrorCode::MaxioNoProducts,
        ErrorCode::MaxioConflictingProducts,
        ErrorCode::MaxioInvalidTiers,
        ErrorCode::MaxioInvalidPrice,
        ErrorCode::MaxioUnsupportedPricing,
        ErrorCode::CurrencyMismatch,
        ErrorCode::CurrencyMissing,
        ErrorCode::MaxioCurrencyUnsupported,
        ErrorCode::MaxioSiteMisconfigured,
        ErrorCode::MaxioSplitPrice,
        ErrorCode::MaxioInvalidQuantity,
        ErrorCode::MaxioBackdatedStart,
        ErrorCode::MaxioNoStartDate,
        ErrorCode::MaxioProductNotFound,
        ErrorCode::MaxioCurrencyPriceMissing,
        ErrorCode::MaxioComponentNotFound,
        ErrorCode::MaxioPricePointConflict,
        ErrorCode::MaxioSubscriptionConflict,
        ErrorCode::MaxioPricePointMismatch,
        ErrorCode::MaxioUnauthorized,
        ErrorCode::MaxioNotFound,
        ErrorCode::MaxioRejected,
        ErrorCode::MaxioDuplicate,
        ErrorCode::MaxioUnexpectedAnswer,
        ErrorCode::MaxioRateLimited,
        ErrorCode::MaxioUnavailable,
        ErrorCode::MaxioBudgetBusy,
        ErrorCode::MaxioUnreachable,
        ErrorCode::MaxioCredentials,
        ErrorCode::MaxioGaveUp,
        ErrorCode::DispatchNoOrder,
        ErrorCode::DelayedGaveUp,
        ErrorCode::SalesforceWriteFailed,
        ErrorCode::DealbridgeQueue,
        ErrorCode::BillingSyncFailed,
        ErrorCode::DealbridgeInternal,
        ErrorCode::DealbridgeUnsealed,
        ErrorCode::DealbridgeBadMessage,
        ErrorCode::DealbridgeHeldBack,
        ErrorCode::LedgerUnavailable,
        ErrorCode::LedgerBusy,
        ErrorCode::SalesforceUnavailable,
        ErrorCode::MaxioNotVisibleYet,
        ErrorCode::CoreNotSynced,
        ErrorCode::DispatchFailed,
        ErrorCode::DispatchTooLarge,
        ErrorCode::CoreUnauthorized,
        ErrorCode::CoreForbidden,
        ErrorCode::CoreRateLimited,
        ErrorCode::CoreUnavailable,
        ErrorCode::CoreUnreachable,
        ErrorCode::CoreCredentials,
        ErrorCode::CoreNotFound,
        ErrorCode::CoreRejected,
        ErrorCode::CoreBadAnswer,
        ErrorCode::CoreTooManyPages,
        ErrorCode::CoreCustomerAmbiguous,
        ErrorCode::CoreContractAmbiguous,
        ErrorCode::CoreContractLinkedElsewhere,
        ErrorCode::CoreFieldNotSaved,
        ErrorCode::WhmcsOrderNotApproved,
        ErrorCode::WhmcsOrderExists,
        ErrorCode::WhmcsCurrencyMismatch,
        ErrorCode::AmendmentNotSupported,
        ErrorCode::RenewalNotSupported,
        ErrorCode::AmendmentOriginalNotBilled,
        ErrorCode::AmendmentOriginalNotFound,
        ErrorCode::AmendmentBackdated,
        ErrorCode::AmendmentSplitPrice,
        ErrorCode::AmendmentPriceNotScheduled,
        ErrorCode::AmendmentNotCoterminous,
        ErrorCode::AmendmentMeteredChange,
        ErrorCode::AmendmentNegativeQuantity,
        ErrorCode::AmendmentSegmented,
        ErrorCode::RenewalNotContiguous,
        ErrorCode::ContractRenewed,
        ErrorCode::ContractCancellationNotSupported,
        ErrorCode::CancellationDateMissing,
        ErrorCode::CancellationNothingBilled,
        ErrorCode::CancellationNotWithdrawable,
        ErrorCode::CancellationNotConfirmed,
        ErrorCode::WhmcsChangeNotSupported,
        ErrorCode::WhmcsClientMissing,
        ErrorCode::WhmcsClientInvalid,
        ErrorCode::WhmcsProductUnmapped,
        ErrorCode::WhmcsBillingCycleMissing,
        ErrorCode::WhmcsBillingCycleUnmapped,
        ErrorCode::WhmcsInvalidQuantity,
        ErrorCode::WhmcsInvalidConfigOptions,
        ErrorCode::WhmcsOrderEmpty,
        ErrorCode::WhmcsOrderNotFound,
        ErrorCode::WhmcsInvalidRequest,
        ErrorCode::WhmcsClientNotFound,
        ErrorCode::WhmcsClientClosed,
        ErrorCode::WhmcsInvalidProduct,
        ErrorCode::WhmcsInvalidBillingCycle,
        ErrorCode::WhmcsInvalidPaymentMethod,
        ErrorCode::WhmcsInvalidPromoCode,
        ErrorCode::WhmcsInvalidAddon,
        ErrorCode::WhmcsOrderNotAccepted,
        ErrorCode::WhmcsOrderNotPending,
        ErrorCode::WhmcsNotOwnedByClient,
        ErrorCode::WhmcsNotRenewable,
        ErrorCode::WhmcsExpectedArray,
        ErrorCode::WhmcsMissingParameter,
        ErrorCode::WhmcsUnknownAction,
        ErrorCode::WhmcsError,
        ErrorCode::WhmcsAuthenticationFailed,
        ErrorCode::WhmcsIpNotAllowed,
        ErrorCode::WhmcsAccessDenied,
        ErrorCode::WhmcsCredentials,
        ErrorCode::WhmcsConfiguration,
        ErrorCode::WhmcsHttpError,
        ErrorCode::WhmcsUnexpectedAnswer,
        ErrorCode::WhmcsRateLimited,
        ErrorCode::WhmcsUnavailable,
        ErrorCode::WhmcsUnreachable,
        ErrorCode::WhmcsNoAnswer,
        ErrorCode::WhmcsAnswerLost,
        ErrorCode::WhmcsGaveUp,
        ErrorCode::WhmcsReconcileAmbiguous,
        ErrorCode::WhmcsServicesMismatch,
    ];

    /// The code's exact text, as written to Salesforce (`MAXIO_NO_BILLING_EMAIL`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MaxioNoOpportunity => "MAXIO_NO_OPPORTUNITY",
            ErrorCode::MaxioNoBillingEmail => "MAXIO_NO_BILLING_EMAIL",
            ErrorCode::MaxioContactNameMissing => "MAXIO_CONTACT_NAME_MISSING",
            ErrorCode::MaxioUnmappedProduct => "MAXIO_UNMAPPED_PRODUCT",
            ErrorCode::MaxioNoProducts => "MAXIO_NO_PRODUCTS",
            ErrorCode::MaxioConflictingProducts => "MAXIO_CONFLICTING_PRODUCTS",
            ErrorCode::MaxioInvalidTiers => "MAXIO_INVALID_TIERS",
            ErrorCode::MaxioInvalidPrice => "MAXIO_INVALID_PRICE",
            ErrorCode::MaxioUnsupportedPricing => "MAXIO_UNSUPPORTED_PRICING",
            ErrorCode::CurrencyMismatch => "CURRENCY_MISMATCH",
            ErrorCode::CurrencyMissing => "CURRENCY_MISSING",
            ErrorCode::MaxioCurrencyUnsupported => "MAXIO_CURRENCY_UNSUPPORTED",
            ErrorCode::MaxioSiteMisconfigured => "MAXIO_SITE_MISCONFIGURED",
            ErrorCode::MaxioSplitPrice => "MAXIO_SPLIT_PRICE",
            ErrorCode::MaxioInvalidQuantity => "MAXIO_INVALID_QUANTITY",
            ErrorCode::MaxioBackdatedStart => "MAXIO_BACKDATED_START",
            ErrorCode::MaxioNoStartDate => "MAXIO_NO_START_DATE",
            ErrorCode::MaxioProductNotFound => "MAXIO_PRODUCT_NOT_FOUND",
            ErrorCode::MaxioCurrencyPriceMissing => "MAXIO_CURRENCY_PRICE_MISSING",
            ErrorCode::MaxioComponentNotFound => "MAXIO_COMPONENT_NOT_FOUND",
            ErrorCode::MaxioPricePointConflict => "MAXIO_PRICE_POINT_CONFLICT",
            ErrorCode::MaxioSubscriptionConflict => "MAXIO_SUBSCRIPTION_CONFLICT",
            ErrorCode::MaxioPricePointMismatch => "MAXIO_PRICE_POINT_MISMATCH",
            ErrorCode::MaxioUnauthorized => "MAXIO_UNAUTHORIZED",
            ErrorCode::MaxioNotFound => "MAXIO_NOT_FOUND",
            ErrorCode::MaxioRejected => "MAXIO_REJECTED",
            ErrorCode::MaxioDuplicate => "MAXIO_DUPLICATE",
            ErrorCode::MaxioUnexpectedAnswer => "MAXIO_UNEXPECTED_ANSWER",
            ErrorCode::MaxioRateLimited => "MAXIO_RATE_LIMITED",
            ErrorCode::MaxioUnavailable => "MAXIO_UNAVAILABLE",
            ErrorCode::MaxioBudgetBusy => "MAXIO_BUDGET_BUSY",
            ErrorCode::MaxioUnreachable => "MAXIO_UNREACHABLE",
            ErrorCode::MaxioCredentials => "MAXIO_CREDENTIALS",
            ErrorCode::MaxioGaveUp => "MAXIO_GAVE_UP",
            ErrorCode::DispatchNoOrder => "DISPATCH_NO_ORDER",
            ErrorCode::DelayedGaveUp => "DELAYED_GAVE_UP",
            ErrorCode::SalesforceWriteFailed => "SALESFORCE_WRITE_FAILED",
            ErrorCode::DealbridgeQueue => "DEALBRIDGE_QUEUE",
            ErrorCode::BillingSyncFailed => "BILLING_SYNC_FAILED",
            ErrorCode::DealbridgeInternal => "DEALBRIDGE_INTERNAL",
            ErrorCode::DealbridgeBadMessage => "DEALBRIDGE_BAD_MESSAGE",
            ErrorCode::DealbridgeUnsealed => "DEALBRIDGE_UNSEALED",
            ErrorCode::DealbridgeHeldBack => "DEALBRIDGE_HELD_BACK",
            ErrorCode::LedgerUnavailable => "LEDGER_UNAVAILABLE",
            ErrorCode::LedgerBusy => "LEDGER_BUSY",
            ErrorCode::SalesforceUnavailable => "SALESFORCE_UNAVAILABLE",
            ErrorCode::MaxioNotVisibleYet => "MAXIO_NOT_VISIBLE_YET",
            ErrorCode::CoreNotSynced => "CORE_NOT_SYNCED",
            ErrorCode::DispatchFailed => "DISPATCH_FAILED",
            ErrorCode::DispatchTooLarge => "DISPATCH_TOO_LARGE",
            ErrorCode::CoreUnauthorized => "CORE_UNAUTHORIZED",
            ErrorCode::CoreForbidden => "CORE_FORBIDDEN",
            ErrorCode::CoreRateLimited => "CORE_RATE_LIMITED",
            ErrorCode::CoreUnavailable => "CORE_UNAVAILABLE",
            ErrorCode::CoreUnreachable => "CORE_UNREACHABLE",
            ErrorCode::CoreCredentials => "CORE_CREDENTIALS",
            ErrorCode::CoreNotFound => "CORE_NOT_FOUND",
            ErrorCode::CoreRejected => "CORE_REJECTED",
            ErrorCode::CoreBadAnswer => "CORE_BAD_ANSWER",
            ErrorCode::CoreTooManyPages => "CORE_TOO_MANY_PAGES",
            ErrorCode::CoreCustomerAmbiguous => "CORE_CUSTOMER_AMBIGUOUS",
            ErrorCode::CoreContractAmbiguous => "CORE_CONTRACT_AMBIGUOUS",
            ErrorCode::CoreContractLinkedElsewhere => "CORE_CONTRACT_LINKED_ELSEWHERE",
            ErrorCode::CoreFieldNotSaved => "CORE_FIELD_NOT_SAVED",
            ErrorCode::WhmcsOrderNotApproved => "WHMCS_ORDER_NOT_APPROVED",
            ErrorCode::WhmcsOrderExists => "WHMCS_ORDER_EXISTS",
            ErrorCode::WhmcsCurrencyMismatch => "WHMCS_CURRENCY_MISMATCH",
            ErrorCode::AmendmentNotSupported => "AMENDMENT_NOT_SUPPORTED",
            ErrorCode::RenewalNotSupported => "RENEWAL_NOT_SUPPORTED",
            ErrorCode::AmendmentOriginalNotBilled => "AMENDMENT_ORIGINAL_NOT_BILLED",
            ErrorCode::AmendmentOriginalNotFound => "AMENDMENT_ORIGINAL_NOT_FOUND",
            ErrorCode::AmendmentBackdated => "AMENDMENT_BACKDATED",
            ErrorCode::AmendmentSplitPrice => "AMENDMENT_SPLIT_PRICE",
            ErrorCode::AmendmentPriceNotScheduled => "AMENDMENT_PRICE_NOT_SCHEDULED",
            ErrorCode::AmendmentNotCoterminous => "AMENDMENT_NOT_COTERMINOUS",
            ErrorCode::AmendmentMeteredChange => "AMENDMENT_METERED_CHANGE",
            ErrorCode::AmendmentNegativeQuantity => "AMENDMENT_NEGATIVE_QUANTITY",
            ErrorCode::AmendmentSegmented => "AMENDMENT_SEGMENTED",
            ErrorCode::RenewalNotContiguous => "RENEWAL_NOT_CONTIGUOUS",
            ErrorCode::ContractRenewed => "CONTRACT_RENEWED",
            ErrorCode::ContractCancellationNotSupported => "CONTRACT_CANCELLATION_NOT_SUPPORTED",
            ErrorCode::CancellationDateMissing => "CANCELLATION_DATE_MISSING",
            ErrorCode::CancellationNothingBilled => "CANCELLATION_NOTHING_BILLED",
            ErrorCode::CancellationNotWithdrawable => "CANCELLATION_NOT_WITHDRAWABLE",
            ErrorCode::CancellationNotConfirmed => "CANCELLATION_NOT_CONFIRMED",
            ErrorCode::WhmcsChangeNotSupported => "WHMCS_CHANGE_NOT_SUPPORTED",
            ErrorCode::WhmcsClientMissing => "WHMCS_CLIENT_MISSING",
            ErrorCode::WhmcsClientInvalid => "WHMCS_CLIENT_INVALID",
            ErrorCode::WhmcsProductUnmapped => "WHMCS_PRODUCT_UNMAPPED",
            ErrorCode::WhmcsBillingCycleMissing => "WHMCS_BILLING_CYCLE_MISSING",
            ErrorCode::WhmcsBillingCycleUnmapped => "WHMCS_BILLING_CYCLE_UNMAPPED",
            ErrorCode::WhmcsInvalidQuantity => "WHMCS_INVALID_QUANTITY",
            ErrorCode::WhmcsInvalidConfigOptions => "WHMCS_INVALID_CONFIG_OPTIONS",
            ErrorCode::WhmcsOrderEmpty => "WHMCS_ORDER_EMPTY",
            ErrorCode::WhmcsOrderNotFound => "WHMCS_ORDER_NOT_FOUND",
            ErrorCode::WhmcsInvalidRequest => "WHMCS_INVALID_REQUEST",
            ErrorCode::WhmcsClientNotFound => "WHMCS_CLIENT_NOT_FOUND",
            ErrorCode::WhmcsClientClosed => "WHMCS_CLIENT_CLOSED",
            ErrorCode::WhmcsInvalidProduct => "WHMCS_INVALID_PRODUCT",
            ErrorCode::WhmcsInvalidBillingCycle => "WHMCS_INVALID_BILLING_CYCLE",
            ErrorCode::WhmcsInvalidPaymentMethod => "WHMCS_INVALID_PAYMENT_METHOD",
            ErrorCode::WhmcsInvalidPromoCode => "WHMCS_INVALID_PROMO_CODE",
            ErrorCode::WhmcsInvalidAddon => "WHMCS_INVALID_ADDON",
            ErrorCode::WhmcsOrderNotAccepted => "WHMCS_ORDER_NOT_ACCEPTED",
            ErrorCode::WhmcsOrderNotPending => "WHMCS_ORDER_NOT_PENDING",
            ErrorCode::WhmcsNotOwnedByClient => "WHMCS_NOT_OWNED_BY_CLIENT",
            ErrorCode::WhmcsNotRenewable => "WHMCS_NOT_RENEWABLE",
            ErrorCode::WhmcsExpectedArray => "WHMCS_EXPECTED_ARRAY",
            ErrorCode::WhmcsMissingParameter => "WHMCS_MISSING_PARAMETER",
            ErrorCode::WhmcsUnknownAction => "WHMCS_UNKNOWN_ACTION",
            ErrorCode::WhmcsError => "WHMCS_ERROR",
            ErrorCode::WhmcsAuthenticationFailed => "WHMCS_AUTHENTICATION_FAILED",
            ErrorCode::WhmcsIpNotAllowed => "WHMCS_IP_NOT_ALLOWED",
            ErrorCode::WhmcsAccessDenied => "WHMCS_ACCESS_DENIED",
            ErrorCode::WhmcsCredentials => "WHMCS_CREDENTIALS",
            ErrorCode::WhmcsConfiguration => "WHMCS_CONFIGURATION",
            ErrorCode::WhmcsHttpError => "WHMCS_HTTP_ERROR",
            ErrorCode::WhmcsUnexpectedAnswer => "WHMCS_UNEXPECTED_ANSWER",
            ErrorCode::WhmcsRateLimited => "WHMCS_RATE_LIMITED",
            ErrorCode::WhmcsUnavailable => "WHMCS_UNAVAILABLE",
            ErrorCode::WhmcsUnreachable => "WHMCS_UNREACHABLE",
            ErrorCode::WhmcsNoAnswer => "WHMCS_NO_ANSWER",
            ErrorCode::WhmcsAnswerLost => "WHMCS_ANSWER_LOST",
            ErrorCode::WhmcsGaveUp => "WHMCS_GAVE_UP",
            ErrorCode::WhmcsReconcileAmbiguous => "WHMCS_RECONCILE_AMBIGUOUS",
            ErrorCode::WhmcsServicesMismatch => "WHMCS_SERVICES_MISMATCH",
        }
    }

    /// The code whose text is exactly `s` (case-sensitive, no surrounding spaces), if any.
    pub fn parse(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.as_str() == s)
    }

    /// The code a `CODE: message` text (a [`crate::failure::Failure`] as written) starts with, if
    /// any.
    pub fn of_text(text: &str) -> Option<ErrorCode> {
        text.split(':').next().and_then(ErrorCode::parse)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Tests and logs compare a code with its text.
impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<ErrorCode> for &str {
    fn eq(&self, other: &ErrorCode) -> bool {
        *self == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_code_round_trips_through_its_text_and_serde() {
        for &code in ErrorCode::ALL {
            let text = code.as_str();
            assert_eq!(ErrorCode::parse(text), Some(code), "{text}");
            assert_eq!(code.to_string(), text);

            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(
                json,
                format!("\"{text}\""),
                "serde spells {code:?} differently"
            );
            let back: ErrorCode = serde_json::from_str(&json).unwrap();
            assert_eq!(back, code);
        }
        assert_eq!(ErrorCode::parse("maxio_no_billing_email"), None);
        assert_eq!(ErrorCode::parse("MAXIO_NO_BILLING_EMAIL "), None);
        assert_eq!(ErrorCode::parse(""), None);
        assert_eq!(
            ErrorCode::of_text("MAXIO_GAVE_UP: last error: MAXIO_UNAVAILABLE: 503"),
            Some(ErrorCode::MaxioGaveUp)
        );
        assert_eq!(
            ErrorCode::of_text("MAXIO_GAVE_UP"),
            Some(ErrorCode::MaxioGaveUp)
        );
        assert_eq!(ErrorCode::of_text("Core link pending: MAXIO_GAVE_UP"), None);
        assert_eq!(ErrorCode::of_text(""), None);
        assert!(serde_json::from_str::<ErrorCode>("\"NOT_A_CODE\"").is_err());
    }

    #[test]
    fn all_has_no_duplicates_and_follows_the_declaration() {
        let mut seen = BTreeSet::new();
        for &code in ErrorCode::ALL {
            assert!(seen.insert(code), "{code} is listed twice in ALL");
        }
        let texts: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(texts.len(), ErrorCode::ALL.len(), "two codes share a text");
        // Listed in declaration order, so a variant left out of ALL shifts every later one.
        for (i, &code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(
                code as usize, i,
                "{code} is not where its declaration puts it"
            );
        }
        assert_eq!(
            ErrorCode::WhmcsServicesMismatch as usize + 1,
            ErrorCode::ALL.len(),
            "the last declared variant must close ALL"
        );
    }

    fn looks_like_a_code(token: &str) -> bool {
        token.contains('_')
            && token.starts_with(|c: char| c.is_ascii_uppercase())
            && !token.ends_with('_')
            && !token.contains("__")
            && token
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
    }

    /// The codes the runbook's "Error codes" section lists: the backticked SCREAMING_SNAKE_CASE
    /// tokens in the first cell (the "Code" column) of its table rows. Backticked names elsewhere
    /// in a row (environment variables such as `MAXIO_CORE_CONTRACT_FIELD`, codes named in a
    /// cause) are not listings.
    fn runbook_codes(runbook: &str) -> BTreeSet<&str> {
        let mut codes = BTreeSet::new();
        let mut in_section = false;
        for line in runbook.lines() {
            let line = line.trim();
            if let Some(heading) = line.strip_prefix("## ") {
                in_section = heading.trim() == "Error codes";
                continue;
            }
            if !in_section {
                continue;
            }
            let Some(row) = line.strip_prefix('|') else {
                continue;
            };
            let first_cell = row.split('|').next().unwrap_or_default();
            codes.extend(
                first_cell
                    .split('`')
                    .skip(1)
                    .step_by(2)
                    .map(str::trim)
                    .filter(|t| looks_like_a_code(t)),
            );
        }
        codes
    }

    #[test]
    fn the_runbook_lists_exactly_the_error_codes() {
        let runbook = include_str!("../../docs/runbook.md");
        let listed = runbook_codes(runbook);
        assert!(
            !listed.is_empty(),
            "no codes found in the runbook's \"## Error codes\" section; did its format change?"
        );
        let known: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        let undocumented: Vec<&str> = known.difference(&listed).copied().collect();
        let unknown: Vec<&str> = listed.difference(&known).copied().collect();
        assert!(
            undocumented.is_empty() && unknown.is_empty(),
            "docs/runbook.md and ErrorCode disagree.\n  \
             in ErrorCode but not in the runbook's error-code tables: {undocumented:?}\n  \
             in the runbook's error-code tables but not in ErrorCode: {unknown:?}"
        );
    }

    #[test]
    fn the_runbook_reader_takes_only_the_code_column_of_that_section() {
        let doc = "# t\n\n| `NOT_HERE` | x |\n\n## Error codes\n\n| Code | Cause | Action |\n\
                   |---|---|---|\n| `A_B`, `C_D` | needs `ENV_VAR` | set `OTHER_VAR` |\n\
                   | `Pending`, `E_F` | x | y |\n\n### Sub\n\n| `G_H` | x |\n\
                   Text `PROSE_CODE`.\n\n## Next\n\n| `AFTER_IT` | x |\n";
        assert_eq!(
            runbook_codes(doc).into_iter().collect::<Vec<_>>(),
            ["A_B", "C_D", "E_F", "G_H"]
        );
    }
}
