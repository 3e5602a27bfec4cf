"""Flows: the self-service journeys as constrained YAML that business people can read (see docs/flows.md).

The format and its validation live in ``tandem.release.flows`` (flows are part of a release); this package holds
what a running flow needs: templates, conditions and the interpreter."""
