"""No private key is tracked: tests make their own in temp dirs, operators keep theirs off git."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = b"PRIVATE" + b" KEY-----"  # split, so this file does not match itself
KEY_SUFFIXES = {".key", ".pem", ".p12", ".pfx"}


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
    ).stdout
    return [ROOT / name for name in listed.decode().split("\0") if name]


def test_the_tree_is_a_git_checkout_with_files():
    assert len(tracked_files()) > 100


def test_no_tracked_file_holds_a_private_key():
    holding = [
        str(path.relative_to(ROOT)) for path in tracked_files()
        if path.is_file() and MARKER in path.read_bytes()
    ]
    assert holding == []


def test_no_tracked_file_is_named_like_a_key():
    named = [str(p.relative_to(ROOT)) for p in tracked_files() if p.suffix in KEY_SUFFIXES]
    assert named == []


def test_gitignore_keeps_key_files_out():
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "--no-index", "pki/ca.key"], cwd=ROOT, timeout=60
    )
    assert ignored.returncode == 0, ".gitignore should ignore *.key"
