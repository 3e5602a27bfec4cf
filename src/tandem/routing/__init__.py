"""Routing: who should take a handoff. Queues by skill, agents' presence and capacity, offers that expire."""
