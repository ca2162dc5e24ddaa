"""`rpfleet demo`: start a private Mosquitto, the fleet server on SQLite with the
sample registry of Hanoi's sites, and simulated nodes at three of those sites
whose fake rating pads are pressed at random; show a live summary per site and
per region until Ctrl-C or SIGTERM, then stop everything."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fleet_server.summary import SiteSummary


def main(argv: list[str], prog: str = "rpfleet demo") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--workdir", type=Path,
                        help="keep broker, database and logs here (default: a temporary directory, removed at the end)")
    parser.add_argument("--press-every", type=float, default=3.0, metavar="SECONDS",
                        help="mean time between presses on each pad (default 3)")
    parser.add_argument("--duration", type=float, metavar="SECONDS",
                        help="stop by itself after this long (default: run until Ctrl-C)")
    parser.add_argument("--refresh", type=float, default=1.0, metavar="SECONDS",
                        help="summary refresh interval (default 1)")
    parser.add_argument("--call-every", type=float, default=8.0, metavar="SECONDS",
                        help="a queue call at the first site this often, for its dashboard "
                             "(default 8; 0: none)")
    args = parser.parse_args(argv)

    from fleet_server import store
    from fleet_server.summary import ingest_error_counts, site_summaries
    from rpfleet.demo.fleet import DemoFleet

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="rpfleet-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    fleet = DemoFleet(workdir, args.press_every)
    live = sys.stdout.isatty()
    engine = None
    print(f"rpfleet demo: starting in {workdir} (Ctrl-C to stop)", flush=True)
    try:
        fleet.start()
        print(f"broker on {fleet.broker.host}:{fleet.broker.port}, "
              f"{len(fleet.agents)} nodes, server on {fleet.db_url}", flush=True)
        engine = store.connect(fleet.db_url)
        print(f"site dashboard (open in a browser): {fleet.dashboard_url}", flush=True)
        console = (f"rpfleet console --server http://127.0.0.1:{fleet.http_port} "
                   f"--token-file {fleet.api_token_file}")
        print(f"fleet console (in another terminal): {console}", flush=True)
        started = last_call = time.monotonic()
        called = "no queue call yet"
        while not stop.wait(args.refresh):
            with engine.connect() as conn:
                table = _tables(site_summaries(conn))
                errors = sum(ingest_error_counts(conn).values())
            dead = fleet.dead()
            if args.call_every and time.monotonic() - last_call >= args.call_every:
                last_call, called = time.monotonic(), fleet.call_next()
            print(
                ("\x1b[H\x1b[2J" if live else "\n")
                + f"{datetime.now():%H:%M:%S}  rpfleet demo — satisfaction taps stored\n"
                + f"broker {fleet.broker.host}:{fleet.broker.port} · {len(fleet.agents)} nodes · "
                + f"data in {workdir} · Ctrl-C to stop\n"
                + f"HTTP API http://127.0.0.1:{fleet.http_port}/api/v1/ "
                + f"(Bearer token in {fleet.api_token_file})\n"
                + f"site dashboard: {fleet.dashboard_url}\nfleet console: {console}\n"
                + f"last queue call: {called}\n\n{table}\n"
                + f"refused payloads: {errors}"
                + (f"\nstopped unexpectedly: {', '.join(dead)} (see {workdir})" if dead else ""),
                flush=True,
            )
            if args.duration and time.monotonic() - started >= args.duration:
                break
    finally:
        print("\nrpfleet demo: stopping nodes, server and broker...", flush=True)
        fleet.stop()
        if engine is not None:
            with engine.connect() as conn:
                print(f"\nfinal count:\n"
                      f"{_tables(site_summaries(conn))}", flush=True)
            engine.dispose()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
        print("rpfleet demo: stopped", flush=True)
    return 0


def _tables(per_site: list[SiteSummary]) -> str:
    """The per-site table, then the same taps added up per region."""
    from fleet_server.summary import region_summaries, render

    return f"{render(per_site)}\n\n{render(region_summaries(per_site), per='region')}"
