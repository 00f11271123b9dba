//! Salesforce Outbound Messages (SOAP): parsing notifications, the acknowledgement and faults.
