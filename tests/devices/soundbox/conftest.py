"""Fixtures of the soundbox tests: the default voice pack built once with the real espeak-ng,
and the private sound server of tests/audio.py."""

from __future__ import annotations

import shutil

import pytest

from devices.soundbox.voice_pack import VoicePack, load_pack
from tests.audio import sound_server  # noqa: F401 - fixture


@pytest.fixture(scope="session")
def built_pack(tmp_path_factory: pytest.TempPathFactory) -> VoicePack:
    """The default pack, built with the real espeak-ng into a temporary folder."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (scripts/bootstrap installs the Debian package espeak-ng)")
    from provisioning.voice_pack_build import build_default_pack

    return load_pack(build_default_pack(tmp_path_factory.mktemp("vi-default")))
