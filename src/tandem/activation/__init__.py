"""Activation: enterprise data fetched during an interaction, within a budget, as facts with provenance.

The API the conversation uses::

    from tandem.activation import Activator, Trigger

    activator = await Activator.open(data_dir=Path("var/lakehouse"))
    learns = await activator.for_trigger("bank", Trigger.intent("card_declined", assurance), {"customer": cid},
                                         "bot", interaction_id=case.interaction_id)

See docs/activation.md.
"""

from tandem.activation.activator import Activation, Activator, SignalReport
from tandem.activation.sources import Source, SourceError
from tandem.release.signals import Trigger

__all__ = ["Activation", "Activator", "SignalReport", "Source", "SourceError", "Trigger"]
