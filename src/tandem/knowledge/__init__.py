"""Knowledge answers: retrieval over help articles, returning the passage and its source."""
