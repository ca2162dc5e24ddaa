"""Regenerates docs/dashboard.png: the dashboard of the seeded hall (hall.py) at
10:05 on a weekday morning, 1920×1080, in Debian's headless Chromium.

    .venv/bin/python -m tests.fleet_server.dashboard.screenshot [docs/dashboard.png]

It serves a throwaway SQLite store with the real app on a free loopback port;
the page's own clock is fixed at the same moment as the store's day.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import timedelta
from pathlib import Path

SIZE = {"width": 1920, "height": 1080}
TIMEOUT_MS = 20_000


def launch(playwright):
    """Debian's Chromium, headless (never a downloaded browser)."""
    return playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                      args=["--no-sandbox"])


def capture(out: Path) -> Path:
    """Write the screenshot to ``out`` and return it."""
    from playwright.sync_api import sync_playwright

    from fleet_server.api import tokens
    from fleet_server.api.app import create_app
    from fleet_server.api.serving import HttpService
    from fleet_server.store import connect
    from provisioning.mosquitto import free_port
    from tests.fleet_server.dashboard import hall

    with tempfile.TemporaryDirectory(prefix="rpfleet-dashboard-") as tmp:
        engine = connect(f"sqlite:///{Path(tmp) / 'fleet.sqlite'}")
        with engine.begin() as conn:
            hall.seed(conn)
            key = tokens.create(conn, "hall-tv", role=tokens.DASHBOARD, sites=[hall.SITE])
        app = create_app(engine)
        app.state.dashboards.clock = lambda: hall.NOW
        service = HttpService(app, "127.0.0.1", free_port())
        service.start()
        try:
            with sync_playwright() as playwright:
                browser = launch(playwright)
                page = browser.new_page(viewport=SIZE)
                page.clock.set_fixed_time(hall.NOW + timedelta(seconds=30))
                page.goto(f"{service.url}/sites/{hall.SITE}/dashboard#key={key}")
                page.wait_for_function("window.rpfleetDashboard.received > 0",
                                       timeout=TIMEOUT_MS)
                out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out))
                browser.close()
        finally:
            service.stop()
            engine.dispose()
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/dashboard.png")
    print(capture(target))
