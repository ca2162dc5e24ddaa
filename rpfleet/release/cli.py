"""`rpfleet release`: make release keys, build, sign and verify agent artifacts.

    rpfleet release keygen --out DIR
    rpfleet release build [--version V] [--with-deps] [--arch A] --out FILE
    rpfleet release sign FILE --key KEYFILE
    rpfleet release verify FILE --trust PUBKEY... [--installed V] [--arch A]
    rpfleet release show FILE

`verify` exits 0 when the artifact may be installed, 2 when it is refused
(with the reason code and why), 1 on a usage or file error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rpfleet.release import keys as release_keys
from rpfleet.release.artifact import ArtifactRefused, Manifest, read_manifest, verify_signed


def main(argv: list[str], prog: str = "rpfleet release") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True)

    keygen = sub.add_parser("keygen", help="a new Ed25519 release key pair (offline machine)")
    keygen.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="where release-<id>.key (0600) and release-<id>.pub go")

    build = sub.add_parser("build", help="an unsigned artifact from the working tree")
    build.add_argument("--out", type=Path, required=True, metavar="FILE")
    build.add_argument("--version", help="stamp this PEP 440 version (default: pyproject's)")
    build.add_argument("--with-deps", action="store_true",
                       help="include the [agent] dependencies as wheels (offline install)")
    build.add_argument("--arch", help="target architecture (default: any; with --with-deps, this machine's)")
    build.add_argument("--python", dest="python_tag", help="target Python tag with --with-deps (default: this one)")
    build.add_argument("--source", type=Path, metavar="DIR", help="the tree to build (default: this one)")

    sign = sub.add_parser("sign", help="add a signature to an artifact (offline step)")
    sign.add_argument("file", type=Path, metavar="FILE")
    sign.add_argument("--key", type=Path, required=True, metavar="KEYFILE", help="release-<id>.key")

    verify = sub.add_parser("verify", help="check an artifact as a node would")
    verify.add_argument("file", type=Path, metavar="FILE")
    verify.add_argument("--trust", type=Path, nargs="+", required=True, metavar="PUBKEY",
                        help="trusted public key file(s): release-<id>.pub, or a bundle of several")
    verify.add_argument("--installed", metavar="V", help="the version installed (refuses older or equal)")
    verify.add_argument("--arch", help="the node's architecture (default: not checked)")
    verify.add_argument("--python", dest="python_tag", help="the node's Python tag, e.g. cp311 (default: not checked)")
    verify.add_argument("--allow-downgrade", action="store_true", help="an explicit rollback")

    show = sub.add_parser("show", help="print an artifact's manifest (NOT verified)")
    show.add_argument("file", type=Path, metavar="FILE")

    args = parser.parse_args(argv)
    try:
        return ACTIONS[args.action](args)
    except release_keys.ReleaseKeyError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{prog}: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 1


def _keygen(args: argparse.Namespace) -> int:
    kid, private, public = release_keys.generate_key_pair(args.out)
    print(f"key {kid}\n  private: {private} (mode 0600: keep it offline, back it up)\n  public:  {public} "
          "(give it to nodes and the server)")
    return 0


def _build(args: argparse.Namespace) -> int:
    from rpfleet.release.build import BuildError, build_artifact

    try:
        manifest = build_artifact(args.out, source=args.source, version=args.version, with_deps=args.with_deps,
                                  architecture=args.arch, python_tag=args.python_tag,
                                  progress=lambda line: print(line, file=sys.stderr, flush=True))
    except BuildError as exc:
        print(f"rpfleet release build: {exc}", file=sys.stderr)
        return 1
    print(f"{args.out}: {_describe(manifest)}")
    return 0


def _sign(args: argparse.Namespace) -> int:
    from rpfleet.release.signing import sign_artifact

    key = release_keys.load_private_key(args.key)
    try:
        kid = sign_artifact(args.file, key)
    except ArtifactRefused as exc:
        print(f"rpfleet release sign: {args.file}: not signed: {exc}", file=sys.stderr)
        return 2
    print(f"{args.file}: signed with key {kid}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    trusted = [key for path in args.trust for key in release_keys.load_public_keys(path)]
    try:
        manifest, signer = verify_signed(args.file, trusted, installed_version=args.installed,
                                         architecture=args.arch, python_tag=args.python_tag,
                                         allow_downgrade=args.allow_downgrade)
    except ArtifactRefused as exc:
        print(f"{args.file}: refused ({exc.reason}): {exc.message}")
        return 2
    except ValueError as exc:  # a bad --installed
        print(f"rpfleet release verify: {exc}", file=sys.stderr)
        return 1
    unchecked = [name for name, value in (("architecture", args.arch), ("python", args.python_tag),
                                          ("version", args.installed)) if value is None]
    note = f" ({', '.join(unchecked)} not checked)" if unchecked else ""
    print(f"{args.file}: ok, signed by key {signer}: {_describe(manifest)}{note}")
    return 0


def _show(args: argparse.Namespace) -> int:
    try:
        manifest = read_manifest(args.file)
    except ArtifactRefused as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 2
    print("# NOT verified: use `rpfleet release verify` before trusting any of this")
    print(manifest.model_dump_json(indent=2))
    return 0


def _describe(manifest: Manifest) -> str:
    deps = "with dependencies" if manifest.bundles_dependencies else "rpfleet only"
    return (f"rpfleet {manifest.version} for {manifest.architecture}/{manifest.python_tag}, "
            f"{len(manifest.files)} wheel(s) ({deps}), {manifest.total_size / 1e6:.1f} MB")


ACTIONS = {"keygen": _keygen, "build": _build, "sign": _sign, "verify": _verify, "show": _show}
