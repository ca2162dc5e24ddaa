"""The site dashboard: the page a hall's TV shows (today's queue calls, today's
share satisfied, which counters are open), served by the fleet server and
updated live. See docs/dashboard.md.

- `snapshot`: what the page shows, read from the store (`site_dashboard`);
- `feed`: the watched sites' snapshots in this process, pushed on change;
- `routes`: the page, its event stream and the JSON route (`mount`);
- ``static/``: the page's HTML, CSS and JavaScript (no CDN, no internet).
"""

from fleet_server.dashboard.routes import mount, poke_after_call

__all__ = ["mount", "poke_after_call"]
