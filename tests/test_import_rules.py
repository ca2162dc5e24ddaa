"""DESIGN §2 seams, kept by reading the imports of every module."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HARDWARE = {"evdev", "serial", "sounddevice", "pyudev"}


def imports_of(package: str) -> dict[str, set[str]]:
    """Module path -> top-level names it imports (absolute imports)."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def offenders(package: str, forbidden: set[str], allow=lambda path: False) -> list[str]:
    return [
        f"{path} imports {name}"
        for path, names in imports_of(package).items()
        if not allow(path)
        for name in names
        if name.split(".")[0] in forbidden
    ]


@pytest.mark.parametrize(
    "package, forbidden",
    [
        ("agent", {"fleet_server", "sqlalchemy", "fastapi", "textual"}),
        ("devices", {"fleet_server", "agent", "paho", "sqlalchemy"}),
        ("fleet_server", {"agent", "devices"}),
        ("rpfleet/protocol", {"agent", "devices", "fleet_server", "provisioning", "paho"}),
    ],
    ids=["agent", "devices", "fleet_server", "protocol"],
)
def test_packages_keep_to_their_side(package, forbidden):
    assert imports_of(package), f"no modules found under {package}"
    assert offenders(package, forbidden) == []


def test_the_server_reaches_devices_only_for_their_pure_config_models():
    """fleet_server validates desired configs with the agent's models: through
    rpfleet.node_config, which takes them from devices.registry; importing that loads
    no hardware library and no adapter (they load lazily, when a driver is built)."""
    node_config = imports_of("rpfleet")["rpfleet/node_config.py"]
    assert {name for name in node_config if name.split(".")[0] in {"devices", "agent"}} == {
        "devices.registry"}
    script = textwrap.dedent(
        f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {sorted(HARDWARE | {"agent"})!r}:
                    raise ImportError("not on a server: " + name)
        sys.meta_path.insert(0, Block())
        import fleet_server.config_layers, fleet_server.desired_config, fleet_server.api.config_routes
        loaded = sorted(m for m in sys.modules if m.startswith("devices.") and m.endswith("_adapter"))
        assert loaded == [], loaded
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr


def test_hardware_libraries_are_imported_only_in_adapters():
    assert offenders("devices", HARDWARE, allow=lambda p: p.endswith("_adapter.py")) == []
    assert offenders("agent", HARDWARE) == []


def test_the_agent_runs_without_any_server_library_installed(tmp_path):
    """A node installs only `[agent]`: importing and checking config must not need the server's libraries."""
    config = tmp_path / "agent.toml"
    config.write_text(
        'node_id = "bd-phuong-q1"\n[[peripherals]]\nkind = "rating-pad"\nid = "pad-1"\nsource = "fake"\n',
        encoding="utf-8",
    )
    script = textwrap.dedent(
        f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {{"fleet_server", "sqlalchemy", "alembic", "fastapi", "uvicorn", "textual"}}:
                    raise ImportError("not installed on a node: " + name)
        sys.meta_path.insert(0, Block())
        import agent.node, agent.link, devices.registry
        from rpfleet.cli import main
        sys.exit(main(["agent", "check-config", "--config", {str(config)!r}]))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "ok (node bd-phuong-q1, 1 peripheral(s))" in result.stdout
