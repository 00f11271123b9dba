// A won Opportunity goes to dealbridge (Maxio billing): see DealbridgeTriggers.
trigger DealbridgeOpportunityWon on Opportunity (after insert, after update) {
    DealbridgeTriggers.opportunitiesSaved((List<Opportunity>) Trigger.new, (Map<Id, Opportunity>) Trigger.oldMap);
}
