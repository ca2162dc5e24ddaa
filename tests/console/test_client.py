"""The console's API client against the real server (errors told apart), its job
requests, and `rpfleet console`'s setup errors."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import socket
import struct
import subprocess
import sys
import termios
import textwrap
from pathlib import Path

import pytest

from rpfleet.console.cli import SetupError, resolve
from rpfleet.console.client import ApiError, FleetApi, JobRequest, RouteMissing, ServerUnreachable
from tests.conftest import eventually
from tests.test_import_rules import offenders


async def test_the_client_reads_the_fleet_and_tells_failures_apart(seeded_fleet):
    async with FleetApi(seeded_fleet.url, seeded_fleet.token) as api:
        assert [n["id"] for n in await api.nodes()] == [
            "cg-01-c1", "cg-01-c2", "cg-02-c1", "cg-02-c2", "cg-03-c1",
            "hk-01-c1", "hk-01-c2", "hk-02-c1", "n-free", "n-gone"]
        assert (await api.node("hk-01-c1"))["peripherals"][1]["detail"] == "paper out"

        with pytest.raises(ApiError, match="no node 'nope'") as unknown:
            await api.node("nope")
        assert unknown.value.status == 404 and not isinstance(unknown.value, RouteMissing)
        with pytest.raises(RouteMissing):
            await api.get("/no-such-route")

    async with FleetApi(seeded_fleet.url, "rpf_" + "x" * 43) as refused:
        with pytest.raises(ApiError) as bad_token:
            await refused.nodes()
        assert bad_token.value.status == 401


async def test_no_server_is_unreachable_not_a_crash():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        port = closed.getsockname()[1]
        async with FleetApi(f"http://127.0.0.1:{port}", "t", timeout=2) as api:
            with pytest.raises(ServerUnreachable, match=f"127.0.0.1:{port}"):
                await api.nodes()


@pytest.mark.parametrize("request_, body", [
    (JobRequest("identify", nodes=("n1",)), {"nodes": ["n1"]}),
    (JobRequest("reboot", site="hk-01"), {"site": "hk-01"}),
    (JobRequest("self-test", region="hk"), {"region": "hk"}),
    (JobRequest("fetch-logs", everywhere=True, args={"lines": 50}), {"all": True}),
], ids=["nodes", "site", "region", "all"])
def test_a_job_request_names_exactly_one_target(request_, body):
    sent = request_.body()
    assert {k: v for k, v in sent.items() if k in ("nodes", "site", "region", "all")} == body
    assert sent["command"] == request_.command and sent["expires_in_s"] == 600


@pytest.mark.parametrize("kwargs, says", [
    ({"command": "format-disk", "nodes": ("n1",)}, "command: 'format-disk' is not one of"),
    ({"command": "reboot"}, "target: give exactly one"),
    ({"command": "reboot", "site": "a", "region": "b"}, "target: give exactly one"),
], ids=["unknown-command", "no-target", "two-targets"])
def test_a_bad_job_request_is_refused_naming_the_field(kwargs, says):
    with pytest.raises(ValueError, match=says):
        JobRequest(**kwargs)


def test_setup_comes_from_options_or_the_environment(tmp_path: Path):
    token = tmp_path / "token"
    token.write_text("rpf_secret\n", encoding="utf-8")
    assert resolve("http://a:8080", token, {}) == ("http://a:8080", "rpf_secret")
    assert resolve(None, None, {"RPFLEET_SERVER": "https://b", "RPFLEET_TOKEN_FILE": str(token)}) \
        == ("https://b", "rpf_secret")
    assert resolve("http://opt", None, {"RPFLEET_SERVER": "http://env",
                                        "RPFLEET_TOKEN_FILE": str(token)})[0] == "http://opt"


@pytest.mark.parametrize("server, token, environ, says", [
    (None, None, {}, "needs the server's address .* and an API token file"),
    ("http://a", None, {}, r"needs an API token file \(--token-file FILE or RPFLEET_TOKEN_FILE\)"),
    (None, "TOKEN", {}, r"needs the server's address \(--server URL or RPFLEET_SERVER\)$"),
    ("a:8080", "TOKEN", {}, "--server: 'a:8080' is not an http"),
    ("http://a", "MISSING", {}, "--token-file: cannot read .*MISSING"),
    ("http://a", "EMPTY", {}, "--token-file: .*EMPTY is empty"),
], ids=["nothing", "no-token", "no-server", "not-a-url", "unreadable", "empty"])
def test_what_is_missing_is_named(tmp_path: Path, server, token, environ, says):
    (tmp_path / "TOKEN").write_text("rpf_x", encoding="utf-8")
    (tmp_path / "EMPTY").write_text("\n", encoding="utf-8")
    with pytest.raises(SetupError, match=says):
        resolve(server, tmp_path / token if token else None, environ)


def test_the_command_says_what_is_missing_and_exits_2():
    run = subprocess.run([sys.executable, "-m", "rpfleet", "console"], capture_output=True,
                         text=True, env={"PATH": "/usr/bin:/bin"}, timeout=60)
    assert run.returncode == 2
    assert "rpfleet console: needs the server's address" in run.stderr


def test_the_console_never_imports_the_server_or_the_database():
    """It talks to the HTTP API only (DESIGN §2), so it runs on a laptop with `[console]`."""
    assert offenders("rpfleet/console", {"fleet_server", "sqlalchemy", "agent", "devices",
                                         "paho", "provisioning"}) == []


def test_rpfleet_console_runs_in_a_real_terminal_and_quits_on_q(seeded_fleet, tmp_path: Path):
    """The command itself, in a pseudo-terminal of 80×24 as over SSH, set up from the
    environment: it shows the seeded fleet and `q` ends it with status 0."""
    token_file = tmp_path / "token"
    token_file.write_text(seeded_fleet.token, encoding="utf-8")
    main, side = pty.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {"PATH": os.environ["PATH"], "TERM": "xterm-256color", "LANG": "C.UTF-8",
           "RPFLEET_SERVER": seeded_fleet.url, "RPFLEET_TOKEN_FILE": str(token_file)}
    console = subprocess.Popen([sys.executable, "-m", "rpfleet", "console"], stdin=side,
                               stdout=side, stderr=side, env=env, close_fds=True)
    os.close(side)
    shown = bytearray()
    try:
        def screen_has(text: str) -> bool:
            while select.select([main], [], [], 0.1)[0]:
                try:
                    shown.extend(os.read(main, 65536))
                except OSError:  # the terminal closed: the process is gone
                    break
            return text.encode() in shown

        eventually(lambda: screen_has("Phường Ba Đình") or console.poll() is not None)
        assert console.poll() is None, shown.decode(errors="replace")
        os.write(main, b"q")
        assert console.wait(20) == 0
    finally:
        if console.poll() is None:
            console.kill()
            console.wait()
        os.close(main)


def test_the_console_loads_with_only_its_own_extra_installed():
    """`pip install rpfleet[console]` brings textual and httpx, nothing of the server's."""
    script = textwrap.dedent("""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"fleet_server", "sqlalchemy", "alembic", "fastapi",
                                           "uvicorn", "paho", "agent", "devices"}:
                    raise ImportError("not installed on a laptop: " + name)
        sys.meta_path.insert(0, Block())
        import rpfleet.console.app, rpfleet.console.cli
        from rpfleet.cli import main
        sys.exit(main(["console", "--help"]))
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert "--token-file FILE" in run.stdout
