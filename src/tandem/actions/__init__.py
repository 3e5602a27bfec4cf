"""Actions: side effects on enterprise systems through MCP, decided by policy, executed once by a leased worker.

Start with ``tandem.actions.runtime.build_actions``; the whole story is in ``docs/actions.md``.
"""
