// An Order whose Activation_Status__c becomes Activating goes to dealbridge (WHMCS provisioning)
// when Dealbridge_Settings__c.Order_Callout_Enabled__c is set: see DealbridgeTriggers.
trigger DealbridgeOrderActivating on Order (after insert, after update) {
    DealbridgeTriggers.ordersSaved((List<Order>) Trigger.new, (Map<Id, Order>) Trigger.oldMap);
}
