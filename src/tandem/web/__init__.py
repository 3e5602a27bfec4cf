"""The browser pages: the customer web chat, the agent desktop and the demo's start page.

They are static files (plain HTML, CSS and JavaScript modules, no build step and nothing fetched from
elsewhere) that talk only to the public HTTP API, so they double as a worked example of a channel and of
an agent desktop integration. The API app mounts ``STATIC_DIR`` at ``/static`` and serves the pages.
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
