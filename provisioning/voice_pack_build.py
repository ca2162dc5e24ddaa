"""Building a voice pack: every missing clip rendered with espeak-ng, levelled and measured.

`build_pack` reads a pack's manifest (``devices/soundbox/packs/vi-default`` is the default
source), and for each clip:

- a file a site recorded itself (any file in the pack's source folder that the build did not
  write, or one changed since) is kept byte for byte, only checked for the pack's format and
  measured, and copied unchanged when the build goes to another folder (``out``);
- a file an earlier build rendered with the same engine, voice, rate, text and levels is kept;
- anything else is rendered: ``espeak-ng -v VOICE -s RATE -w out.wav TEXT``, resampled to the
  pack's rate when it differs (espeak-ng writes 22050 Hz), trimmed of leading and trailing
  silence, brought to the pack's target speech RMS with peaks kept below its ceiling by a
  smooth limiter (espeak-ng peaks near full scale), faded in and out over 3 ms.

It then writes the manifest with every clip's source, hash and measurements, and checks the
pack's coverage (`devices.soundbox.voice_pack.coverage`). Server side: uses numpy.
"""

from __future__ import annotations

import array
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from devices.soundbox import voice_pack as vp

ESPEAK = "espeak-ng"
RECORDED = "recorded"
TRIM_BELOW_DB = 40.0
"""Leading and trailing 5 ms frames this far below the loudest are silence."""
LEAD_MS, TAIL_MS, EDGE_FADE_MS = 10, 30, 3
LIMITER_MS = 5
HEADER = (
    "# Voice pack manifest, written by `rpfleet provision voice-pack build`.\n"
    "# [pack], [engine], [templates] and the clips' file and text are the pack's source; source,\n"
    "# render_key, sha256 and the measurements are rewritten by every build.\n"
)


class BuildError(Exception):
    """The build cannot go on: no espeak-ng, a bad manifest, a site recording in another format."""


@dataclass
class BuildReport:
    """What a build did, clip ids by outcome, and the words the pack still cannot say."""

    root: Path
    rendered: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    recorded: list[str] = field(default_factory=list)
    missing_words: dict[str, list[str]] = field(default_factory=dict)


def build_pack(
    source: Path,
    *,
    out: Path | None = None,
    voice: str | None = None,
    rate_wpm: int | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> BuildReport:
    """Build the pack whose manifest is in ``source``, in place or into ``out``.

    With ``out``, site recordings found in ``source`` are copied there unchanged and earlier
    renders in ``out`` are reused. ``voice`` and ``rate_wpm`` override the manifest's
    ``[engine]`` and are written back into the built manifest. ``progress`` gets one line per
    clip ("12/33 n9 rendered ..."). Raises BuildError (and VoicePackError for a bad manifest).
    """
    source = Path(source)
    root = Path(out) if out is not None else source
    pack = vp.load_pack(source)
    manifest = pack.manifest
    overrides = {key: value for key, value in (("voice", voice), ("rate_wpm", rate_wpm))
                 if value is not None}
    try:
        engine = vp.EngineSettings.model_validate({**manifest.engine.model_dump(), **overrides})
    except ValidationError as exc:
        raise BuildError("; ".join(f"{err['loc'][0]}: {err['msg']} (got {err['input']!r})"
                                   for err in exc.errors())) from None
    earlier = _earlier_build(root) if root != source else {}
    engine_line = None
    report = BuildReport(root=root)
    clips: dict[str, vp.Clip] = {}
    total = len(manifest.clips)
    for number, (clip_id, clip) in enumerate(manifest.clips.items(), start=1):
        target = root / clip.file
        target.parent.mkdir(parents=True, exist_ok=True)
        found, prior = _existing(source, root, clip, earlier.get(clip_id))
        ours = found is not None and _our_render(found, prior)
        if found is not None and found == source / clip.file and not ours:
            samples = _recording(found, manifest.pack.sample_rate)
            if found != target:
                shutil.copyfile(found, target)
            clips[clip_id] = _measured(clip, samples, manifest.pack, RECORDED, None, target)
            report.recorded.append(clip_id)
            outcome = "kept (site recording)"
        else:
            engine_line = engine_line or _engine_line(engine)
            key = _render_key(engine_line, clip.text, manifest.pack)
            if ours and prior is not None and prior.render_key == key:
                if found != target:
                    shutil.copyfile(found, target)
                samples, _ = vp.read_wav(target, manifest.pack.sample_rate)
                report.kept.append(clip_id)
                outcome = "kept (rendered before)"
            else:
                samples = render_clip(clip.text, engine, manifest.pack)
                _write_atomically(target, samples, manifest.pack.sample_rate)
                report.rendered.append(clip_id)
                outcome = "rendered"
            clips[clip_id] = _measured(clip, samples, manifest.pack, engine_line, key, target)
        level = clips[clip_id]
        progress(f"{number:>3}/{total} {clip_id:<22} {outcome:<22} "
                 f"{level.duration_ms / 1000:5.2f} s  rms {level.rms_dbfs:6.1f}  "
                 f"peak {level.peak_dbfs:5.1f} dBFS  {clip.text!r}")
    built = manifest.model_copy(update={"engine": engine, "clips": clips})
    manifest_path = root / vp.MANIFEST
    checked = vp.manifest_from_data(built.model_dump(), str(manifest_path))
    _replace_text(manifest_path, manifest_toml(checked))
    report.missing_words = vp.coverage(vp.load_pack(root))
    return report


def default_pack_cache() -> Path:
    """Where `build_default_pack` keeps the built default pack: ``$XDG_CACHE_HOME/rpfleet/...``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rpfleet" / "voice-packs" / vp.DEFAULT_PACK_SOURCE.name


def build_default_pack(out: Path | None = None) -> Path:
    """Build the default pack (``devices/soundbox/packs/vi-default``) into ``out`` and return it.

    ``out`` defaults to `default_pack_cache`; a second call renders nothing that is still
    current, so the demo and tests call it freely. Raises BuildError when the pack cannot say
    everything it should.
    """
    out = Path(out) if out is not None else default_pack_cache()
    report = build_pack(vp.DEFAULT_PACK_SOURCE, out=out)
    if report.missing_words:
        words = ", ".join(map(repr, report.missing_words))
        raise BuildError(f"the default pack cannot say {words}")
    return out


def render_clip(text: str, engine: vp.EngineSettings, info: vp.PackInfo) -> array.array:
    """Say ``text`` with espeak-ng and return it levelled as the pack's 16-bit samples."""
    if shutil.which(ESPEAK) is None:
        raise BuildError(f"{ESPEAK} is not installed: install the Debian package espeak-ng "
                         "(scripts/bootstrap does)")
    with tempfile.TemporaryDirectory(prefix="rpfleet-voice-") as tmp:
        wav = Path(tmp) / "say.wav"
        command = [ESPEAK, "-v", engine.voice, "-s", str(engine.rate_wpm), "-b", "1",
                   "-w", str(wav), text]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0 or not wav.exists():
            raise BuildError(f"{ESPEAK} -v {engine.voice} failed for {text!r}: "
                             f"{(done.stderr or done.stdout).strip()}")
        samples, rate = vp.read_wav(wav)
    signal = np.array(samples, dtype=np.int16).astype(np.float64) / 32768
    signal = resample(signal, rate, info.sample_rate)
    signal = trim_silence(signal, info.sample_rate)
    if signal.size == 0:
        raise BuildError(f"{ESPEAK} -v {engine.voice} said nothing for {text!r}")
    signal = level(signal, info.sample_rate, info.loudness_dbfs, info.peak_ceiling_dbfs)
    edge = min(signal.size // 2, info.sample_rate * EDGE_FADE_MS // 1000)
    if edge:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, edge))
        signal[:edge] *= ramp
        signal[-edge:] *= ramp[::-1]
    return _to_pcm(signal)


def resample(signal: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """Band-limited resampling of a short clip (FFT: exact for what lies below both Nyquists)."""
    if rate == new_rate or signal.size == 0:
        return signal
    count = max(1, round(signal.size * new_rate / rate))
    spectrum = np.fft.rfft(signal)
    bins = count // 2 + 1
    if bins <= spectrum.size:
        spectrum = spectrum[:bins]
    else:
        spectrum = np.pad(spectrum, (0, bins - spectrum.size))
    return np.fft.irfft(spectrum, count) * (count / signal.size)


def trim_silence(signal: np.ndarray, rate: int) -> np.ndarray:
    """Cut leading and trailing silence, keeping 10 ms before the first sound and 30 ms after."""
    frame = max(1, rate * 5 // 1000)
    usable = signal[: signal.size - signal.size % frame]
    if usable.size == 0:
        return signal[:0]
    energy = np.sqrt(np.mean(usable.reshape(-1, frame) ** 2, axis=1))
    threshold = max(energy.max() * 10 ** (-TRIM_BELOW_DB / 20), 10 ** (-70 / 20))
    loud = np.flatnonzero(energy >= threshold)
    if loud.size == 0:
        return signal[:0]
    start = max(0, loud[0] * frame - rate * LEAD_MS // 1000)
    end = min(signal.size, (loud[-1] + 1) * frame + rate * TAIL_MS // 1000)
    return signal[start:end]


def level(signal: np.ndarray, rate: int, target_dbfs: float, ceiling_dbfs: float) -> np.ndarray:
    """Bring speech RMS (as `voice_pack.measure` has it) to ``target_dbfs``, peaks under ceiling.

    Gain, then a limiter whose gain never rises above what any sample within 5 ms needs, so
    it bends the envelope without clipping; a few rounds since limiting lowers the RMS a little.
    """
    ceiling = 10 ** ((ceiling_dbfs - 0.1) / 20)  # rounding to 16 bits stays below the ceiling
    for _ in range(6):
        measured = vp.measure(_to_pcm(signal), rate).rms_dbfs
        if measured <= vp.SILENCE_DBFS or abs(measured - target_dbfs) < 0.05:
            break
        signal = limit(signal * 10 ** ((target_dbfs - measured) / 20), rate, ceiling)
    return signal


def limit(signal: np.ndarray, rate: int, ceiling: float) -> np.ndarray:
    """Scale ``signal`` down smoothly wherever a sample would pass ``ceiling`` (linear)."""
    need = np.minimum(1.0, ceiling / np.maximum(np.abs(signal), 1e-12))
    if need.min() >= 1.0:
        return signal
    reach = max(1, rate * LIMITER_MS // 1000)
    window = 2 * reach + 1
    # The minimum over +-reach, then its mean over +-reach: every term of that mean is at most
    # the need of the sample in its middle, so the smoothed gain never lets a sample pass.
    lowest = np.lib.stride_tricks.sliding_window_view(
        np.pad(need, reach, constant_values=1.0), window).min(axis=1)
    smooth = np.convolve(np.pad(lowest, reach, mode="edge"), np.ones(window) / window, mode="valid")
    return signal * np.minimum(smooth, need)


def manifest_toml(manifest: vp.Manifest) -> str:
    """The manifest as TOML that `voice_pack.parse_manifest` reads back to the same model."""
    data = manifest.model_dump(mode="json", exclude_none=True)
    lines = [HEADER]
    for table in ("pack", "engine"):
        lines.append(f"[{table}]")
        lines += [f"{_key(k)} = {_value(v)}" for k, v in data[table].items()]
        lines.append("")
    for kind, variants in data["templates"].items():
        lines.append(f"[templates.{_key(kind)}]")
        lines += [f"{_key(name)} = {_value(items)}" for name, items in variants.items()]
        lines.append("")
    for clip_id, clip in data["clips"].items():
        lines.append(f"[clips.{_key(clip_id)}]")
        lines += [f"{_key(k)} = {_value(v)}" for k, v in clip.items()]
        lines.append("")
    return "\n".join(lines)


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's escapes are TOML's basic-string ones
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} to TOML")


def _earlier_build(root: Path) -> dict[str, vp.Clip]:
    try:
        return dict(vp.load_pack(root).manifest.clips)
    except vp.VoicePackError:
        return {}


def _existing(source: Path, root: Path, clip: vp.Clip, earlier: vp.Clip | None):
    """(the file to start from, the manifest entry that describes it), or (None, None).

    Site recordings live in the source folder; a file only in a separate ``out`` folder is
    reused only while it is still exactly an earlier render.
    """
    if (source / clip.file).is_file():
        return source / clip.file, clip
    if (root / clip.file).is_file():
        return root / clip.file, earlier
    return None, None


def _our_render(path: Path, entry: vp.Clip | None) -> bool:
    """Whether ``path`` is still exactly what an earlier build rendered."""
    return (entry is not None and entry.source not in (None, RECORDED) and entry.sha256 is not None
            and _sha256(path) == entry.sha256)


def _recording(path: Path, rate: int) -> array.array:
    try:
        samples, _ = vp.read_wav(path, expect_rate=rate)
    except vp.VoicePackError as exc:
        raise BuildError(f"site recording {exc}") from None
    return samples


def _measured(clip: vp.Clip, samples: array.array, info: vp.PackInfo, source: str,
              key: str | None, path: Path) -> vp.Clip:
    found = vp.measure(samples, info.sample_rate)
    return clip.model_copy(update={
        "source": source, "render_key": key, "sha256": _sha256(path),
        "duration_ms": found.duration_ms, "peak_dbfs": found.peak_dbfs, "rms_dbfs": found.rms_dbfs,
    })


def _engine_line(engine: vp.EngineSettings) -> str:
    try:
        done = subprocess.run([ESPEAK, "--version"], capture_output=True, text=True, timeout=30,
                              check=False)
    except FileNotFoundError:
        raise BuildError(f"{ESPEAK} is not installed: install the Debian package espeak-ng "
                         "(scripts/bootstrap does)") from None
    version = re.search(r"text-to-speech:\s*(\S+)", done.stdout)
    listing = subprocess.run([ESPEAK, "--voices=vi"], capture_output=True, text=True, timeout=30,
                             check=False)
    rows = [line.split() for line in listing.stdout.splitlines()[1:]]
    voices = {row[1].lower() for row in rows if len(row) > 1}
    if engine.voice.split("+")[0].lower() not in voices:
        raise BuildError(f"{engine.voice!r} is not one of {ESPEAK}'s Vietnamese voices "
                         f"({', '.join(sorted(voices)) or 'none installed'}; a variant may follow, "
                         "as in vi+f3)")
    return f"{ESPEAK} {version.group(1) if version else '?'} -v {engine.voice} -s {engine.rate_wpm}"


def _render_key(engine_line: str, text: str, info: vp.PackInfo) -> str:
    recipe = "\n".join([engine_line, text, str(info.sample_rate), str(info.loudness_dbfs),
                        str(info.peak_ceiling_dbfs)])
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _to_pcm(signal: np.ndarray) -> array.array:
    pcm = array.array("h")
    pcm.frombytes(np.clip(np.round(signal * 32768), -32768, 32767).astype(np.int16).tobytes())
    return pcm


def _write_atomically(path: Path, samples: array.array, rate: int) -> None:
    partial = path.with_name(path.name + ".partial")
    vp.write_wav(partial, vp.pcm_bytes(samples), rate)
    os.replace(partial, path)


def _replace_text(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
