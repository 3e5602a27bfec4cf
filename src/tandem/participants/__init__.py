"""Participants: IVR, bot, AI, human, copilot and supervisor, all one small protocol."""
