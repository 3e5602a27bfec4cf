"""Releases: the versioned bundle an interaction is pinned to (policy, flows, prompts, signal definitions)."""
