"""The shared case: events, the interaction aggregate, its case file, legs, floor and handoff."""
