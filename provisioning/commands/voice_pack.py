"""`voice-pack build|check`: render a voice pack's missing clips; check what a pack can say."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_MISSING_WORDS = 3


def add(sub: argparse._SubParsersAction) -> None:
    pack = sub.add_parser("voice-pack", help="build and check soundbox voice packs")
    actions = pack.add_subparsers(dest="voice_pack_action", required=True, metavar="ACTION")

    build = actions.add_parser(
        "build", help="render every missing clip with espeak-ng, level and measure all clips",
        description="Reads DIR/manifest.toml (devices/soundbox/packs/vi-default is the default "
        "pack's source), renders every clip that has no file with espeak-ng's Vietnamese voice, "
        "levels it to the pack's loudness, keeps the clips a site recorded itself as they are "
        "(measured only), writes the manifest with every clip's measurements and checks that "
        "the pack can say every word its templates and numbers need. Exit 0 when it can, "
        f"{EXIT_MISSING_WORDS} naming the missing words when not, 2 on an error.",
    )
    build.add_argument("dir", type=Path, help="the pack's folder (its manifest.toml)")
    build.add_argument("--out", type=Path,
                       help="build into this folder instead of DIR (DIR is left as it is)")
    build.add_argument("--voice", help="espeak-ng voice (default: the manifest's [engine], "
                       "vi = northern; also vi-vn-x-central, vi-vn-x-south)")
    build.add_argument("--rate", type=int, metavar="WPM",
                       help="speaking rate in words per minute (default: the manifest's [engine])")
    build.add_argument("-q", "--quiet", action="store_true", help="no line per clip")
    build.set_defaults(handler=_build)

    check = actions.add_parser(
        "check", help="check a built pack: manifest, clip files, words it cannot say",
        description="Validates DIR/manifest.toml, that every clip file is there in the pack's "
        "format, and the pack's coverage; renders nothing.",
    )
    check.add_argument("dir", type=Path, help="the pack's folder")
    check.set_defaults(handler=_check)


def _build(args: argparse.Namespace) -> int:
    from devices.soundbox.voice_pack import VoicePackError
    from provisioning.voice_pack_build import BuildError, build_pack

    def progress(line: str) -> None:
        if not args.quiet:
            print(line, flush=True)

    try:
        report = build_pack(args.dir, out=args.out, voice=args.voice, rate_wpm=args.rate,
                            progress=progress)
    except (BuildError, VoicePackError, OSError) as exc:
        return _fail(str(exc))
    print(f"voice pack {report.root}: {len(report.rendered)} rendered, {len(report.kept)} kept, "
          f"{len(report.recorded)} site recording(s)")
    return _coverage_result(report.missing_words)


def _check(args: argparse.Namespace) -> int:
    from devices.soundbox.voice_pack import VoicePackError, coverage, load_pack, read_clip

    try:
        pack = load_pack(args.dir)
        for clip_id in pack.manifest.clips:
            read_clip(pack, clip_id)
    except VoicePackError as exc:
        return _fail(str(exc))
    print(f"voice pack {pack.label}: {len(pack.manifest.clips)} clips, all present")
    return _coverage_result(coverage(pack))


def _coverage_result(missing: dict[str, list[str]]) -> int:
    if not missing:
        print("coverage: every word of every template and number is there")
        return 0
    print(f"rpfleet provision: the pack cannot say {len(missing)} word(s):", file=sys.stderr)
    for word, places in missing.items():
        print(f"  {word!r}: needed by {', '.join(places)}", file=sys.stderr)
    return EXIT_MISSING_WORDS


def _fail(message: str) -> int:
    print(f"rpfleet provision: {message}", file=sys.stderr)
    return 2
