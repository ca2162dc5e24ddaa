"""`rpfleet agent enroll CODE --server URL`: bring a new node into the fleet.

Messages are for a technician on site: Vietnamese first, then English.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

from pydantic import ValidationError

from agent.settings import DEFAULT_CONFIG, load_settings
from rpfleet.validation import error_lines

DEFAULT_STATE = Path("/var/lib/rpfleet")
DEFAULT_DIR = DEFAULT_STATE / "identity"
"""In the agent's state directory, the one place its sandbox lets it write: it renews them itself."""
AGENT_USER = "rpfleet"


def add(sub: argparse._SubParsersAction) -> None:
    text = "enroll this node with a one-time code from IT support"
    cmd = sub.add_parser("enroll", help=text, description=__doc__,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    cmd.add_argument("code", help="the code, e.g. 7KQ2-MX4P-9HRT-W3ZC-A8NB (case and dashes do not matter)")
    cmd.add_argument("--server", required=True, help="the enrollment address, https://HOST:8443")
    cmd.add_argument("--site", help="the site you are at, as on your work order: "
                     "a code made for another site is then refused (recommended)")
    cmd.add_argument("--dir", type=Path, default=DEFAULT_DIR,
                     help=f"where the key and certificates go (default {DEFAULT_DIR})")
    cmd.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                     help=f"the agent config to write (default {DEFAULT_CONFIG})")
    cmd.add_argument("--state-dir", type=Path, default=DEFAULT_STATE,
                     help=f"the agent's state directory for the config (default {DEFAULT_STATE})")
    cmd.add_argument("--force", action="store_true",
                     help="enroll again although this node has an identity (its old certificate is revoked)")
    cmd.set_defaults(command=run)


def run(args: argparse.Namespace) -> int:
    from agent.identity import EnrollError, IdentityFiles, enroll
    from agent.initial_config import render_config

    files = IdentityFiles.in_dir(args.dir)
    if not args.force and (files.key.exists() or args.config.exists()):
        return _fail(
            f"nút này đã được đăng ký ({files.key if files.key.exists() else args.config} đã có).",
            f"this node is enrolled already ({files.key if files.key.exists() else args.config} exists); "
            "to enroll it again, add --force (its old certificate is then revoked)",
        )
    try:
        enrolled = enroll(
            args.code, args.server, files, site=args.site, hostname=socket.gethostname()
        )
    except EnrollError as exc:
        return _fail("đăng ký không thành công.", str(exc))
    text = render_config(enrolled, files, state_dir=args.state_dir, server_url=args.server.rstrip("/"))
    staged = args.config.with_name(args.config.name + ".new")
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_text(text, encoding="utf-8")
    try:
        load_settings(staged)
    except ValidationError as exc:
        print("rpfleet agent: the server's initial config is not valid here:", file=sys.stderr)
        for line in error_lines(exc):
            print(f"  {line}", file=sys.stderr)
        return _fail("cấu hình ban đầu không hợp lệ.", f"kept for inspection in {staged}")
    os.replace(staged, args.config)
    _give_to_agent(files)
    print(
        f"Đã đăng ký: nút {enrolled.node_id}, điểm {enrolled.site_id}, quầy {enrolled.counter}.\n"
        f"Enrolled: node {enrolled.node_id} at site {enrolled.site_id}, counter {enrolled.counter} "
        f"({enrolled.kind}).\n"
        f"  key and certificate: {files.directory} (the key never left this node)\n"
        f"  config: {args.config}\n"
        "Tiếp theo / next: rpfleet agent self-test, then: systemctl enable --now rpfleet-agent"
    )
    return 0


def _give_to_agent(files) -> None:
    """Run as root (as a technician does), hand the identity to the agent's user, which renews it."""
    import pwd

    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam(AGENT_USER)
    except KeyError:
        return
    for path in (files.directory, files.key, files.cert, files.ca):
        os.chown(path, user.pw_uid, user.pw_gid)


def _fail(vietnamese: str, english: str) -> int:
    print(f"rpfleet agent enroll: {vietnamese}\n  {english}", file=sys.stderr)
    return 1
