"""Which URLs a kiosk browser may show, and what a URL it shows means (pure code)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

ERROR_PAGE_PREFIX = "chrome-error://"
"""Where Chromium puts its own network-error page."""

Where = Literal["page", "allowed", "fallback", "blank", "error", "disallowed"]


def origin(url: str) -> str:
    """``scheme://host[:port]`` of an http(s) URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True)
class UrlPolicy:
    """The page's URL, the prefixes allowed besides its origin, and the local fallback page."""

    url: str
    allowed: tuple[str, ...]
    fallback_url: str

    def classify(self, url: str) -> Where:
        """What the browser is showing when its main frame is at ``url``."""
        if url.startswith(ERROR_PAGE_PREFIX):
            return "error"
        if url.split("?", 1)[0] == self.fallback_url:
            return "fallback"
        if url in ("", "about:blank"):
            return "blank"
        if url.split("#", 1)[0] == self.url.split("#", 1)[0]:
            return "page"
        if self.is_allowed(url):
            return "allowed"
        return "disallowed"

    def is_allowed(self, url: str) -> bool:
        """True for the page's own origin and the configured prefixes (compared by whole
        origin first, so ``https://q.example.vn.evil.com`` is not ``https://q.example.vn``)."""
        if not url.startswith(("http://", "https://")):
            return False
        for prefix in (origin(self.url) + "/", *self.allowed):
            if origin(url) != origin(prefix):
                continue
            path_prefix = prefix[len(origin(prefix)):] or "/"
            path = url[len(origin(url)):] or "/"
            if path.startswith(path_prefix):
                return True
        return False
