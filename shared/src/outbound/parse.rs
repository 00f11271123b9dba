//! The Outbound Message parser: input screening, a checked token stream over `quick_xml::NsReader`,
//! and the grammar of the SOAP envelope.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};

use quick_xml::escape::EscapeError;
use quick_xml::events::{BytesDecl, BytesRef, BytesStart, Event};
use quick_xml::name::{NamespaceError, QName, ResolveResult};
use quick_xml::{NsReader, XmlVersion};

use super::{
    MAX_BODY_BYTES, MAX_DEPTH, MAX_NOTIFICATIONS, Notification, OUTBOUND_NS, OutboundError,
    OutboundMessage, SOAP_ENVELOPE_NS, SOBJECT_NS, XSI_NS,
};
use crate::salesforce::SfId;

/// Text copied from the body into an error message is cut to this many characters.
const CLIP_CHARS: usize = 64;

/// Markup keywords that only occur in document type declarations.
const DTD_KEYWORDS: [&[u8]; 5] = [b"DOCTYPE", b"ENTITY", b"ELEMENT", b"ATTLIST", b"NOTATION"];

pub(super) fn parse(body: &[u8]) -> Result<OutboundMessage, OutboundError> {
    if body.is_empty() {
        return Err(OutboundError::Empty);
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(OutboundError::TooLarge {
            size: body.len(),
            limit: MAX_BODY_BYTES,
        });
    }
    if let Some(position) = find_dtd_markup(body) {
        return Err(OutboundError::Doctype { position });
    }
    let text = std::str::from_utf8(body).map_err(|e| OutboundError::NotUtf8 {
        position: e.valid_up_to(),
    })?;
    let (offset, text) = match text.strip_prefix('\u{FEFF}') {
        Some(rest) => ('\u{FEFF}'.len_utf8(), rest),
        None => (0, text),
    };
    if let Some((index, c)) = text.char_indices().find(|&(_, c)| !is_xml_char(c)) {
        return Err(OutboundError::InvalidCharacter {
            code: u32::from(c),
            position: to_u64(index + offset),
        });
    }
    Parser {
        cursor: Cursor::new(text, to_u64(offset)),
    }
    .document()
}

/// The position of the first `<!` that opens DTD markup (`<!DOCTYPE`, `<!ENTITY`, ...), in any
/// casing and with any whitespace after `<!`. The scan is deliberately blunt: such text inside a
/// comment or CDATA section is refused too, which no genuine Outbound Message contains.
fn find_dtd_markup(body: &[u8]) -> Option<u64> {
    let mut start = 0;
    while let Some(found) = body
        .get(start..)
        .and_then(|rest| rest.windows(2).position(|w| w == b"<!"))
    {
        let at = start + found;
        let rest = body.get(at + 2..).unwrap_or_default();
        let blanks = rest.iter().take_while(|b| b.is_ascii_whitespace()).count();
        let rest = rest.get(blanks..).unwrap_or_default();
        let is_dtd = DTD_KEYWORDS.iter().any(|keyword| {
            rest.get(..keyword.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(keyword))
        });
        if is_dtd {
            return Some(to_u64(at));
        }
        start = at + 2;
    }
    None
}

/// The XML 1.0 `Char` production.
pub(super) fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn xml_trim(text: &str) -> &str {
    text.trim_matches(is_xml_space)
}

fn is_blank(text: &str) -> bool {
    text.chars().all(is_xml_space)
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Shortens text from the body for an error message, escaping control characters.
fn clip(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().take(CLIP_CHARS) {
        if c.is_control() || c == '\u{FEFF}' {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    if text.chars().nth(CLIP_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// An opening tag with its name resolved and the `xsi:` attributes the grammar needs.
#[derive(Debug)]
struct Element {
    namespace: Option<String>,
    local: String,
    /// `xsi:nil` is `true` or `1`.
    nil: bool,
    xsi_type: Option<XsiType>,
}

impl Element {
    fn is(&self, namespace: &str, local: &str) -> bool {
        self.in_namespace(namespace) && self.local == local
    }

    fn in_namespace(&self, namespace: &str) -> bool {
        self.namespace.as_deref() == Some(namespace)
    }
}

/// The value of an `xsi:type` attribute, a QName resolved against the namespaces in scope.
#[derive(Debug)]
struct XsiType {
    raw: String,
    namespace: TypeNamespace,
    local: String,
}

#[derive(Debug)]
enum TypeNamespace {
    NoPrefix,
    Bound(String),
    Undeclared(String),
}

#[derive(Debug)]
enum Token {
    Open(Element),
    /// Character data between two tags, references resolved, never at the top level.
    Text(String),
    Close,
    Eof,
}

/// A stream of [`Token`]s that enforces every document-wide rule: no DOCTYPE, no processing
/// instruction, no undeclared entity or prefix, bounded depth, a single root element.
struct Cursor<'a> {
    reader: NsReader<&'a [u8]>,
    /// Bytes stripped from the front of the body (a byte-order mark), added to positions.
    offset: u64,
    queue: VecDeque<Token>,
    /// Qualified names of the open elements.
    open: Vec<String>,
    started: bool,
    root_seen: bool,
    /// While set, entity names are not copied into errors (the text is a secret).
    redact: bool,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str, offset: u64) -> Self {
        let mut reader = NsReader::from_str(text);
        let config = reader.config_mut();
        config.enable_all_checks(true);
        config.expand_empty_elements = true;
        config.allow_dangling_amp = false;
        config.allow_unmatched_ends = false;
        config.trim_text(false);
        Cursor {
            reader,
            offset,
            queue: VecDeque::new(),
            open: Vec::new(),
            started: false,
            root_seen: false,
            redact: false,
        }
    }

    fn position(&self) -> u64 {
        self.offset + self.reader.buffer_position()
    }

    fn next(&mut self) -> Result<Token, OutboundError> {
        if let Some(token) = self.queue.pop_front() {
            return Ok(token);
        }
        let mut text: Option<(String, u64)> = None;
        loop {
            let position = self.position();
            let event = match self.reader.read_event() {
                Ok(event) => event,
                Err(error) => return Err(self.xml_error(error)),
            };
            let first = !self.started;
            self.started = true;
            match event {
                Event::Text(t) => push_text(&mut text, &t.xml10_content(), position),
                Event::CData(t) => push_text(&mut text, &t.xml10_content(), position),
                Event::GeneralRef(r) => {
                    let c = self.reference(&r, position)?;
                    push_text(&mut text, c.encode_utf8(&mut [0; 4]), position);
                }
                Event::Comment(_) => {}
                Event::Decl(decl) => {
                    if !first {
                        return Err(OutboundError::ProcessingInstruction {
                            target: "xml".to_owned(),
                            position,
                        });
                    }
                    check_declaration(&decl, position)?;
                }
                Event::PI(pi) => {
                    return Err(OutboundError::ProcessingInstruction {
                        target: clip(pi.target()),
                        position,
                    });
                }
                Event::DocType(_) => return Err(OutboundError::Doctype { position }),
                Event::Start(start) => {
                    let text = self.flush(text)?;
                    let open = Token::Open(self.open(&start, position)?);
                    return Ok(self.emit(text, open));
                }
                Event::Empty(start) => {
                    let text = self.flush(text)?;
                    let open = Token::Open(self.open(&start, position)?);
                    self.close();
                    let first = self.emit(text, open);
                    self.queue.push_back(Token::Close);
                    return Ok(first);
                }
                Event::End(_) => {
                    let text = self.flush(text)?;
                    self.close();
                    return Ok(self.emit(text, Token::Close));
                }
                Event::Eof => {
                    let text = self.flush(text)?;
                    self.eof(position)?;
                    return Ok(self.emit(text, Token::Eof));
                }
            }
        }
    }

    /// Returns `text` if there is one and queues `token` behind it; otherwise returns `token`.
    fn emit(&mut self, text: Option<Token>, token: Token) -> Token {
        match text {
            Some(text) => {
                self.queue.push_back(token);
                text
            }
            None => token,
        }
    }

    /// Turns collected character data into a token; at the top level only whitespace may occur.
    fn flush(&self, text: Option<(String, u64)>) -> Result<Option<Token>, OutboundError> {
        let Some((text, position)) = text else {
            return Ok(None);
        };
        if !self.open.is_empty() {
            Ok(Some(Token::Text(text)))
        } else if is_blank(&text) {
            Ok(None)
        } else {
            Err(OutboundError::NotWellFormed {
                detail: "text outside the root element".to_owned(),
                position,
            })
        }
    }

    fn open(&mut self, start: &BytesStart<'_>, position: u64) -> Result<Element, OutboundError> {
        if self.open.is_empty() && self.root_seen {
            return Err(OutboundError::NotWellFormed {
                detail: format!("a second root element <{}>", clip(start.name().0)),
                position,
            });
        }
        if self.open.len() >= MAX_DEPTH {
            return Err(OutboundError::TooDeep {
                limit: MAX_DEPTH,
                position,
            });
        }
        self.root_seen = true;
        self.open.push(clip(start.name().0));

        let resolver = self.reader.resolver();
        let (resolved, local) = resolver.resolve_element(start.name());
        let namespace = match resolved {
            ResolveResult::Bound(ns) => Some(ns.into_inner().to_owned()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(prefix) => {
                return Err(OutboundError::UndeclaredPrefix {
                    prefix: clip(&prefix),
                    position,
                });
            }
        };
        let mut element = Element {
            namespace,
            local: local.into_inner().to_owned(),
            nil: false,
            xsi_type: None,
        };

        for attribute in start.attributes() {
            let attribute = attribute.map_err(|e| OutboundError::NotWellFormed {
                detail: format!("a malformed attribute: {e}"),
                position,
            })?;
            if attribute.value.contains('<') {
                return Err(OutboundError::NotWellFormed {
                    detail: format!(
                        "the value of attribute {} contains '<'",
                        clip(attribute.key.0)
                    ),
                    position,
                });
            }
            let value = attribute
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| self.xml_error_at(e, position))?;
            if let Some(c) = value.chars().find(|&c| !is_xml_char(c)) {
                return Err(OutboundError::InvalidCharacter {
                    code: u32::from(c),
                    position,
                });
            }
            if attribute.key.as_namespace_binding().is_some() {
                continue;
            }
            let (resolved, local) = resolver.resolve_attribute(attribute.key);
            match resolved {
                ResolveResult::Unknown(prefix) => {
                    return Err(OutboundError::UndeclaredPrefix {
                        prefix: clip(&prefix),
                        position,
                    });
                }
                ResolveResult::Bound(ns) if ns.into_inner() == XSI_NS => match local.into_inner() {
                    "nil" => element.nil = matches!(xml_trim(&value), "true" | "1"),
                    "type" => element.xsi_type = Some(xsi_type(resolver, &value)),
                    _ => {}
                },
                _ => {}
            }
        }
        Ok(element)
    }

    fn close(&mut self) {
        self.open.pop();
    }

    fn eof(&self, position: u64) -> Result<(), OutboundError> {
        if let Some(name) = self.open.last() {
            return Err(OutboundError::NotWellFormed {
                detail: format!("the body ends before </{name}>"),
                position,
            });
        }
        if !self.root_seen {
            return Err(OutboundError::NotWellFormed {
                detail: "the body holds no element".to_owned(),
                position,
            });
        }
        Ok(())
    }

    /// Resolves `&name;`: the five predefined entities and character references, nothing else.
    fn reference(&self, reference: &BytesRef<'_>, position: u64) -> Result<char, OutboundError> {
        let name: &str = reference;
        if reference.is_char_ref() {
            return match reference.resolve_char_ref() {
                Ok(Some(c)) if is_xml_char(c) => Ok(c),
                Ok(Some(c)) => Err(OutboundError::InvalidCharacter {
                    code: u32::from(c),
                    position,
                }),
                Ok(None) | Err(_) => Err(OutboundError::NotWellFormed {
                    detail: if self.redact {
                        "an invalid character reference".to_owned()
                    } else {
                        format!("the invalid character reference &{};", clip(name))
                    },
                    position,
                }),
            };
        }
        match name {
            "lt" => Ok('<'),
            "gt" => Ok('>'),
            "amp" => Ok('&'),
            "apos" => Ok('\''),
            "quot" => Ok('"'),
            _ => Err(OutboundError::UndeclaredEntity {
                name: (!self.redact).then(|| clip(name)),
                position,
            }),
        }
    }

    fn xml_error(&self, error: quick_xml::Error) -> OutboundError {
        let position = self.offset + self.reader.error_position();
        self.xml_error_at(error, position)
    }

    fn xml_error_at(&self, error: quick_xml::Error, position: u64) -> OutboundError {
        match error {
            quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, name)) => {
                OutboundError::UndeclaredEntity {
                    name: (!self.redact).then(|| clip(&name)),
                    position,
                }
            }
            quick_xml::Error::Namespace(NamespaceError::UnknownPrefix(prefix)) => {
                OutboundError::UndeclaredPrefix {
                    prefix: clip(&prefix),
                    position,
                }
            }
            other => OutboundError::NotWellFormed {
                detail: other.to_string(),
                position,
            },
        }
    }
}

fn push_text(text: &mut Option<(String, u64)>, chunk: &str, position: u64) {
    text.get_or_insert_with(|| (String::new(), position))
        .0
        .push_str(chunk);
}

fn check_declaration(decl: &BytesDecl<'_>, position: u64) -> Result<(), OutboundError> {
    let malformed = |e: &dyn std::fmt::Display| OutboundError::NotWellFormed {
        detail: format!("a malformed XML declaration: {e}"),
        position,
    };
    decl.version().map_err(|e| malformed(&e))?;
    if let Some(encoding) = decl.encoding() {
        let encoding: Cow<'_, str> = encoding.map_err(|e| malformed(&e))?;
        if !encoding.eq_ignore_ascii_case("UTF-8") && !encoding.eq_ignore_ascii_case("UTF8") {
            return Err(OutboundError::UnsupportedEncoding(clip(&encoding)));
        }
    }
    Ok(())
}

fn xsi_type(resolver: &quick_xml::name::NamespaceResolver, value: &str) -> XsiType {
    let raw = xml_trim(value);
    let (local, prefix) = QName(raw).decompose();
    let namespace = match prefix {
        None => TypeNamespace::NoPrefix,
        Some(prefix) => match resolver.resolve_prefix(Some(prefix), false) {
            ResolveResult::Bound(ns) => TypeNamespace::Bound(ns.into_inner().to_owned()),
            ResolveResult::Unbound | ResolveResult::Unknown(_) => {
                TypeNamespace::Undeclared(prefix.into_inner().to_owned())
            }
        },
    };
    XsiType {
        raw: raw.to_owned(),
        namespace,
        local: local.into_inner().to_owned(),
    }
}

/// A Salesforce object API name: a letter, then letters, digits and underscores.
fn is_api_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 120
}

/// What an element with text content held.
enum Leaf {
    Text(String),
    /// The element held child elements; they were skipped.
    Nested,
}

/// The grammar of an Outbound Message over the checked token stream.
struct Parser<'a> {
    cursor: Cursor<'a>,
}

impl Parser<'_> {
    fn document(mut self) -> Result<OutboundMessage, OutboundError> {
        let root = match self.cursor.next()? {
            Token::Open(root) => root,
            _ => return Err(self.unexpected_end()),
        };
        if !root.is(SOAP_ENVELOPE_NS, "Envelope") {
            return Err(OutboundError::NotAnEnvelope {
                found: clip(&root.local),
                namespace: root.namespace.as_deref().map(clip),
            });
        }
        let message = self.envelope()?;
        match self.cursor.next()? {
            Token::Eof => Ok(message),
            _ => Err(OutboundError::NotWellFormed {
                detail: "content after the root element".to_owned(),
                position: self.cursor.position(),
            }),
        }
    }

    fn envelope(&mut self) -> Result<OutboundMessage, OutboundError> {
        let mut message = None;
        let mut header_seen = false;
        loop {
            match self.cursor.next()? {
                Token::Open(element)
                    if element.is(SOAP_ENVELOPE_NS, "Header")
                        && !header_seen
                        && message.is_none() =>
                {
                    header_seen = true;
                    self.skip()?;
                }
                Token::Open(element) if element.is(SOAP_ENVELOPE_NS, "Body") => {
                    if message.is_some() {
                        return Err(OutboundError::Duplicate {
                            element: "Body",
                            notification: None,
                        });
                    }
                    message = Some(self.body()?);
                }
                Token::Open(element) => {
                    return Err(unexpected(
                        "Envelope",
                        "a SOAP Header followed by a SOAP Body",
                        &element,
                    ));
                }
                Token::Text(text) => blank(&text, "Envelope")?,
                Token::Close => break,
                Token::Eof => return Err(self.unexpected_end()),
            }
        }
        message.ok_or(OutboundError::MissingBody)
    }

    fn body(&mut self) -> Result<OutboundMessage, OutboundError> {
        let mut message = None;
        loop {
            match self.cursor.next()? {
                Token::Open(element) if element.is(OUTBOUND_NS, "notifications") => {
                    if message.is_some() {
                        return Err(OutboundError::Duplicate {
                            element: "notifications",
                            notification: None,
                        });
                    }
                    message = Some(self.notifications()?);
                }
                Token::Open(element) => {
                    return Err(unexpected(
                        "Body",
                        "<notifications> in namespace http://soap.sforce.com/2005/09/outbound",
                        &element,
                    ));
                }
                Token::Text(text) => blank(&text, "Body")?,
                Token::Close => break,
                Token::Eof => return Err(self.unexpected_end()),
            }
        }
        message.ok_or(OutboundError::MissingNotifications)
    }

    fn notifications(&mut self) -> Result<OutboundMessage, OutboundError> {
        let mut organization_id: Option<String> = None;
        let mut action_id: Option<Option<String>> = None;
        let mut session_id_present: Option<bool> = None;
        let mut enterprise_url: Option<Option<String>> = None;
        let mut partner_url: Option<Option<String>> = None;
        let mut notifications = Vec::new();
        let mut count = 0usize;
        loop {
            let element = match self.cursor.next()? {
                Token::Open(element) if element.in_namespace(OUTBOUND_NS) => element,
                Token::Open(_) => {
                    self.skip()?;
                    continue;
                }
                Token::Text(text) => {
                    blank(&text, "notifications")?;
                    continue;
                }
                Token::Close => break,
                Token::Eof => return Err(self.unexpected_end()),
            };
            match element.local.as_str() {
                "OrganizationId" => {
                    once(&organization_id, "OrganizationId", None)?;
                    organization_id = Some(self.text("OrganizationId", None)?);
                }
                "ActionId" => {
                    once(&action_id, "ActionId", None)?;
                    action_id = Some(self.optional_text(&element, "ActionId")?);
                }
                "SessionId" => {
                    once(&session_id_present, "SessionId", None)?;
                    self.cursor.redact = true;
                    let session = self.optional_text(&element, "SessionId");
                    self.cursor.redact = false;
                    session_id_present = Some(session?.is_some());
                }
                "EnterpriseUrl" => {
                    once(&enterprise_url, "EnterpriseUrl", None)?;
                    enterprise_url = Some(self.optional_text(&element, "EnterpriseUrl")?);
                }
                "PartnerUrl" => {
                    once(&partner_url, "PartnerUrl", None)?;
                    partner_url = Some(self.optional_text(&element, "PartnerUrl")?);
                }
                "Notification" => {
                    count += 1;
                    let notification = self.notification(count)?;
                    if notifications.len() < MAX_NOTIFICATIONS {
                        notifications.push(notification);
                    }
                }
                _ => self.skip()?,
            }
        }

        let organization_id = organization_id.ok_or(OutboundError::MissingOrganizationId)?;
        if let Err(source) = SfId::parse(&organization_id) {
            return Err(OutboundError::InvalidOrganizationId {
                value: clip(&organization_id),
                source,
            });
        }
        if count == 0 {
            return Err(OutboundError::NoNotifications);
        }
        if count > MAX_NOTIFICATIONS {
            return Err(OutboundError::TooManyNotifications(count));
        }
        Ok(OutboundMessage {
            organization_id,
            action_id: action_id.flatten(),
            session_id_present: session_id_present.unwrap_or(false),
            enterprise_url: enterprise_url.flatten(),
            partner_url: partner_url.flatten(),
            notifications,
        })
    }

    fn notification(&mut self, index: usize) -> Result<Notification, OutboundError> {
        let mut id: Option<String> = None;
        let mut sobject: Option<(String, BTreeMap<String, String>)> = None;
        loop {
            match self.cursor.next()? {
                Token::Open(element) if element.is(OUTBOUND_NS, "Id") => {
                    once(&id, "Id", Some(index))?;
                    id = Some(self.text("Id", Some(index))?);
                }
                Token::Open(element) if element.is(OUTBOUND_NS, "sObject") => {
                    once(&sobject, "sObject", Some(index))?;
                    sobject = Some(self.sobject(&element, index)?);
                }
                Token::Open(_) => self.skip()?,
                Token::Text(text) => blank(&text, "Notification")?,
                Token::Close => break,
                Token::Eof => return Err(self.unexpected_end()),
            }
        }
        let id = id.ok_or(OutboundError::MissingNotificationId { index })?;
        if id.is_empty() {
            return Err(OutboundError::EmptyNotificationId { index });
        }
        // Kept as sent (Salesforce redelivers the same text), once it is known to be an Id.
        if let Err(source) = SfId::parse(&id) {
            return Err(OutboundError::InvalidNotificationId {
                index,
                value: clip(&id),
                source,
            });
        }
        let (sobject_type, fields) = sobject.ok_or(OutboundError::MissingSObject { index })?;
        Ok(Notification {
            id,
            sobject_type,
            record_id: fields.get("Id").cloned(),
            fields,
        })
    }

    fn sobject(
        &mut self,
        element: &Element,
        index: usize,
    ) -> Result<(String, BTreeMap<String, String>), OutboundError> {
        let sobject_type = sobject_type(element, index)?;
        let mut fields = BTreeMap::new();
        loop {
            match self.cursor.next()? {
                Token::Open(field) if field.in_namespace(SOBJECT_NS) => match self.leaf()? {
                    Leaf::Text(_) if field.nil => {}
                    Leaf::Text(value) => {
                        if fields.contains_key(&field.local) {
                            return Err(OutboundError::DuplicateField {
                                index,
                                field: clip(&field.local),
                            });
                        }
                        fields.insert(field.local, value);
                    }
                    Leaf::Nested => {}
                },
                Token::Open(_) => self.skip()?,
                Token::Text(text) => blank(&text, "sObject")?,
                Token::Close => break,
                Token::Eof => return Err(self.unexpected_end()),
            }
        }
        Ok((sobject_type, fields))
    }

    /// The trimmed text of the element just opened, which must not hold child elements.
    fn text(
        &mut self,
        element: &'static str,
        notification: Option<usize>,
    ) -> Result<String, OutboundError> {
        match self.leaf()? {
            Leaf::Text(text) => Ok(text),
            Leaf::Nested => Err(OutboundError::NotText {
                element,
                notification,
            }),
        }
    }

    /// Like [`Self::text`], but `None` for a nil or empty element.
    fn optional_text(
        &mut self,
        element: &Element,
        name: &'static str,
    ) -> Result<Option<String>, OutboundError> {
        let text = self.text(name, None)?;
        Ok((!element.nil && !text.is_empty()).then_some(text))
    }

    /// Reads the content of the element just opened up to its end tag.
    fn leaf(&mut self) -> Result<Leaf, OutboundError> {
        let mut text = String::new();
        let mut nested = false;
        loop {
            match self.cursor.next()? {
                Token::Text(chunk) => text.push_str(&chunk),
                Token::Open(_) => {
                    nested = true;
                    self.skip()?;
                }
                Token::Close => break,
                Token::Eof => return Err(self.unexpected_end()),
            }
        }
        Ok(if nested {
            Leaf::Nested
        } else {
            Leaf::Text(xml_trim(&text).to_owned())
        })
    }

    /// Skips the rest of the element just opened (its checks still apply).
    fn skip(&mut self) -> Result<(), OutboundError> {
        let mut depth = 0usize;
        loop {
            match self.cursor.next()? {
                Token::Open(_) => depth += 1,
                Token::Close if depth == 0 => return Ok(()),
                Token::Close => depth -= 1,
                Token::Text(_) => {}
                Token::Eof => return Err(self.unexpected_end()),
            }
        }
    }

    fn unexpected_end(&self) -> OutboundError {
        OutboundError::NotWellFormed {
            detail: "unexpected end of the body".to_owned(),
            position: self.cursor.position(),
        }
    }
}

fn sobject_type(element: &Element, index: usize) -> Result<String, OutboundError> {
    let Some(xsi_type) = &element.xsi_type else {
        return Err(OutboundError::MissingSObjectType { index });
    };
    let invalid = |reason: String| OutboundError::InvalidSObjectType {
        index,
        value: clip(&xsi_type.raw),
        reason,
    };
    match &xsi_type.namespace {
        TypeNamespace::NoPrefix => {}
        TypeNamespace::Bound(ns) if ns == SOBJECT_NS => {}
        TypeNamespace::Bound(ns) => {
            return Err(invalid(format!(
                "whose prefix is bound to {}, not to {SOBJECT_NS}",
                clip(ns)
            )));
        }
        TypeNamespace::Undeclared(prefix) => {
            return Err(invalid(format!(
                "whose prefix {} is not declared",
                clip(prefix)
            )));
        }
    }
    if !is_api_name(&xsi_type.local) {
        return Err(invalid(
            "which does not name a Salesforce object type".to_owned(),
        ));
    }
    Ok(xsi_type.local.clone())
}

fn once<T>(
    slot: &Option<T>,
    element: &'static str,
    notification: Option<usize>,
) -> Result<(), OutboundError> {
    match slot {
        Some(_) => Err(OutboundError::Duplicate {
            element,
            notification,
        }),
        None => Ok(()),
    }
}

fn blank(text: &str, parent: &'static str) -> Result<(), OutboundError> {
    if is_blank(text) {
        Ok(())
    } else {
        Err(OutboundError::UnexpectedText { parent })
    }
}

fn unexpected(parent: &'static str, expected: &'static str, found: &Element) -> OutboundError {
    OutboundError::UnexpectedElement {
        parent,
        expected,
        found: clip(&found.local),
        namespace: found.namespace.as_deref().map(clip),
    }
}
