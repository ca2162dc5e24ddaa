"""Real audio in tests: a private PulseAudio with a null sink, recordings of what reaches it,
and the measurements that say whether an announcement came out whole.

No sound card exists on the test machines, so the tests start a sound server of their own
(one per test process), let the real driver play through sounddevice -> PortAudio -> ALSA ->
Debian's libasound2-plugins -> PulseAudio, as it would through ALSA on a Pi, and record the
sink's monitor with ``parec``. What was found out building this, and is done here:

- PortAudio lists devices once, when sounddevice is imported: ``PULSE_SERVER`` and
  ``XDG_RUNTIME_DIR`` are set in this process before that (`sound_server`);
- an idle null sink runs with a 2 s latency and the monitor delivers late, in large blocks:
  a keep-alive stream (silence at 20 ms latency) keeps the sink running at low latency, and a
  recording counts as started only once ``SETTLE_S`` of sound has arrived from it; without
  both, the head of each clip is missing from the recording;
- where the sound server cannot start (not installed, refused), the fixture skips and says
  why; it never fakes the audio it claims to check.

Debian packages: pulseaudio, pulseaudio-utils (parec, pacat, pactl), libasound2-plugins
(ALSA's default routed to PulseAudio), libportaudio2 (sounddevice's PortAudio).
"""

from __future__ import annotations

import atexit
import math
import os
import shutil
import subprocess
import sys
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

DEBIAN_PACKAGES = "pulseaudio pulseaudio-utils libasound2-plugins libportaudio2"
SINK = "rpfleet_test"
SINK_RATE = 48000
"""What a Pi's output runs at: announcements (22050 Hz) are resampled on the way, as there."""
SETTLE_S = 0.3
START_TIMEOUT_S = 15.0
FRAME_MS = 5
SPEECH_DBFS = -45.0
"""A frame of the expected sound this loud is speech that must be heard."""
HEARD_WITHIN_DB = 6.0
"""A speech frame counts as heard when the recording has it no more than this much quieter."""


class SoundServerUnavailable(Exception):
    """The sound server cannot run here; the message says why (and what to install)."""


class SoundServer:
    """A private PulseAudio (``-n``: no default.pa, no desktop), own runtime dir, one null sink."""

    def __init__(self, workdir: Path, *, sink_rate: int = SINK_RATE) -> None:
        self.workdir = workdir
        self.runtime = workdir / "run"
        self.socket = self.runtime / "native"
        self.sink_rate = sink_rate
        self._server: subprocess.Popen | None = None
        self._keep_alive: subprocess.Popen | None = None
        self.log = workdir / "pulseaudio.log"

    @property
    def env(self) -> dict[str, str]:
        return {"PULSE_SERVER": f"unix:{self.socket}", "XDG_RUNTIME_DIR": str(self.runtime)}

    def start(self) -> "SoundServer":
        missing = [tool for tool in ("pulseaudio", "parec", "pacat", "pactl") if shutil.which(tool) is None]
        if missing:
            raise SoundServerUnavailable(
                f"{', '.join(missing)} not installed (Debian: {DEBIAN_PACKAGES}; scripts/bootstrap)"
            )
        self.runtime.mkdir(parents=True, mode=0o700, exist_ok=True)
        env = {**os.environ, **self.env, "HOME": str(self.workdir)}
        with open(self.log, "ab") as log:
            self._server = subprocess.Popen(
                ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no",
                 "--log-target=stderr", "--disallow-module-loading=no",
                 "-L", f"module-native-protocol-unix socket={self.socket} auth-anonymous=1",
                 "-L", f"module-null-sink sink_name={SINK} rate={self.sink_rate} channels=1"],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while self._pactl("info").returncode != 0:
            if self._server.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log.read_text(errors="replace").strip().splitlines()[-5:]
                raise SoundServerUnavailable("pulseaudio did not start: " + " | ".join(tail))
            time.sleep(0.05)
        # A stream of silence keeps the sink running at low latency (see the module docstring).
        self._keep_alive = subprocess.Popen(
            ["pacat", "--playback", f"--device={SINK}", "--raw", "--format=s16le", "--channels=1",
             f"--rate={self.sink_rate}", "--latency-msec=20", "--client-name=keep-alive", "/dev/zero"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        while len(self.sink_inputs()) < 1:
            if self._keep_alive.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SoundServerUnavailable("the keep-alive stream could not connect to pulseaudio")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        for proc in (self._keep_alive, self._server):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._keep_alive = self._server = None

    def sink_inputs(self) -> list[str]:
        """The streams playing into the sink now (the keep-alive is one), as pactl lists them."""
        done = self._pactl("list", "short", "sink-inputs")
        return [line for line in done.stdout.splitlines() if line.strip()]

    def recorder(self, path: Path, rate: int) -> "Recorder":
        return Recorder(self, path, rate)

    def _pactl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["pactl", *args], env={**os.environ, **self.env}, capture_output=True,
                              text=True, timeout=10, check=False)


@dataclass(frozen=True)
class Capture:
    """A recording: 16-bit mono samples at ``rate``, kept as a WAV file at ``wav``."""

    samples: np.ndarray
    rate: int
    wav: Path

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.rate


class Recorder:
    """``parec`` on the sink's monitor into a raw file; `seconds` says how much has arrived."""

    def __init__(self, server: SoundServer, path: Path, rate: int) -> None:
        self.server, self.rate = server, rate
        self.raw = path.with_suffix(".raw")
        self.wav = path.with_suffix(".wav")
        self._proc: subprocess.Popen | None = None
        self.capture: Capture | None = None

    def __enter__(self) -> "Recorder":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        with open(self.raw, "wb") as out:
            self._proc = subprocess.Popen(
                ["parec", f"--device={SINK}.monitor", "--raw", "--format=s16le", "--channels=1",
                 f"--rate={self.rate}", "--latency-msec=20", "--client-name=recorder"],
                env={**os.environ, **self.server.env}, stdout=out, stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while self.seconds() < SETTLE_S:
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"parec recorded {self.seconds():.2f}s in {START_TIMEOUT_S}s")
            time.sleep(0.01)

    def seconds(self) -> float:
        """How much sound has reached the file so far."""
        try:
            return self.raw.stat().st_size / 2 / self.rate
        except FileNotFoundError:
            return 0.0

    def stop(self) -> Capture:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.terminate()
            proc.wait(5)
        data = self.raw.read_bytes()
        data = data[: len(data) - len(data) % 2]
        with wave.open(str(self.wav), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(self.rate)
            wav.writeframes(data)
        self.capture = Capture(np.frombuffer(data, dtype="<i2").astype(np.int16), self.rate, self.wav)
        return self.capture


_SHARED: SoundServer | None = None
_UNAVAILABLE: str | None = None


def shared_sound_server(workdir: Path) -> SoundServer:
    """The process's sound server, started on first use (its env put in ``os.environ``);
    raises SoundServerUnavailable, every time, if it could not start."""
    global _SHARED, _UNAVAILABLE
    if _UNAVAILABLE is not None:
        raise SoundServerUnavailable(_UNAVAILABLE)
    if _SHARED is None:
        try:
            server = SoundServer(workdir).start()
        except SoundServerUnavailable as exc:
            _UNAVAILABLE = str(exc)
            raise
        atexit.register(server.stop)
        os.environ.update(server.env)
        _SHARED = server
        _point_portaudio_at(server)
    return _SHARED


def _point_portaudio_at(server: SoundServer) -> None:
    """Make sure PortAudio in this process sees the server's output."""
    already = "sounddevice" in sys.modules
    try:
        import sounddevice as sd
    except OSError as exc:  # PortAudio library not found
        raise SoundServerUnavailable(f"sounddevice cannot load PortAudio: {exc} "
                                     f"(Debian: libportaudio2)") from None
    if already:  # imported before the env was set: start PortAudio afresh
        sd._terminate()
        sd._initialize()
    names = [d["name"] for d in sd.query_devices() if d["max_output_channels"] > 0]
    if "pulse" not in names:
        raise AssertionError(
            f"PortAudio does not list PulseAudio's ALSA device (outputs: {names}); is "
            f"libasound2-plugins installed (Debian: {DEBIAN_PACKAGES})?"
        )


@pytest.fixture(scope="session")
def sound_server(tmp_path_factory: pytest.TempPathFactory) -> SoundServer:
    """The private sound server; skips, saying why, where it cannot start."""
    try:
        return shared_sound_server(tmp_path_factory.mktemp("pulse"))
    except SoundServerUnavailable as exc:
        pytest.skip(f"no sound server: {exc}")


# -- what came out -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Heard:
    """How a recording compares with the sound that was played (`hear`)."""

    start: int
    """Where the expected sound begins in the recording (samples)."""
    length: int
    rate: int
    similarity: float
    """Normalised cross-correlation of the two over the expected length (1 = the same)."""
    lost_head_ms: int
    """Speech at the start of the expected sound missing from the recording."""
    lost_tail_ms: int
    lost_ms: int
    """Speech missing anywhere (a dropout, an underflow)."""
    clipped: int
    """Recorded samples at full scale."""
    peak_dbfs: float
    gap_dbfs: tuple[float, ...]
    """The recording's level in the middle of each join between clips."""

    @property
    def start_s(self) -> float:
        return self.start / self.rate

    @property
    def end_s(self) -> float:
        return (self.start + self.length) / self.rate


def dbfs(samples: np.ndarray) -> float:
    if samples.size == 0:
        return -120.0
    rms = math.sqrt(float(np.mean(np.square(samples.astype(np.float64)))))
    return max(-120.0, 20 * math.log10(rms / 32768)) if rms > 0 else -120.0


def align(recorded: np.ndarray, expected: np.ndarray) -> tuple[int, float]:
    """(lag, similarity): where ``expected`` sits in ``recorded`` by cross-correlation (FFT),
    and the normalised correlation there."""
    rec = recorded.astype(np.float64)
    exp = expected.astype(np.float64)
    if len(rec) < len(exp):
        rec = np.concatenate([rec, np.zeros(len(exp) - len(rec))])
    size = 1 << (len(rec) + len(exp)).bit_length()
    corr = np.fft.irfft(np.fft.rfft(rec, size) * np.conj(np.fft.rfft(exp, size)), size)
    lag = int(np.argmax(corr[: len(rec) - len(exp) + 1]))
    segment = rec[lag:lag + len(exp)]
    denominator = math.sqrt(float(np.dot(segment, segment)) * float(np.dot(exp, exp)))
    return lag, (float(np.dot(segment, exp)) / denominator if denominator else 0.0)


def _frame_levels(samples: np.ndarray, frame: int) -> np.ndarray:
    count = len(samples) // frame
    frames = samples[: count * frame].astype(np.float64).reshape(count, frame)
    rms = np.sqrt(np.mean(np.square(frames), axis=1))
    with np.errstate(divide="ignore"):
        return np.maximum(-120.0, 20 * np.log10(np.maximum(rms, 1e-9) / 32768))


def hear(recorded: np.ndarray, expected: np.ndarray, rate: int,
         joins: list[tuple[int, int]] = ()) -> Heard:
    """Compare a recording with the sound played: alignment, similarity, speech lost at the
    head, the tail and anywhere (5 ms frames), clipping, and the level inside each join
    (``joins``: silent sample ranges of ``expected`` between clips)."""
    start, similarity = align(recorded, expected)
    segment = recorded[start:start + len(expected)]
    frame = rate * FRAME_MS // 1000
    want = _frame_levels(expected, frame)
    got = _frame_levels(np.concatenate([segment, np.zeros(len(expected) - len(segment), np.int16)]), frame)
    speech = want > SPEECH_DBFS
    lost = speech & (got < want - HEARD_WITHIN_DB)
    speech_at = np.flatnonzero(speech)
    head = tail = 0
    if speech_at.size:
        for index in speech_at:
            if not lost[index]:
                break
            head += 1
        for index in speech_at[::-1]:
            if not lost[index]:
                break
            tail += 1
    margin = rate * 10 // 1000
    gaps = tuple(dbfs(segment[a + margin:b - margin]) for a, b in joins if b - a > 2 * margin)
    peak = int(np.max(np.abs(segment.astype(np.int32)))) if segment.size else 0
    return Heard(
        start=start, length=len(expected), rate=rate, similarity=similarity,
        lost_head_ms=head * FRAME_MS, lost_tail_ms=tail * FRAME_MS,
        lost_ms=int(np.count_nonzero(lost)) * FRAME_MS,
        clipped=int(np.count_nonzero(np.abs(recorded.astype(np.int32)) >= 32767)),
        peak_dbfs=round(20 * math.log10(peak / 32768), 2) if peak else -120.0,
        gap_dbfs=gaps,
    )


def clip_joins(clips: list[str], pack) -> list[tuple[int, int]]:
    """The silent sample ranges between clips in what `voice_pack.render` makes of ``clips``."""
    from devices.soundbox.voice_pack import gap_samples, read_clip

    table, joins, position = pack.manifest.clips, [], 0
    for index, clip_id in enumerate(clips):
        if index:
            gap = gap_samples(table[clips[index - 1]].text, table[clip_id].text, pack.info)
            joins.append((position, position + gap))
            position += gap
        position += len(read_clip(pack, clip_id))
    return joins


def pcm_samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.int16)



def wav_samples(path: Path, rate: int) -> np.ndarray:
    """A 16-bit PCM WAV (any channels and rate, e.g. QEMU's ``-audiodev wav``) as mono
    int16 samples at ``rate``: channels averaged, resampled in the frequency domain (exact
    for sound band-limited below both rates' Nyquist, as a resampled announcement is)."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: {8 * wav.getsampwidth()}-bit samples, not 16")
        channels, source_rate = wav.getnchannels(), wav.getframerate()
        data = wav.readframes(wav.getnframes())
    frames = np.frombuffer(data[: len(data) - len(data) % (2 * channels)], dtype="<i2")
    mono = frames.reshape(-1, channels).astype(np.float64).mean(axis=1)
    return _resampled(mono, round(mono.size * rate / source_rate))


def _resampled(samples: np.ndarray, count: int) -> np.ndarray:
    """``samples`` stretched or squeezed to ``count`` samples (FFT), as int16."""
    mono = samples.astype(np.float64)
    if count != mono.size and mono.size:
        spectrum = np.fft.rfft(mono)
        keep = count // 2 + 1
        spectrum = spectrum[:keep] if keep <= spectrum.size else np.concatenate(
            [spectrum, np.zeros(keep - spectrum.size, complex)])
        mono = np.fft.irfft(spectrum, count) * (count / samples.size)
    return np.clip(np.round(mono), -32768, 32767).astype(np.int16)


def clock_ratio(recorded: np.ndarray, expected: np.ndarray, rate: int,
                window_s: float = 0.5) -> float:
    """How much longer ``expected`` lasts in ``recorded`` than it should (1.0: the same
    clock): the loudest ``window_s`` of its first and of its last quarter, each found in the
    recording near where the whole aligns. An emulated sound card's clock (QEMU's, under
    TCG) runs a little off the host's; over a few seconds that smears the samples enough
    for cross-correlation of the whole to fail though every syllable is there."""
    window = int(window_s * rate)
    quarter = len(expected) // 4
    if quarter < window:
        return 1.0
    start, _ = align(recorded, expected)

    def loudest(lo: int, hi: int) -> int:  # the start of the loudest window in [lo, hi)
        energy = np.convolve(np.square(expected[lo:hi + window].astype(np.float64)), np.ones(window), "valid")
        return lo + int(np.argmax(energy[: hi - lo]))

    def found(at: int) -> int:
        lo = max(0, start + at - window)
        lag, _ = align(recorded[lo:start + at + 2 * window], expected[at:at + window])
        return lo + lag

    first, last = loudest(0, quarter), loudest(len(expected) - quarter, len(expected) - window)
    return (found(last) - found(first)) / (last - first)


def dedrifted(recorded: np.ndarray, ratio: float) -> np.ndarray:
    """``recorded`` on the host's clock again (see `clock_ratio`)."""
    return _resampled(recorded, round(len(recorded) / ratio))
