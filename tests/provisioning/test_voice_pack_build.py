"""`rpfleet provision voice-pack build`: real espeak-ng renders, levels, recordings, coverage."""

from __future__ import annotations

import array
import copy
import math
import shutil
import tomllib
import wave
from pathlib import Path

import numpy as np
import pytest

from devices.soundbox.voice_pack import (
    DEFAULT_PACK_SOURCE,
    MANIFEST,
    load_pack,
    manifest_from_data,
    measure,
    parse_manifest,
    read_clip,
    write_wav,
)
from provisioning import voice_pack_build
from provisioning.cli import main
from provisioning.voice_pack_build import (
    build_pack,
    level,
    limit,
    manifest_toml,
    resample,
    trim_silence,
)

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (scripts/bootstrap installs the Debian package espeak-ng)",
)
SOURCE_DATA = tomllib.loads((DEFAULT_PACK_SOURCE / MANIFEST).read_text(encoding="utf-8"))
CLIPS = len(SOURCE_DATA["clips"])
RATE = SOURCE_DATA["pack"]["sample_rate"]


def pack_source(folder: Path, change=None) -> Path:
    """A copy of the default pack's source in ``folder``, its manifest changed by ``change``."""
    folder.mkdir(parents=True, exist_ok=True)
    data = copy.deepcopy(SOURCE_DATA)
    if change:
        change(data)
    (folder / MANIFEST).write_text(manifest_toml(manifest_from_data(data)), encoding="utf-8")
    return folder


def recording(path: Path, rate: int = RATE, channels: int = 1, rms_dbfs: float = -30.0) -> bytes:
    """A stand-in for a site's own recording: a 0.6 s vowel-like tone at ``rms_dbfs``."""
    t = np.arange(int(0.6 * rate)) / rate
    tone = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((180, 360, 540, 720), start=1))
    tone *= 10 ** (rms_dbfs / 20) / np.sqrt(np.mean(tone**2))
    pcm = np.repeat(np.round(tone * 32768).astype("<i2"), channels).tobytes()
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
    return path.read_bytes()


def build(*args: str) -> int:
    return main(["voice-pack", "build", *map(str, args)])


def test_builds_the_default_pack_into_a_folder_and_leaves_the_source_alone(tmp_path, capsys):
    source_before = sorted(p.name for p in DEFAULT_PACK_SOURCE.rglob("*"))
    assert build(DEFAULT_PACK_SOURCE, "--out", tmp_path / "built") == 0
    out = capsys.readouterr().out
    assert f"  1/{CLIPS} call-intro" in out and f"{CLIPS}/{CLIPS} dong" in out
    assert f"{CLIPS} rendered, 0 kept, 0 site recording(s)" in out
    assert "coverage: every word" in out
    assert sorted(p.name for p in DEFAULT_PACK_SOURCE.rglob("*")) == source_before

    pack = load_pack(tmp_path / "built")
    assert pack.manifest.templates == load_pack(DEFAULT_PACK_SOURCE).manifest.templates
    for clip_id, clip in pack.manifest.clips.items():
        assert clip.source.startswith("espeak-ng 1.") and clip.source.endswith("-v vi -s 150"), clip
        assert clip.render_key and clip.sha256 and clip.duration_ms, clip
        assert abs(clip.rms_dbfs - pack.info.loudness_dbfs) <= 0.5, clip
        assert clip.peak_dbfs <= -1.0, clip
        with wave.open(str(pack.clip_path(clip_id))) as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (RATE, 1, 2)


def test_a_second_build_renders_nothing_and_changes_nothing(tmp_path, capsys):
    out = tmp_path / "built"
    assert build(DEFAULT_PACK_SOURCE, "--out", out, "-q") == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert build(DEFAULT_PACK_SOURCE, "--out", out) == 0
    assert f"0 rendered, {CLIPS} kept" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_a_new_rate_or_voice_renders_again(tmp_path, capsys):
    out = tmp_path / "built"
    assert build(DEFAULT_PACK_SOURCE, "--out", out, "-q") == 0
    normal = sum(c.duration_ms for c in load_pack(out).manifest.clips.values())
    assert build(DEFAULT_PACK_SOURCE, "--out", out, "-q", "--rate", "110") == 0
    slow = load_pack(out)
    assert f"{CLIPS} rendered" in capsys.readouterr().out
    assert slow.manifest.engine.rate_wpm == 110
    assert sum(c.duration_ms for c in slow.manifest.clips.values()) > 1.15 * normal
    assert (
        build(DEFAULT_PACK_SOURCE, "--out", out, "-q", "--rate", "110", "--voice", "vi-vn-x-south")
        == 0
    )
    assert all(
        c.source.endswith("-v vi-vn-x-south -s 110") for c in load_pack(out).manifest.clips.values()
    )


def test_keeps_a_sites_own_recording_untouched_but_measured(tmp_path, capsys):
    source = pack_source(tmp_path / "site")
    (source / "clips").mkdir()
    recorded = recording(source / "clips" / "n5.wav", rms_dbfs=-30.0)
    assert build(source) == 0
    assert "n5                     kept (site recording)" in capsys.readouterr().out
    pack = load_pack(source)
    clip = pack.manifest.clips["n5"]
    assert pack.clip_path("n5").read_bytes() == recorded, "a real voice is never re-levelled"
    assert clip.source == "recorded" and clip.render_key is None
    assert abs(clip.rms_dbfs - -30.0) < 0.1 and clip.duration_ms == 600
    assert pack.manifest.clips["n4"].source.startswith("espeak-ng")

    # Built in place, then a site replaces a rendered clip with its own: kept too.
    replaced = recording(source / "clips" / "n4.wav", rms_dbfs=-24.0)
    assert build(source, "-q") == 0
    assert f"0 rendered, {CLIPS - 2} kept, 2 site recording(s)" in capsys.readouterr().out
    pack = load_pack(source)
    assert pack.clip_path("n4").read_bytes() == replaced
    assert pack.manifest.clips["n4"].source == "recorded"
    assert abs(pack.manifest.clips["n4"].rms_dbfs - -24.0) < 0.1
    assert pack.clip_path("n5").read_bytes() == recorded


def test_copies_a_sites_recording_unchanged_when_building_elsewhere(tmp_path):
    source = pack_source(tmp_path / "site")
    (source / "clips").mkdir()
    recorded = recording(source / "clips" / "to-counter.wav")
    assert build(source, "--out", tmp_path / "built", "-q") == 0
    built = load_pack(tmp_path / "built")
    assert built.clip_path("to-counter").read_bytes() == recorded
    assert built.manifest.clips["to-counter"].source == "recorded"
    assert sorted(p.name for p in (source / "clips").iterdir()) == ["to-counter.wav"]


def test_refuses_a_recording_in_another_format_naming_it(tmp_path, capsys):
    source = pack_source(tmp_path / "site")
    (source / "clips").mkdir()
    recording(source / "clips" / "n7.wav", rate=44100, channels=2)
    assert build(source, "-q") == 2
    assert (
        "site recording " + str(source / "clips" / "n7.wav") + ": 44100 Hz, 2 channel(s), 16-bit; "
        "the pack takes 22050 Hz mono 16-bit (sox IN -r 22050 -c 1 -b 16 OUT"
    ) in capsys.readouterr().err


def test_resamples_to_the_packs_rate(tmp_path):
    source = pack_source(tmp_path / "narrow", lambda d: d["pack"].update(sample_rate=16000))
    assert build(source, "-q") == 0
    narrow = load_pack(source)
    wide = load_pack(pack_source(tmp_path / "wide"))
    build(wide.root, "-q")
    wide = load_pack(wide.root)
    for clip_id, clip in narrow.manifest.clips.items():
        with wave.open(str(narrow.clip_path(clip_id))) as wav:
            assert wav.getframerate() == 16000
        assert abs(clip.duration_ms - wide.manifest.clips[clip_id].duration_ms) <= 15, clip_id
        assert abs(clip.rms_dbfs - -20.0) <= 0.5 and clip.peak_dbfs <= -1.0, clip_id


def test_fails_naming_the_words_the_pack_cannot_say(tmp_path, capsys):
    def without_billion_and_counter(data):
        del data["clips"]["billion"]
        del data["clips"]["to-counter"]

    source = pack_source(tmp_path / "pack", without_billion_and_counter)
    assert build(source, "-q") == 3
    err = capsys.readouterr().err
    assert "the pack cannot say 4 word(s)" in err
    assert "'tỷ': needed by numbers (northern), numbers (southern)" in err
    assert "'quầy': needed by template queue-call/default, template queue-call/priority" in err


def test_check_a_built_pack_and_an_unbuilt_one(tmp_path, capsys):
    assert main(["voice-pack", "check", str(DEFAULT_PACK_SOURCE)]) == 2
    assert "call-intro.wav: missing (build the pack" in capsys.readouterr().err
    assert build(DEFAULT_PACK_SOURCE, "--out", tmp_path / "built", "-q") == 0
    assert main(["voice-pack", "check", str(tmp_path / "built")]) == 0
    assert f"voice pack vi-default 1.0.0: {CLIPS} clips, all present" in capsys.readouterr().out


def test_says_what_is_missing_when_espeak_ng_is_not_there(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(voice_pack_build, "ESPEAK", "espeak-ng-not-installed")
    assert build(DEFAULT_PACK_SOURCE, "--out", tmp_path / "built") == 2
    assert "espeak-ng-not-installed is not installed: install the Debian package espeak-ng" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--voice", "en"], "'en' is not one of espeak-ng's Vietnamese voices (vi, "),
        (["--rate", "5"], "rate_wpm: Input should be greater than or equal to 80 (got 5)"),
        (["--voice", "vi;rm"], "voice: String should match pattern"),
    ],
    ids=["not-vietnamese", "too-slow", "bad-voice-name"],
)
def test_refuses_a_bad_engine_setting(tmp_path, capsys, args, message):
    assert build(DEFAULT_PACK_SOURCE, "--out", tmp_path / "built", "-q", *args) == 2
    assert message in capsys.readouterr().err


def test_a_bad_manifest_names_the_field(tmp_path, capsys):
    source = pack_source(tmp_path / "pack")
    text = (source / MANIFEST).read_text(encoding="utf-8").replace("channels = 1", "channels = 2")
    (source / MANIFEST).write_text(text, encoding="utf-8")
    assert build(source) == 2
    assert "manifest.toml: pack.channels: Input should be 1 (got 2)" in capsys.readouterr().err


def test_the_written_manifest_reads_back_the_same(tmp_path):
    source = load_pack(DEFAULT_PACK_SOURCE).manifest
    assert parse_manifest(manifest_toml(source)) == source
    report = build_pack(DEFAULT_PACK_SOURCE, out=tmp_path / "built")
    built = load_pack(report.root).manifest
    assert parse_manifest(manifest_toml(built)) == built


def test_the_default_pack_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert (
        voice_pack_build.default_pack_cache() == tmp_path / "rpfleet" / "voice-packs" / "vi-default"
    )
    built = voice_pack_build.build_default_pack()
    assert built == voice_pack_build.default_pack_cache()
    assert len(read_clip(load_pack(built), "n1")) > 0


# -- the signal steps ------------------------------------------------------------------------


def test_level_brings_a_peaky_signal_to_the_target_under_the_ceiling():
    rate = RATE
    t = np.arange(rate) / rate
    signal = 0.05 * np.sin(2 * np.pi * 220 * t)
    signal[::2000] = 0.99  # clicks far above the rest, as espeak-ng's plosives are
    out = level(signal, rate, -16.0, -1.0)
    pcm = array.array("h", np.round(out * 32768).astype(np.int16).tolist())
    found = measure(pcm, rate)
    assert abs(found.rms_dbfs - -16.0) <= 0.3
    assert found.peak_dbfs <= -1.0


def test_the_limiter_never_lets_a_sample_pass_the_ceiling_and_leaves_the_rest():
    rng = np.random.default_rng(8)
    signal = rng.normal(0, 0.05, RATE)
    burst = slice(RATE // 2, RATE // 2 + 200)
    signal[burst] = rng.normal(0, 0.8, 200)
    limited = limit(signal, RATE, 0.5)
    assert np.abs(limited).max() <= 0.5
    away = RATE * 11 // 1000  # the limiter reaches 5 ms either side, twice
    assert np.allclose(limited[: burst.start - away], signal[: burst.start - away], rtol=1e-9)
    assert np.allclose(limited[burst.stop + away :], signal[burst.stop + away :], rtol=1e-9)


def test_resample_keeps_pitch_and_level():
    t = np.arange(RATE) / RATE
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)
    narrow = resample(tone, RATE, 16000)
    assert narrow.size == 16000
    spectrum = np.abs(np.fft.rfft(narrow))
    assert abs(np.argmax(spectrum) * 16000 / narrow.size - 1000) <= 1
    assert math.isclose(np.sqrt(np.mean(narrow**2)), 0.5 / math.sqrt(2), rel_tol=0.01)


def test_trim_keeps_a_short_margin_around_the_sound():
    sound = 0.3 * np.sin(np.arange(RATE // 2))
    padded = np.concatenate([np.zeros(RATE), sound, np.zeros(RATE)])
    trimmed = trim_silence(padded, RATE)
    assert RATE // 2 <= trimmed.size <= RATE // 2 + RATE * 45 // 1000
    assert trim_silence(np.zeros(RATE), RATE).size == 0


def test_a_rendered_clip_sounds_like_speech_not_silence(tmp_path):
    pack = load_pack(voice_pack_build.build_default_pack(tmp_path / "built"))
    for clip_id in ("call-intro", "n1", "billion"):
        samples = np.array(read_clip(pack, clip_id), dtype=np.float64)
        spectrum = np.abs(np.fft.rfft(samples))
        freqs = np.fft.rfftfreq(samples.size, 1 / RATE)
        voice_band = spectrum[(freqs > 80) & (freqs < 4000)].sum()
        assert voice_band > 0.6 * spectrum.sum(), clip_id  # most energy where a voice has it
    write_wav(tmp_path / "check.wav", bytes(4), RATE)  # the helper writes what read_wav reads


def test_a_stray_file_in_the_build_folder_is_rendered_over(tmp_path):
    """Recordings live in the pack's source; the build folder holds only what the build wrote."""
    out = tmp_path / "built"
    assert build(DEFAULT_PACK_SOURCE, "--out", out, "-q") == 0
    stray = recording(out / "clips" / "n8.wav")
    report = build_pack(DEFAULT_PACK_SOURCE, out=out)
    assert report.rendered == ["n8"] and not report.recorded
    assert (out / "clips" / "n8.wav").read_bytes() != stray
