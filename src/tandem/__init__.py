"""Tandem: IVR, self-service AI, agentic AI and human agents working one shared case."""

__version__ = "0.1.0"
