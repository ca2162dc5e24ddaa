"""Voice packs: the clips a soundbox speaks with, and announcements put together from them.

A pack is a folder with ``manifest.toml`` and the WAV clips it names (the format is described in
``packs/vi-default/manifest.toml``). The node needs no speech engine: `compose` turns an
announcement into a list of clip ids through the pack's templates (numbers through `numbers`),
and `render` joins those clips into 16-bit mono PCM with short gaps and tiny fades. `coverage`
checks that a pack can say everything its templates and numbers may need. Standard library and
pydantic only: the node imports this module. Building a pack is `provisioning.voice_pack_build`.
"""

from __future__ import annotations

import array
import math
import re
import sys
import tomllib
import unicodedata
import wave
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from devices.soundbox import numbers
from devices.soundbox.numbers import NORTHERN, STYLES, ReadingStyle

MANIFEST = "manifest.toml"
DEFAULT_PACK_SOURCE = Path(__file__).parent / "packs" / "vi-default"
"""The default pack's source (texts and templates, no audio); build it to get the clips."""

KINDS = ("queue-call", "payment", "thank-you", "test", "identify", "text")
"""The announcement kinds, as in `rpfleet.protocol.messages.Announce.kind`."""

SLOTS_BY_KIND: dict[str, tuple[str, ...]] = {
    "queue-call": ("ticket", "counter"),
    "payment": ("amount", "counter"),
    "thank-you": ("counter",),
    "test": ("counter",),
    "identify": ("counter",),
    "text": ("text",),
}
"""The slots each kind's templates may use. None reads a name, and only "text" reads free text."""

TICKET_READINGS = ("number", "digits")
SLOT = re.compile(r"\{([a-z_]+)\}")
FRAME_MS = 20
GATE_DB = 30.0
SILENCE_DBFS = -120.0

Kind = Literal["queue-call", "payment", "thank-you", "test", "identify", "text"]
ClipId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")]
VariantName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")]


class VoicePackError(ValueError):
    """A pack that cannot be used: a bad manifest, a missing or malformed clip file."""


class ComposeError(ValueError):
    """An announcement that this pack cannot say (a missing value, an unknown wording, ...)."""


class MissingClips(ComposeError):
    """Words the announcement needs for which the pack has no clip; ``words`` lists them."""

    def __init__(self, pack_label: str, words: Sequence[str]) -> None:
        self.words = tuple(dict.fromkeys(words))
        quoted = ", ".join(repr(word) for word in self.words)
        super().__init__(f"voice pack {pack_label} has no clip for {quoted}")


def normalize_text(text: str) -> str:
    """What a clip says, as the pack matches it: NFC, lowercase, single spaces, letters only.

    Raises ValueError for anything but letters and spaces (a clip says words; punctuation and
    digits have no single reading).
    """
    words = unicodedata.normalize("NFC", text).lower().split()
    bad = sorted({ch for word in words for ch in word if not ch.isalpha()})
    if bad:
        raise ValueError(f"{text!r}: only letters and spaces, not {''.join(bad)!r}")
    if not words:
        raise ValueError("empty text")
    return " ".join(words)


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PackInfo(_Strict):
    """The ``[pack]`` table: identity, audio format, loudness, what numbers it can read, joins."""

    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    version: Annotated[str, StringConstraints(pattern=r"^\d+\.\d+\.\d+$")]
    language: Literal["vi"]
    sample_rate: Literal[8000, 16000, 22050, 24000, 32000, 44100, 48000]
    channels: Literal[1]
    sample_bits: Literal[16]
    loudness_dbfs: float = Field(ge=-40, le=-10)
    peak_ceiling_dbfs: float = Field(default=-1.0, ge=-12, le=0)
    styles: tuple[Literal["northern", "southern"], ...] = Field(min_length=1)
    max_number: int = Field(default=999_999_999_999, ge=9, le=numbers.MAX_NUMBER)
    word_gap_ms: int = Field(default=80, ge=0, le=500)
    phrase_gap_ms: int = Field(default=250, ge=0, le=2000)
    fade_ms: float = Field(default=5.0, ge=0, le=50)


class EngineSettings(_Strict):
    """The ``[engine]`` table: how the builder renders missing clips (the node ignores it)."""

    name: Literal["espeak-ng"] = "espeak-ng"
    voice: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9+_-]{0,39}$")] = "vi"
    rate_wpm: int = Field(default=150, ge=80, le=450)


class Clip(_Strict):
    """One ``[clips.ID]`` table: the file, what it says, and what the build measured."""

    file: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-][A-Za-z0-9._/-]*\.wav$")]
    text: str
    source: str | None = None
    """"recorded" for a site's own recording, else the engine line that rendered it."""
    render_key: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")] | None = None
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None
    duration_ms: int | None = Field(default=None, ge=0)
    peak_dbfs: float | None = Field(default=None, le=0)
    rms_dbfs: float | None = Field(default=None, le=0)

    @field_validator("file")
    @classmethod
    def _inside_pack(cls, value: str) -> str:
        if ".." in value.split("/"):
            raise ValueError("a clip file must be inside the pack's folder")
        return value

    @field_validator("text")
    @classmethod
    def _normalize_text(cls, value: str) -> str:
        return normalize_text(value)


class Manifest(_Strict):
    """A whole ``manifest.toml``."""

    pack: PackInfo
    engine: EngineSettings = EngineSettings()
    templates: dict[Kind, dict[VariantName, tuple[str, ...]]]
    clips: dict[ClipId, Clip] = Field(min_length=1)

    @field_validator("templates")
    @classmethod
    def _normalize_items(cls, templates: dict) -> dict:
        normalized = {}
        for kind, variants in templates.items():
            normalized[kind] = {}
            for name, items in variants.items():
                if not items:
                    raise ValueError(f"templates.{kind}.{name}: an empty wording")
                try:
                    normalized[kind][name] = tuple(
                        item if SLOT.fullmatch(item) else normalize_text(item) for item in items
                    )
                except ValueError as exc:
                    raise ValueError(f"templates.{kind}.{name}: {exc}") from None
        return normalized

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        problems = []
        said_by: dict[str, str] = {}
        kept_in: dict[str, str] = {}
        for clip_id, clip in self.clips.items():
            if clip.text in said_by:
                problems.append(f"clips.{clip_id}.text: {clip.text!r} is said by clip "
                                f"{said_by[clip.text]} already")
            if clip.file in kept_in:
                problems.append(f"clips.{clip_id}.file: {clip.file!r} is clip "
                                f"{kept_in[clip.file]}'s file already")
            said_by.setdefault(clip.text, clip_id)
            kept_in.setdefault(clip.file, clip_id)
        for kind in KINDS:
            variants = self.templates.get(kind)
            if variants is None:
                problems.append(f"templates.{kind}: missing (every kind needs a default wording)")
            elif "default" not in variants:
                problems.append(f"templates.{kind}: no 'default' wording")
        for kind, variants in self.templates.items():
            allowed = SLOTS_BY_KIND[kind]
            for name, items in variants.items():
                for index, item in enumerate(items):
                    slot = SLOT.fullmatch(item)
                    if slot and slot.group(1) not in allowed:
                        problems.append(
                            f"templates.{kind}.{name}[{index}]: {item} is not a slot of {kind} "
                            f"(it may use {', '.join('{' + s + '}' for s in allowed)}; "
                            "no slot ever reads a citizen's name)"
                        )
        if problems:
            raise ValueError("; ".join(problems))
        return self


@dataclass(frozen=True)
class VoicePack:
    """A loaded pack: its folder and its validated manifest."""

    root: Path
    manifest: Manifest

    @property
    def info(self) -> PackInfo:
        return self.manifest.pack

    @property
    def label(self) -> str:
        return f"{self.info.id} {self.info.version}"

    def clip_path(self, clip_id: str) -> Path:
        return self.root / self.manifest.clips[clip_id].file

    @cached_property
    def phrases(self) -> dict[tuple[str, ...], str]:
        """Clip ids by the words they say."""
        return {tuple(clip.text.split()): clip_id for clip_id, clip in self.manifest.clips.items()}

    @cached_property
    def longest_phrase(self) -> int:
        return max(len(words) for words in self.phrases)


def parse_manifest(text: str, where: str = MANIFEST) -> Manifest:
    """Validate a manifest's TOML text; VoicePackError names ``where`` and every bad field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise VoicePackError(f"{where}: not valid TOML: {exc}") from None
    return manifest_from_data(data, where)


def manifest_from_data(data: dict[str, Any], where: str = MANIFEST) -> Manifest:
    """Validate a manifest already parsed into a dict (see `parse_manifest`)."""
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_explain(err) for err in exc.errors())
        raise VoicePackError(f"{where}: {problems}") from None


def load_pack(root: Path | str) -> VoicePack:
    """Load the pack in folder ``root``; VoicePackError when its manifest is missing or bad.

    Clip files are read only when rendered, so a pack's source (no audio yet) loads too.
    """
    root = Path(root)
    path = root / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise VoicePackError(f"{path}: cannot read the manifest: {exc.strerror}") from None
    return VoicePack(root, parse_manifest(text, str(path)))


def _explain(err: dict[str, Any]) -> str:
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in err["loc"])
    where = where.lstrip(".")
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown key"
    if err["type"] == "missing":
        return f"{where}: missing"
    shown = repr(err["input"])
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    if not where or message.startswith(f"{where}."):  # a check that names its own fields
        return message
    return f"{where}: {message} (got {shown})"


# -- composing announcements ---------------------------------------------------------------


class AnnounceLike(Protocol):
    """What `compose` reads: `rpfleet.protocol.messages.Announce` or an `Announcement`."""

    kind: str
    ticket: str | None
    counter: str | None
    amount_vnd: int | None
    text: str | None


@dataclass(frozen=True)
class Announcement:
    """An announcement without the wire envelope (id, expiry), for callers and tests."""

    kind: str
    ticket: str | None = None
    counter: str | None = None
    amount_vnd: int | None = None
    text: str | None = None


def compose(
    announce: AnnounceLike,
    pack: VoicePack,
    style: ReadingStyle | str = NORTHERN,
    *,
    variant: str = "default",
    ticket_reading: str = "number",
) -> list[str]:
    """The clip ids that say ``announce`` with ``pack``'s template for its kind and ``variant``.

    Numbers are read in ``style`` (a `ReadingStyle` or a preset name); tickets are read as a
    number ("một nghìn không trăm hai mươi ba") or, with ``ticket_reading="digits"``, digit by
    digit. Each template item is said with the fewest clips: a whole-phrase clip where the
    pack has one, else word clips. Raises MissingClips naming every word the pack cannot say,
    and ComposeError for an unknown kind or wording, a missing value, a ticket or counter that
    is not digits, or a number above the pack's ``max_number``.
    """
    if isinstance(style, str):
        if style not in STYLES:
            raise ComposeError(f"unknown reading style {style!r} (known: {', '.join(STYLES)})")
        style = STYLES[style]
    if ticket_reading not in TICKET_READINGS:
        raise ComposeError(f"ticket_reading {ticket_reading!r} is not one of {TICKET_READINGS}")
    variants = pack.manifest.templates.get(announce.kind)  # type: ignore[call-overload]
    if variants is None:
        raise ComposeError(f"unknown announcement kind {announce.kind!r}")
    if variant not in variants:
        raise ComposeError(f"voice pack {pack.label} has no {variant!r} wording for "
                           f"{announce.kind} (it has {', '.join(sorted(variants))})")
    clip_ids: list[str] = []
    missing: list[str] = []
    for item in variants[variant]:
        slot = SLOT.fullmatch(item)
        if slot:
            words = _slot_words(slot.group(1), announce, pack, style, ticket_reading)
        else:
            words = item.split()
        ids, lacking = tile(words, pack)
        clip_ids += ids
        missing += lacking
    if missing:
        raise MissingClips(pack.label, missing)
    return clip_ids


def tile(words: Sequence[str], pack: VoicePack) -> tuple[list[str], list[str]]:
    """Split ``words`` into the fewest clips of ``pack``: (clip ids, []) or ([], missing words).

    Missing words are those no clip covers at their place; when every word is covered but no
    split exists (phrases that only overlap), the whole phrase is reported.
    """
    phrases, longest, count = pack.phrases, pack.longest_phrase, len(words)
    best: list[list[str] | None] = [None] * (count + 1)
    best[0] = []
    covered: set[int] = set()
    for start in range(count):
        for end in range(start + 1, min(count, start + longest) + 1):
            clip_id = phrases.get(tuple(words[start:end]))
            if clip_id is None:
                continue
            covered.update(range(start, end))
            done = best[start]
            if done is not None and (best[end] is None or len(done) + 1 < len(best[end])):
                best[end] = [*done, clip_id]
    if best[count] is not None:
        return best[count], []
    lacking = [word for index, word in enumerate(words) if index not in covered]
    return [], lacking or [" ".join(words)]


def _slot_words(slot: str, announce: AnnounceLike, pack: VoicePack, style: ReadingStyle,
                ticket_reading: str) -> list[str]:
    value = getattr(announce, "amount_vnd" if slot == "amount" else slot, None)
    if value is None:
        raise ComposeError(f"a {announce.kind} announcement needs its {slot} "
                           f"(the {pack.label} wording reads {{{slot}}})")
    if slot == "amount":
        return numbers.read_amount(_in_range(value, "amount", pack), style).split()
    if slot == "text":
        return _text_words(value, pack, style)
    if not (isinstance(value, str) and re.fullmatch(r"[0-9]{1,15}", value)):
        raise ComposeError(f"{slot} {value!r} cannot be read aloud: only digits can")
    if slot == "ticket" and ticket_reading == "digits":
        return numbers.read_digits(value).split()
    return numbers.read_number(_in_range(int(value), slot, pack), style).split()


def _in_range(number: int, what: str, pack: VoicePack) -> int:
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise ComposeError(f"{what} {number!r} is not a whole number of 0 or more")
    if number > pack.info.max_number:
        raise ComposeError(f"{what} {number:,} is above {pack.info.max_number:,}, "
                           f"the largest number voice pack {pack.label} reads")
    return number


def _text_words(text: str, pack: VoicePack, style: ReadingStyle) -> list[str]:
    """Free text: words by letters, each run of digits read as a number."""
    text = unicodedata.normalize("NFC", text).lower()
    if re.search(r"[0-9][.,][0-9]", text):
        raise ComposeError(f"text {text!r}: write numbers without separators "
                           "(50000, not 50.000): a separator could be read as two numbers")
    words: list[str] = []
    for token in re.findall(r"[0-9]+|[^\W\d_]+", text):
        if token.isdigit():
            words += numbers.read_number(_in_range(int(token), "number", pack), style).split()
        else:
            words.append(token)
    if not words:
        raise ComposeError(f"text {text!r} has no words to say")
    return words


# -- coverage ------------------------------------------------------------------------------


def number_vocabulary(max_number: int, style: ReadingStyle) -> frozenset[str]:
    """Every word `numbers.read_number` uses for some n in 0..max_number, in ``style``.

    Exact, without reading every number: a reading is made of class readings (each class is
    1..999, read as `read_number` reads that class alone, plus "không trăm" and the linh/lẻ
    word for a later class, which 0 and 101..109 also use) and scale words (nghìn or ngàn,
    triệu, tỷ: each first needed at 10^3, 10^6, 10^9). So the words of 0..min(max, 999) and
    of the powers of a thousand up to ``max_number`` are all of them. The digit words for
    reading tickets digit by digit are added too.
    """
    words: set[str] = set(numbers.DIGIT_WORDS)
    for number in range(min(max_number, 999) + 1):
        words.update(numbers.read_number(number, style).split())
    scale = 1000
    while scale <= max_number:
        words.update(numbers.read_number(scale, style).split())
        scale *= 1000
    return frozenset(words)


def coverage(pack: VoicePack) -> dict[str, list[str]]:
    """The words ``pack`` cannot say, each with where it is needed; empty when it can say all.

    Checked: every phrase of every template, and every word of every number up to the pack's
    ``max_number`` in each style it declares (plus "đồng" when a template reads an amount).
    Number words need a one-word clip each, since numbers put any of them next to any other.
    Free text ({text}) cannot be checked ahead.
    """
    missing: dict[str, list[str]] = {}

    def need(words: Iterable[str], where: str) -> None:
        for word in words:
            places = missing.setdefault(word, [])
            if where not in places:
                places.append(where)

    reads_amounts = False
    for kind, variants in pack.manifest.templates.items():
        for name, items in variants.items():
            for item in items:
                slot = SLOT.fullmatch(item)
                if slot:
                    reads_amounts |= slot.group(1) == "amount"
                    continue
                need(tile(item.split(), pack)[1], f"template {kind}/{name}")
    for style_name in pack.info.styles:
        vocabulary = number_vocabulary(pack.info.max_number, STYLES[style_name])
        if reads_amounts:
            vocabulary |= {numbers.DONG}
        need((w for w in sorted(vocabulary) if (w,) not in pack.phrases), f"numbers ({style_name})")
    return {word: places for word, places in missing.items() if places}


def missing_files(pack: VoicePack) -> list[str]:
    """The ids of clips whose file is not in the pack's folder (an unbuilt pack lacks all)."""
    return [clip_id for clip_id in pack.manifest.clips if not pack.clip_path(clip_id).is_file()]


# -- audio ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Level:
    """What `measure` finds in 16-bit samples."""

    duration_ms: int
    peak_dbfs: float
    rms_dbfs: float
    """Speech RMS: over the 20 ms frames within 30 dB of the loudest, so pauses do not count."""


def measure(samples: array.array | bytes, sample_rate: int) -> Level:
    """Duration, peak and speech RMS of 16-bit mono samples (an array of 'h' or raw LE bytes)."""
    if isinstance(samples, (bytes, bytearray)):
        samples = _pcm_array(bytes(samples))
    count = len(samples)
    peak = max((abs(s) for s in samples), default=0)
    frame = max(1, sample_rate * FRAME_MS // 1000)
    energies = []
    for start in range(0, count, frame):
        chunk = samples[start:start + frame]
        energies.append((sum(s * s for s in chunk), len(chunk)))
    loudest = max((energy / size for energy, size in energies), default=0.0)
    gate = loudest * 10 ** (-GATE_DB / 10)
    kept = [(energy, size) for energy, size in energies if loudest and energy / size >= gate]
    mean_square = sum(e for e, _ in kept) / sum(n for _, n in kept) if kept else 0.0
    return Level(
        duration_ms=round(count * 1000 / sample_rate),
        peak_dbfs=_dbfs(peak),
        rms_dbfs=_dbfs(math.sqrt(mean_square)),
    )


def _dbfs(amplitude: float) -> float:
    if amplitude <= 0:
        return SILENCE_DBFS
    return round(max(SILENCE_DBFS, 20 * math.log10(amplitude / 32768)), 2)


def read_clip(pack: VoicePack, clip_id: str) -> array.array:
    """The samples of one clip; VoicePackError if its file is missing or in another format."""
    if clip_id not in pack.manifest.clips:
        raise VoicePackError(f"voice pack {pack.label} has no clip {clip_id!r}")
    path = pack.clip_path(clip_id)
    samples, _ = read_wav(path, expect_rate=pack.info.sample_rate)
    return samples


def read_wav(path: Path, expect_rate: int | None = None) -> tuple[array.array, int]:
    """(samples, sample rate) of a 16-bit mono PCM WAV file; VoicePackError for anything else."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except FileNotFoundError:
        raise VoicePackError(f"{path}: missing (build the pack: rpfleet provision voice-pack "
                             "build DIR)") from None
    except (OSError, wave.Error, EOFError) as exc:
        raise VoicePackError(f"{path}: not a PCM WAV file: {exc}") from None
    if channels != 1 or width != 2 or (expect_rate is not None and rate != expect_rate):
        wanted = f"{expect_rate} Hz " if expect_rate else ""
        raise VoicePackError(f"{path}: {rate} Hz, {channels} channel(s), {8 * width}-bit; the pack "
                             f"takes {wanted}mono 16-bit (sox IN -r {expect_rate or rate} -c 1 "
                             "-b 16 OUT converts one)")
    return _pcm_array(frames), rate


def render(clip_ids: Sequence[str], pack: VoicePack) -> bytes:
    """16-bit little-endian mono PCM at the pack's rate: the clips in order, with gaps.

    The gap before or after a phrase clip (more than one word) is ``phrase_gap_ms``, between
    two word clips ``word_gap_ms``; every clip fades in and out over ``fade_ms`` so that no join
    clicks. Raises VoicePackError for an unknown clip id or a missing or malformed file.
    """
    info = pack.info
    clips = pack.manifest.clips
    fade = round(info.sample_rate * info.fade_ms / 1000)
    out = array.array("h")
    previous: str | None = None
    for clip_id in clip_ids:
        samples = read_clip(pack, clip_id)
        if previous is not None:
            out.frombytes(bytes(2 * gap_samples(clips[previous].text, clips[clip_id].text, info)))
        _fade(samples, fade)
        out.extend(samples)
        previous = clip_id
    return pcm_bytes(out)


def pcm_bytes(samples: array.array) -> bytes:
    """16-bit samples as little-endian bytes, as WAV files and `render` carry them."""
    if sys.byteorder == "big":
        samples = array.array("h", samples)
        samples.byteswap()
    return samples.tobytes()


def gap_samples(before: str, after: str, info: PackInfo) -> int:
    """Samples of silence between a clip saying ``before`` and one saying ``after``."""
    phrase = " " in before or " " in after
    return round(info.sample_rate * (info.phrase_gap_ms if phrase else info.word_gap_ms) / 1000)


def write_wav(path: Path, pcm: bytes, sample_rate: int) -> None:
    """Write 16-bit mono PCM (as `render` returns it) to a WAV file."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)


def _fade(samples: array.array, length: int) -> None:
    length = min(length, len(samples) // 2)
    last = len(samples) - 1
    for i in range(length):
        samples[i] = int(samples[i] * i / length)
        samples[last - i] = int(samples[last - i] * i / length)


def _pcm_array(frames: bytes) -> array.array:
    samples = array.array("h")
    samples.frombytes(frames[: len(frames) - len(frames) % 2])
    if sys.byteorder == "big":
        samples.byteswap()
    return samples
