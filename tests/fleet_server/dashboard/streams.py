"""Talking to a dashboard server over real HTTP: a server on a free port, its
event stream read line by line."""

from __future__ import annotations

import json
import time
from typing import Iterator

import httpx

from fleet_server.api.app import create_app
from fleet_server.api.serving import HttpService
from provisioning.mosquitto import free_port
from tests.fleet_server.announce_data import RecordingLink


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def serve(engine) -> HttpService:
    service = HttpService(create_app(engine, link=RecordingLink()), "127.0.0.1", free_port())
    service.start()
    return service


def read_stream(url: str, token: str, *, keepalive_s: float = 0.5,
                timeout: float = 30) -> Iterator[tuple[str, dict]]:
    """The events of the stream at ``url`` as (event, data) until it ends; raises
    AssertionError when it is still open after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    with httpx.stream("GET", url, params={"keepalive_s": keepalive_s}, headers=bearer(token),
                      timeout=10) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        event, data = "message", []
        for line in response.iter_lines():
            if time.monotonic() > deadline:
                raise AssertionError(f"the stream was still open after {timeout}s")
            if line.startswith("event:"):
                event = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data.append(line.partition(":")[2].strip())
            elif line == "" and data:
                yield event, json.loads("\n".join(data))
                event, data = "message", []


def until_called(stream: Iterator[tuple[str, dict]], ticket: str) -> dict:
    """The first dashboard on ``stream`` whose newest call is ``ticket``."""
    for event, data in stream:
        if event == "dashboard" and data["calls"] and data["calls"][0]["ticket"] == ticket:
            return data
    raise AssertionError(f"the stream ended before ticket {ticket} was called")
