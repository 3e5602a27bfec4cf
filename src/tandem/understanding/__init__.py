"""Understanding: intents, entities and sentiment from what the customer says."""
