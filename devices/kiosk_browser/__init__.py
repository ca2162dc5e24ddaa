"""Browsers in kiosk mode: self-service kiosks and the dashboard TVs (README.md beside this file).

- `config`: the driver's config model (page, allowed URLs, repair limits, screen schedule);
- `pages`, `repair`, `screen`, `power`: pure: which URLs are allowed, the repair ladder,
  black/frozen screens from screenshots, when the screen is on;
- `cdp`: a small Chrome DevTools Protocol client; `chromium_adapter`: the browser process;
- `system_adapter`, `cec_adapter`: systemctl and HDMI-CEC; `fake`: both in memory;
- `driver`: the `KioskBrowser` supervisor; `fallback/index.html`: the page shown while the
  page's server does not answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devices.base import Record
from devices.kiosk_browser.config import KioskBrowserConfig

if TYPE_CHECKING:
    from devices.kiosk_browser.driver import KioskBrowser


def build_kiosk_browser(config: KioskBrowserConfig, record: Record) -> "KioskBrowser":
    """The driver, not yet started. Its libraries (websockets, Pillow) load only here, so
    that validating a config needs neither."""
    from devices.kiosk_browser.driver import build_kiosk_browser as build

    return build(config, record)


__all__ = ["KioskBrowserConfig", "build_kiosk_browser"]
