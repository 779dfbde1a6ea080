"""An MCP server over a profile store, for agents: tools get_profile, record_interaction, choose, respond,
edit_profile and the resource profile://{user_id}, for one tenant.

    prefscribe mcp --db sqlite:///profiles.db --tenant acme                 # stdio (what desktop agents spawn)
    prefscribe mcp --db ... --tenant acme --http --port 8765               # streamable HTTP at /mcp, API key

Needs the `mcp` extra: pip install 'prefscribe[mcp]'. Its modules import the SDK by absolute name (`mcp`), which this package never shadows.
"""

from ._server import build_server, http_app

__all__ = ["build_server", "http_app"]
