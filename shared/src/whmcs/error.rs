//! WHMCS errors: refused credentials, `result: error` answers (HTTP 200) classified into stable
//! codes, HTTP and transport failures, unreadable answers, and the write whose answer was lost.
//!
//! A lost answer to `AddOrder` is its own variant ([`WhmcsError::AnswerLost`],
//! [`WhmcsError::is_ambiguous`]): the order may exist, so the caller reconciles (GetOrders) instead
//! of sending it again.

use crate::codes::ErrorCode;
use std::time::Duration;

/// What a WHMCS `result: error` message means, as far as its documented texts tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiErrorKind {
    /// `Client ID Not Found` (AddOrder), `Client Not Found` (GetClientsDetails).
    ClientNotFound,
    /// `Unable to add order when client status is Closed`.
    ClientClosed,
    /// `No items added to cart so order cannot proceed` (what an invalid or inactive pid leads to),
    /// or a message naming an invalid product.
    InvalidProduct,
    /// A message about the billing cycle (the exact text is not documented).
    InvalidBillingCycle,
    /// `Invalid Payment Method. Valid options include ...`.
    InvalidPaymentMethod,
    /// A message about the promotion code (the exact text is not documented).
    InvalidPromoCode,
    /// `Addon ID invalid`.
    InvalidAddon,
    /// `Order ID not found or Status not Pending` (AcceptOrder; also a repeated accept).
    OrderNotPending,
    /// `Order ID Not Found` without the status clause.
    OrderNotFound,
    /// `Service ID not owned by Client ID provided`, `Domain not owned by Client ID provided`.
    NotOwnedByClient,
    /// `Service ID xxx can not be renewed at this time.`, `Domain status is set to '..' and cannot
    /// be renewed`.
    NotRenewable,
    /// `Expecting parameter '<name>' to be an array`.
    ExpectedArray,
    /// `Either clientid Or email Is Required` and other missing-parameter messages.
    MissingParameter,
    /// `Command Not Found`, `Empty action request`: the action is unknown to this WHMCS.
    UnknownAction,
    /// Anything else (a provisioning module's or registrar's own message, for instance).
    Other,
}

impl ApiErrorKind {
    /// Classifies a WHMCS error message (case-insensitively, on its documented wording).
    pub fn classify(message: &str) -> ApiErrorKind {
        let m = message.trim().to_lowercase();
        let has = |s: &str| m.contains(s);
        if m.starts_with("expecting parameter") {
            ApiErrorKind::ExpectedArray
        } else if has("status not pending") {
            ApiErrorKind::OrderNotPending
        } else if has("order id not found") || has("order not found") {
            ApiErrorKind::OrderNotFound
        } else if has("client id not found") || has("client not found") {
            ApiErrorKind::ClientNotFound
        } else if has("client status is closed") {
            ApiErrorKind::ClientClosed
        } else if has("invalid payment method") {
            ApiErrorKind::InvalidPaymentMethod
        } else if has("no items added to cart")
            || has("invalid product")
            || has("product id not found")
            || has("invalid pid")
        {
            ApiErrorKind::InvalidProduct
        } else if has("billing cycle") || has("billingcycle") {
            ApiErrorKind::InvalidBillingCycle
        } else if has("promo") {
            ApiErrorKind::InvalidPromoCode
        } else if has("addon id invalid") || has("invalid addon") {
            ApiErrorKind::InvalidAddon
        } else if has("not owned by client") {
            ApiErrorKind::NotOwnedByClient
        } else if has("cannot be renewed") || has("can not be renewed") {
            ApiErrorKind::NotRenewable
        } else if has("command not found")
            || has("empty action request")
            || has("invalid action")
            || has("action not found")
        {
            ApiErrorKind::UnknownAction
        } else if has("is required") || has("missing parameter") {
            ApiErrorKind::MissingParameter
        } else {
            ApiErrorKind::Other
        }
    }

    /// The stable code written to Salesforce.
    pub fn code(self) -> ErrorCode {
        match self {
            ApiErrorKind::ClientNotFound => ErrorCode::WhmcsClientNotFound,
            ApiErrorKind::ClientClosed => ErrorCode::WhmcsClientClosed,
            ApiErrorKind::InvalidProduct => ErrorCode::WhmcsInvalidProduct,
            ApiErrorKind::InvalidBillingCycle => ErrorCode::WhmcsInvalidBillingCycle,
            ApiErrorKind::InvalidPaymentMethod => ErrorCode::WhmcsInvalidPaymentMethod,
            ApiErrorKind::InvalidPromoCode => ErrorCode::WhmcsInvalidPromoCode,
            ApiErrorKind::InvalidAddon => ErrorCode::WhmcsInvalidAddon,
            ApiErrorKind::OrderNotPending => ErrorCode::WhmcsOrderNotPending,
            ApiErrorKind::OrderNotFound => ErrorCode::WhmcsOrderNotFound,
            ApiErrorKind::NotOwnedByClient => ErrorCode::WhmcsNotOwnedByClient,
            ApiErrorKind::NotRenewable => ErrorCode::WhmcsNotRenewable,
            ApiErrorKind::ExpectedArray => ErrorCode::WhmcsExpectedArray,
            ApiErrorKind::MissingParameter => ErrorCode::WhmcsMissingParameter,
            ApiErrorKind::UnknownAction => ErrorCode::WhmcsUnknownAction,
            ApiErrorKind::Other => ErrorCode::WhmcsError,
        }
    }
}

/// Whether a WHMCS message is about credentials or access rather than the request: these come
/// with 403 (or 400 for `Invalid IP`), and from some versions with HTTP 200.
pub fn is_authentication_message(message: &str) -> bool {
    let m = message.trim().to_lowercase();
    [
        "authentication failed",
        "invalid or missing credentials",
        "invalid ip",
        "invalid password provided",
        "administrator account disabled",
        "access denied",
        "invalid access key",
        "invalid api credentials",
    ]
    .iter()
    .any(|p| m.starts_with(p))
}

#[derive(Debug, thiserror::Error)]
pub enum WhmcsError {
    /// WHMCS refused the credentials, the IP or the API role (403, or an authentication message).
    /// Permanent until someone fixes the configuration.
    #[error("{}: {}", self.code(), self.message())]
    Authentication { status: u16, message: String },
    /// `result: error` (normally with HTTP 200): WHMCS read the request and refused it.
    #[error("{}: {}", self.code(), self.message())]
    Api { action: String, message: String },
    /// An HTTP status without a WHMCS answer (429, 5xx from WHMCS or a proxy in front of it, ...).
    #[error("{}: {}", self.code(), self.message())]
    Http {
        status: u16,
        body: String,
        retry_after: Option<Duration>,
    },
    /// No connection was made (DNS, refused, TLS handshake): the request certainly did not arrive.
    #[error("{}: {}", self.code(), self.message())]
    Connect(String),
    /// The connection failed or timed out after the request may have been sent.
    #[error("{}: {}", self.code(), self.message())]
    Transport(String),
    /// A successful status whose body is not a WHMCS answer, or an answer missing what it should hold.
    #[error("{}: {}", self.code(), self.message())]
    Malformed { action: String, detail: String },
    /// A write (AddOrder) that may have been processed but whose answer was not read: `cause` says
    /// why. Not retried; reconcile against GetOrders first.
    #[error("{}: {}", self.code(), self.message())]
    AnswerLost {
        action: String,
        #[source]
        cause: Box<WhmcsError>,
    },
    /// The API credentials could not be read from the secret store.
    #[error("{}: {}", self.code(), self.message())]
    Credentials { message: String, retryable: bool },
    /// The request was refused before sending (no lines, an unknown billing cycle, ...).
    #[error("{}: {}", self.code(), self.message())]
    InvalidRequest(String),
    /// The client settings are unusable (base URL).
    #[error("{}: {}", self.code(), self.message())]
    Configuration(String),
}

impl WhmcsError {
    /// Builds the error for a WHMCS error message: credentials problems become
    /// [`WhmcsError::Authentication`], everything else [`WhmcsError::Api`].
    pub fn from_message(action: &str, status: u16, message: impl Into<String>) -> WhmcsError {
        let message = message.into();
        if status == 401 || status == 403 || is_authentication_message(&message) {
            WhmcsError::Authentication { status, message }
        } else {
            WhmcsError::Api {
                action: action.to_string(),
                message,
            }
        }
    }

    /// Whether trying the same request again later may succeed (for requests that are safe to
    /// repeat; AddOrder follows stricter rules in the client).
    pub fn is_retryable(&self) -> bool {
        match self {
            WhmcsError::Http { status, .. } => *status == 408 || *status == 429 || *status >= 500,
            WhmcsError::Connect(_) | WhmcsError::Transport(_) => true,
            WhmcsError::Credentials { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// True when a write may or may not have happened: the caller must look (GetOrders) before
    /// deciding to send it again.
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, WhmcsError::AnswerLost { .. })
    }

    /// Whether the request certainly was not processed, so even AddOrder may be sent again: no
    /// connection was made, or WHMCS (or its front) turned it away with 429/503.
    pub fn certainly_not_processed(&self) -> bool {
        match self {
            WhmcsError::Connect(_) => true,
            WhmcsError::Http { status, .. } => *status == 429 || *status == 503,
            _ => false,
        }
    }

    /// Whether the request may have been processed although no WHMCS answer was read.
    pub fn may_have_been_processed(&self) -> bool {
        match self {
            WhmcsError::Transport(_) | WhmcsError::Malformed { .. } => true,
            WhmcsError::Http { status, .. } => *status == 408 || (*status >= 500 && *status != 503),
            _ => false,
        }
    }

    /// The wait the server asked for (`Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            WhmcsError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The kind of a `result: error` answer (also through a lost answer's cause: none).
    pub fn api_kind(&self) -> Option<ApiErrorKind> {
        match self {
            WhmcsError::Api { message, .. } => Some(ApiErrorKind::classify(message)),
            _ => None,
        }
    }

    /// A stable code for Salesforce.
    pub fn code(&self) -> ErrorCode {
        match self {
            WhmcsError::Authentication { message, .. } => {
                let m = message.trim().to_lowercase();
                if m.starts_with("invalid ip") {
                    ErrorCode::WhmcsIpNotAllowed
                } else if m.starts_with("access denied") {
                    ErrorCode::WhmcsAccessDenied
                } else {
                    ErrorCode::WhmcsAuthenticationFailed
                }
            }
            WhmcsError::Api { message, .. } => ApiErrorKind::classify(message).code(),
            WhmcsError::Http { status: 429, .. } => ErrorCode::WhmcsRateLimited,
            WhmcsError::Http { status, .. } if *status >= 500 => ErrorCode::WhmcsUnavailable,
            WhmcsError::Http { .. } => ErrorCode::WhmcsHttpError,
            WhmcsError::Connect(_) => ErrorCode::WhmcsUnreachable,
            WhmcsError::Transport(_) => ErrorCode::WhmcsNoAnswer,
            WhmcsError::Malformed { .. } => ErrorCode::WhmcsUnexpectedAnswer,
            WhmcsError::AnswerLost { .. } => ErrorCode::WhmcsAnswerLost,
            WhmcsError::Credentials { .. } => ErrorCode::WhmcsCredentials,
            WhmcsError::InvalidRequest(_) => ErrorCode::WhmcsInvalidRequest,
            WhmcsError::Configuration(_) => ErrorCode::WhmcsConfiguration,
        }
    }

    /// What happened, without the code: WHMCS's own message for `Api` and `Authentication`.
    pub fn message(&self) -> String {
        match self {
            WhmcsError::Authentication { message, .. } => message.clone(),
            WhmcsError::Api { message, .. } => message.clone(),
            WhmcsError::Http { status, body, .. } if body.is_empty() => {
                format!("WHMCS answered HTTP {status}")
            }
            WhmcsError::Http { status, body, .. } => {
                format!("WHMCS answered HTTP {status}: {body}")
            }
            WhmcsError::Connect(detail) => format!("could not connect to WHMCS: {detail}"),
            WhmcsError::Transport(detail) => format!("no answer from WHMCS: {detail}"),
            WhmcsError::Malformed { action, detail } => {
                format!("unexpected answer from WHMCS to {action}: {detail}")
            }
            WhmcsError::AnswerLost { action, cause } => format!(
                "{action} may have been processed but its answer was lost ({}: {}); \
                 check WHMCS before sending it again",
                cause.code(),
                cause.message()
            ),
            WhmcsError::Credentials { message, .. } => {
                format!("WHMCS credentials unavailable: {message}")
            }
            WhmcsError::InvalidRequest(detail) => detail.clone(),
            WhmcsError::Configuration(detail) => detail.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(message: &str) -> WhmcsError {
        WhmcsError::from_message("AddOrder", 200, message)
    }

    #[test]
    fn documented_messages_map_to_stable_codes() {
        let cases = [
            ("Client ID Not Found", "WHMCS_CLIENT_NOT_FOUND"),
            ("Client Not Found", "WHMCS_CLIENT_NOT_FOUND"),
            (
                "Unable to add order when client status is Closed",
                "WHMCS_CLIENT_CLOSED",
            ),
            (
                "Invalid Payment Method. Valid options include mailin,paypal",
                "WHMCS_INVALID_PAYMENT_METHOD",
            ),
            (
                "No items added to cart so order cannot proceed",
                "WHMCS_INVALID_PRODUCT",
            ),
            ("Invalid Product ID", "WHMCS_INVALID_PRODUCT"),
            ("Invalid Billing Cycle", "WHMCS_INVALID_BILLING_CYCLE"),
            ("Addon ID invalid", "WHMCS_INVALID_ADDON"),
            (
                "Order ID not found or Status not Pending",
                "WHMCS_ORDER_NOT_PENDING",
            ),
            ("Order ID Not Found", "WHMCS_ORDER_NOT_FOUND"),
            (
                "Service ID not owned by Client ID provided",
                "WHMCS_NOT_OWNED_BY_CLIENT",
            ),
            (
                "Domain not owned by Client ID provided",
                "WHMCS_NOT_OWNED_BY_CLIENT",
            ),
            (
                "Domain status is set to 'Cancelled' and cannot be renewed",
                "WHMCS_NOT_RENEWABLE",
            ),
            (
                "Service ID 12 can not be renewed at this time.",
                "WHMCS_NOT_RENEWABLE",
            ),
            (
                "Expecting parameter 'pid' to be an array",
                "WHMCS_EXPECTED_ARRAY",
            ),
            (
                "Expecting parameter 'billingcycle' to be an array",
                "WHMCS_EXPECTED_ARRAY",
            ),
            (
                "Either clientid Or email Is Required",
                "WHMCS_MISSING_PARAMETER",
            ),
            ("Command Not Found", "WHMCS_UNKNOWN_ACTION"),
            ("Empty action request", "WHMCS_UNKNOWN_ACTION"),
            ("Promotion Code Not Found", "WHMCS_INVALID_PROMO_CODE"),
            ("cPanel: Username already taken", "WHMCS_ERROR"),
        ];
        for (message, code) in cases {
            let e = api(message);
            assert_eq!(e.code(), code, "{message}");
            assert_eq!(e.message(), message);
            assert!(!e.is_retryable(), "{message}");
            assert!(!e.is_ambiguous(), "{message}");
        }
    }

    #[test]
    fn the_display_is_code_then_whmcs_message() {
        assert_eq!(
            api("Client ID Not Found").to_string(),
            "WHMCS_CLIENT_NOT_FOUND: Client ID Not Found"
        );
        assert_eq!(
            api("Order ID not found or Status not Pending").api_kind(),
            Some(ApiErrorKind::OrderNotPending)
        );
    }

    #[test]
    fn credential_messages_are_authentication_errors_whatever_the_status() {
        for (status, message, code) in [
            (403, "Authentication Failed", "WHMCS_AUTHENTICATION_FAILED"),
            (
                403,
                "Invalid or missing credentials",
                "WHMCS_AUTHENTICATION_FAILED",
            ),
            (400, "Invalid IP 203.0.113.9", "WHMCS_IP_NOT_ALLOWED"),
            (200, "Authentication Failed", "WHMCS_AUTHENTICATION_FAILED"),
            (200, "Access Denied", "WHMCS_ACCESS_DENIED"),
            (403, "something else", "WHMCS_AUTHENTICATION_FAILED"),
        ] {
            let e = WhmcsError::from_message("GetOrders", status, message);
            assert!(
                matches!(e, WhmcsError::Authentication { .. }),
                "{status} {message}"
            );
            assert_eq!(e.code(), code);
            assert!(!e.is_retryable());
        }
    }

    #[test]
    fn transient_failures_are_retryable_and_only_pre_processing_ones_are_safe_for_writes() {
        let http = |status| WhmcsError::Http {
            status,
            body: String::new(),
            retry_after: None,
        };
        assert!(http(429).is_retryable() && http(429).certainly_not_processed());
        assert!(http(503).is_retryable() && http(503).certainly_not_processed());
        assert!(http(500).is_retryable() && !http(500).certainly_not_processed());
        assert!(http(500).may_have_been_processed());
        assert!(http(504).may_have_been_processed());
        assert!(!http(404).is_retryable() && !http(404).may_have_been_processed());
        let connect = WhmcsError::Connect("connection refused".into());
        assert!(connect.is_retryable() && connect.certainly_not_processed());
        let timeout = WhmcsError::Transport("timed out".into());
        assert!(timeout.is_retryable() && timeout.may_have_been_processed());
        let malformed = WhmcsError::Malformed {
            action: "AddOrder".into(),
            detail: "not JSON".into(),
        };
        assert!(!malformed.is_retryable() && malformed.may_have_been_processed());
        assert_eq!(http(429).code(), "WHMCS_RATE_LIMITED");
        assert_eq!(http(502).code(), "WHMCS_UNAVAILABLE");
        assert_eq!(http(404).code(), "WHMCS_HTTP_ERROR");
    }

    #[test]
    fn a_lost_answer_is_ambiguous_not_retryable_and_says_why() {
        let e = WhmcsError::AnswerLost {
            action: "AddOrder".into(),
            cause: Box::new(WhmcsError::Transport("timed out".into())),
        };
        assert!(e.is_ambiguous());
        assert!(!e.is_retryable());
        assert_eq!(e.code(), "WHMCS_ANSWER_LOST");
        assert_eq!(
            e.to_string(),
            "WHMCS_ANSWER_LOST: AddOrder may have been processed but its answer was lost \
             (WHMCS_NO_ANSWER: no answer from WHMCS: timed out); check WHMCS before sending it again"
        );
        assert!(std::error::Error::source(&e).is_some());
    }
}
