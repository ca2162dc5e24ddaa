"""`rpfleet release`: keygen, build (through the session fixture), sign, verify, show."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from rpfleet.cli import main
from tests.rpfleet.release.factory import signed_copy


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["release", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_prints_it(capsys, tmp_path):
    code, out, err = run(capsys, "keygen", "--out", str(tmp_path / "keys"))
    assert code == 0, err
    [private] = (tmp_path / "keys").glob("release-*.key")
    [public] = (tmp_path / "keys").glob("release-*.pub")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.stem.removeprefix("release-") in out
    body = "".join(private.read_text().splitlines()[1:-1])
    assert "PRIVATE KEY" not in out + err and body not in out + err
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_build_shows_progress_and_describes_the_artifact(builds):
    result = builds.cli_build
    assert "copying the tree" in result.stderr and "pip wheel rpfleet 0.3.0" in result.stderr
    assert "rpfleet 0.3.0 for aarch64/py3, 1 wheel(s) (rpfleet only)" in result.stdout
    assert builds.v030_arm.exists()


def test_sign_then_verify(capsys, builds, key_a, key_b, tmp_path):
    artifact = signed_copy(builds.v030_arm, tmp_path, key_b)
    code, out, _ = run(capsys, "sign", str(artifact), "--key", str(key_a.private_path))
    assert code == 0 and f"signed with key {key_a.key_id}" in out
    bundle = tmp_path / "release-keys.pem"  # as a node holds its keys during a rotation
    bundle.write_bytes(key_b.public_path.read_bytes() + key_a.public_path.read_bytes())
    code, out, _ = run(capsys, "verify", str(artifact), "--trust", str(bundle),
                       "--installed", "0.2.0", "--arch", "aarch64")
    assert code == 0
    assert f"ok, signed by key {key_b.key_id}: rpfleet 0.3.0 for aarch64" in out
    assert "not checked" in out and "python" in out  # --python was not given


@pytest.mark.parametrize(
    "extra, reason",
    [(["--installed", "0.3.0"], "not-newer"), (["--installed", "1.0"], "downgrade"),
     (["--arch", "x86_64"], "wrong-architecture")],
)
def test_verify_refuses_with_exit_2_and_the_reason(capsys, builds, key_a, tmp_path, extra, reason):
    artifact = signed_copy(builds.v030_arm, tmp_path, key_a)
    code, out, _ = run(capsys, "verify", str(artifact), "--trust", str(key_a.public_path), *extra)
    assert code == 2 and f"{artifact}: refused ({reason}): " in out


def test_verify_an_unsigned_artifact(capsys, builds, key_a):
    code, out, _ = run(capsys, "verify", str(builds.v020), "--trust", str(key_a.public_path))
    assert code == 2 and "refused (unsigned)" in out


def test_show_prints_the_manifest_marked_as_unverified(capsys, builds):
    code, out, _ = run(capsys, "show", str(builds.v020))
    assert code == 0 and "NOT verified" in out and '"version": "0.2.0"' in out


@pytest.mark.parametrize(
    "args, message",
    [(["build", "--version", "next", "--out", "x.tar"], "--version: 'next' is not a PEP 440 version"),
     (["build", "--arch", "x86-64!", "--out", "x.tar"], "--arch: 'x86-64!'"),
     (["verify", "a.tar", "--trust", "missing.pub"], "missing.pub"),
     (["sign", "a.tar", "--key", "missing.key"], "missing.key")],
    ids=["bad-version", "bad-arch", "missing-trust", "missing-key"],
)
def test_bad_input_names_what_is_wrong(capsys, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    Path("a.tar").write_bytes(b"")
    code, _, err = run(capsys, *args)
    assert code == 1 and message in err


def test_signing_with_a_public_key_is_refused(capsys, builds, key_a, tmp_path):
    artifact = signed_copy(builds.v020, tmp_path, key_a)
    code, _, err = run(capsys, "sign", str(artifact), "--key", str(key_a.public_path))
    assert code == 1 and "not an unencrypted PEM private key" in err
