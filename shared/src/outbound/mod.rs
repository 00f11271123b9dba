//! Salesforce Outbound Messages (SOAP): parsing notifications, the acknowledgement and faults.
//!
//! Salesforce POSTs a SOAP 1.1 envelope (`text/xml`) whose Body holds one `<notifications>` element
//! in the `http://soap.sforce.com/2005/09/outbound` namespace with 1 to 100 `<Notification>`s. The
//! receiver answers with [`ack`] (HTTP 200) or a SOAP fault built by [`fault`].
//!
//! [`parse`] reads the body with `quick_xml::NsReader` and matches elements by namespace URI, never
//! by prefix. The endpoint faces the internet, so the parser is deliberately strict about the
//! constructs XML attacks rely on:
//!
//! * input larger than [`MAX_BODY_BYTES`] is refused before any parsing;
//! * document type declarations (`<!DOCTYPE`, in any casing, with any whitespace after `<!`, and
//!   stray `<!ENTITY`/`<!ELEMENT`/`<!ATTLIST`/`<!NOTATION` markup) are refused, so no entity is ever
//!   declared, let alone expanded;
//! * only the five predefined entities and numeric character references are resolved; any other
//!   `&name;` reference, in text or in an attribute value, is an error;
//! * processing instructions are refused; an XML declaration is accepted only at the very start
//!   and only if it names UTF-8 (or no encoding);
//! * the body must be UTF-8 and hold only characters XML allows;
//! * elements may nest at most [`MAX_DEPTH`] deep, including inside tolerated unknown elements.
//!
//! The session id Salesforce may send is a live credential: the parser records only whether one
//! was present and drops the text at once; error messages never quote it.

mod parse;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::salesforce::IdError;

/// The most notifications Salesforce puts in one message.
pub const MAX_NOTIFICATIONS: usize = 100;

/// The largest body [`parse`] accepts (1 MiB); larger input is refused before parsing.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The deepest element nesting [`parse`] accepts (a real message nests 6 deep).
pub const MAX_DEPTH: usize = 32;

/// The SOAP 1.1 envelope namespace.
pub const SOAP_ENVELOPE_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// The namespace of `<notifications>` and its children.
pub const OUTBOUND_NS: &str = "http://soap.sforce.com/2005/09/outbound";
/// The namespace of sObject types and fields (the enterprise WSDL).
pub const SOBJECT_NS: &str = "urn:sobject.enterprise.soap.sforce.com";
/// The XML Schema instance namespace (`xsi:type`, `xsi:nil`).
pub const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// One parsed Outbound Message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundMessage {
    /// The sending org's Id as sent (15 or 18 characters); it passed `SfId::parse`.
    pub organization_id: String,
    /// The outbound message action's Id, if sent.
    pub action_id: Option<String>,
    /// Whether a session id was sent. The session id itself is never kept.
    pub session_id_present: bool,
    /// The enterprise API endpoint of the org, if sent.
    pub enterprise_url: Option<String>,
    /// The partner API endpoint of the org, if sent.
    pub partner_url: Option<String>,
    /// 1 to [`MAX_NOTIFICATIONS`] notifications, in document order.
    pub notifications: Vec<Notification>,
}

/// One `<Notification>`: a record and the fields chosen in the outbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The notification Id (validated as a Salesforce Id, kept as sent), the key for
    /// de-duplicating redeliveries.
    pub id: String,
    /// The sObject type from `xsi:type` (`Opportunity`, `Order`, ...), without its prefix.
    pub sobject_type: String,
    /// The raw text of the `sf:Id` field, unvalidated, if sent.
    pub record_id: Option<String>,
    /// Every field in the sObject namespace that holds text, by local name (including `Id`).
    /// Fields sent with `xsi:nil="true"` and fields holding child elements are left out.
    pub fields: BTreeMap<String, String>,
}

/// Parses the body of an Outbound Message request.
pub fn parse(body: &[u8]) -> Result<OutboundMessage, OutboundError> {
    parse::parse(body)
}

const ACK: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
    "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"\n",
    "    xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" ",
    "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n",
    " <soapenv:Body>\n",
    "  <notificationsResponse xmlns=\"http://soap.sforce.com/2005/09/outbound\">\n",
    "   <Ack>true</Ack>\n",
    "  </notificationsResponse>\n",
    " </soapenv:Body>\n",
    "</soapenv:Envelope>\n",
);

/// The acknowledgement body Salesforce expects with HTTP 200 (`<Ack>true</Ack>`).
pub fn ack() -> String {
    ACK.to_owned()
}

/// Who a SOAP fault blames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultCode {
    /// The request was wrong; resending it unchanged will fail again.
    Client,
    /// The receiver failed; the request may succeed later.
    Server,
}

impl FaultCode {
    /// The `faultcode` text, qualified with the envelope's `soapenv` prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultCode::Client => "soapenv:Client",
            FaultCode::Server => "soapenv:Server",
        }
    }
}

/// A SOAP 1.1 Fault body with the given code and (escaped) message.
pub fn fault(code: FaultCode, message: &str) -> String {
    let mut out = String::with_capacity(400 + message.len());
    out.push_str(concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">\n",
        " <soapenv:Body>\n",
        "  <soapenv:Fault>\n",
        "   <faultcode>",
    ));
    out.push_str(code.as_str());
    out.push_str("</faultcode>\n   <faultstring>");
    escape_into(&mut out, message);
    out.push_str(concat!(
        "</faultstring>\n",
        "  </soapenv:Fault>\n",
        " </soapenv:Body>\n",
        "</soapenv:Envelope>\n",
    ));
    out
}

/// Escapes `text` for XML character data or attribute values. Characters XML cannot carry at all
/// become U+FFFD so the result is always well-formed.
fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c if parse::is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

/// Why a body is not an acceptable Outbound Message. Every message is a sentence naming the
/// problem; text taken from the body is shortened and escaped, and the session id never appears.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("the body is empty")]
    Empty,
    #[error("the body is {size} bytes; at most {limit} bytes are accepted")]
    TooLarge { size: usize, limit: usize },
    #[error(
        "the XML declares a DOCTYPE (at byte {position}); document type declarations and entities are refused"
    )]
    Doctype { position: u64 },
    #[error("the body is not UTF-8 (invalid byte sequence at byte {position})")]
    NotUtf8 { position: usize },
    #[error("the XML declaration names the encoding {0}; only UTF-8 is accepted")]
    UnsupportedEncoding(String),
    #[error(
        "the body contains the character U+{code:04X} at byte {position}, which XML does not allow"
    )]
    InvalidCharacter { code: u32, position: u64 },
    #[error(
        "the body refers to the undeclared entity {} at byte {position}; only the five predefined XML entities and numeric character references are allowed",
        entity_phrase(.name)
    )]
    UndeclaredEntity { name: Option<String>, position: u64 },
    #[error(
        "the body holds the processing instruction <?{target} ...?> at byte {position}; processing instructions are refused (only an XML declaration at the very start is allowed)"
    )]
    ProcessingInstruction { target: String, position: u64 },
    #[error("elements are nested more than {limit} deep (at byte {position})")]
    TooDeep { limit: usize, position: u64 },
    #[error("the namespace prefix {prefix} is used at byte {position} but never declared")]
    UndeclaredPrefix { prefix: String, position: u64 },
    #[error("the body is not well-formed XML: {detail} (at byte {position})")]
    NotWellFormed { detail: String, position: u64 },
    #[error("expected a SOAP 1.1 Envelope, found <{found}> {}", namespace_phrase(.namespace))]
    NotAnEnvelope {
        found: String,
        namespace: Option<String>,
    },
    #[error("expected {expected} inside <{parent}>, found <{found}> {}", namespace_phrase(.namespace))]
    UnexpectedElement {
        parent: &'static str,
        expected: &'static str,
        found: String,
        namespace: Option<String>,
    },
    #[error("<{parent}> holds text where only elements are expected")]
    UnexpectedText { parent: &'static str },
    #[error("the SOAP Envelope has no Body")]
    MissingBody,
    #[error("the SOAP Body holds no <notifications> element in namespace {OUTBOUND_NS}")]
    MissingNotifications,
    #[error("{} more than one <{element}>", holder_phrase(*.notification))]
    Duplicate {
        element: &'static str,
        notification: Option<usize>,
    },
    #[error("<{element}> {}must hold text only, but holds child elements", in_notification_phrase(*.notification))]
    NotText {
        element: &'static str,
        notification: Option<usize>,
    },
    #[error("the message has no <OrganizationId>")]
    MissingOrganizationId,
    #[error("OrganizationId {value} is not a valid Salesforce Id: {source}")]
    InvalidOrganizationId {
        value: String,
        #[source]
        source: IdError,
    },
    #[error("the message holds no notifications; Salesforce sends at least 1")]
    NoNotifications,
    #[error("the message holds {0} notifications; Salesforce sends at most {MAX_NOTIFICATIONS}")]
    TooManyNotifications(usize),
    #[error("notification {index} has no <Id>")]
    MissingNotificationId { index: usize },
    #[error("notification {index} has an empty <Id>")]
    EmptyNotificationId { index: usize },
    #[error("notification {index} has the <Id> {value}, which is not a Salesforce Id: {source}")]
    InvalidNotificationId {
        index: usize,
        value: String,
        #[source]
        source: IdError,
    },
    #[error("notification {index} has no <sObject>")]
    MissingSObject { index: usize },
    #[error("the sObject of notification {index} has no xsi:type attribute naming its type")]
    MissingSObjectType { index: usize },
    #[error("the sObject of notification {index} has xsi:type {value}, {reason}")]
    InvalidSObjectType {
        index: usize,
        value: String,
        reason: String,
    },
    #[error("the sObject of notification {index} has the field {field} more than once")]
    DuplicateField { index: usize, field: String },
}

impl OutboundError {
    /// The element at fault, when the problem is tied to one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            OutboundError::NotAnEnvelope { .. } => Some("Envelope"),
            OutboundError::MissingBody => Some("Body"),
            OutboundError::MissingNotifications => Some("notifications"),
            OutboundError::UnexpectedElement { parent, .. }
            | OutboundError::UnexpectedText { parent } => Some(parent),
            OutboundError::Duplicate { element, .. } | OutboundError::NotText { element, .. } => {
                Some(element)
            }
            OutboundError::MissingOrganizationId | OutboundError::InvalidOrganizationId { .. } => {
                Some("OrganizationId")
            }
            OutboundError::NoNotifications | OutboundError::TooManyNotifications(_) => {
                Some("Notification")
            }
            OutboundError::MissingNotificationId { .. }
            | OutboundError::EmptyNotificationId { .. }
            | OutboundError::InvalidNotificationId { .. } => Some("Id"),
            OutboundError::MissingSObject { .. }
            | OutboundError::MissingSObjectType { .. }
            | OutboundError::InvalidSObjectType { .. }
            | OutboundError::DuplicateField { .. } => Some("sObject"),
            OutboundError::Empty
            | OutboundError::TooLarge { .. }
            | OutboundError::Doctype { .. }
            | OutboundError::NotUtf8 { .. }
            | OutboundError::UnsupportedEncoding(_)
            | OutboundError::InvalidCharacter { .. }
            | OutboundError::UndeclaredEntity { .. }
            | OutboundError::ProcessingInstruction { .. }
            | OutboundError::TooDeep { .. }
            | OutboundError::UndeclaredPrefix { .. }
            | OutboundError::NotWellFormed { .. } => None,
        }
    }
}

fn namespace_phrase(namespace: &Option<String>) -> String {
    match namespace {
        Some(ns) => format!("in namespace {ns}"),
        None => "in no namespace".to_owned(),
    }
}

fn entity_phrase(name: &Option<String>) -> String {
    match name {
        Some(name) => format!("&{name};"),
        None => "reference inside <SessionId>".to_owned(),
    }
}

fn holder_phrase(notification: Option<usize>) -> String {
    match notification {
        Some(index) => format!("notification {index} has"),
        None => "the message has".to_owned(),
    }
}

fn in_notification_phrase(notification: Option<usize>) -> String {
    let mut out = String::new();
    if let Some(index) = notification {
        let _ = write!(out, "in notification {index} ");
    }
    out
}
