"""A soundbox's config: validated on the server before it is sent and on the node before use."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from devices.hotplug.match import DeviceMatch
from rpfleet.durations import Duration

DEFAULT_VOICE_PACK = Path("/var/lib/rpfleet/voice-packs/vi-default")

Kind = Literal["queue-call", "payment", "thank-you", "test", "identify", "text"]
Counter = str

# Kernel names that another device may take after a replug.
_KERNEL_NAME = re.compile(r"/dev/(ttyUSB|ttyACM)[0-9]+")


class SoundboxConfig(BaseModel):
    """One soundbox: a loudspeaker on the node's audio output, or a serial/network speaker."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["soundbox"] = "soundbox"
    id: str = Field(
        min_length=1, max_length=64, description="Stable name of this soundbox on the node."
    )
    counters: tuple[Counter, ...] = Field(
        default=(),
        description="The counters whose announcements it says; empty: every counter (the hall's "
        "speaker). Announcements without a counter (test, identify) are said by every soundbox.",
    )
    output: Literal["sounddevice", "serial", "fake"] = Field(
        default="sounddevice",
        description="sounddevice: the node's audio output (ALSA through PortAudio); serial: a "
        "speaker taking the line protocol in README.md; fake: in memory (tests, demo).",
    )
    output_name: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="sounddevice: the output's name or part of it as `python3 -m sounddevice` "
        "lists it (\"default\", \"bcm2835 Headphones\"); unset: the system's default output.",
    )
    device: str | None = Field(
        default=None,
        description="A path that survives a replug: a USB sound card's /dev/snd/by-id/... link "
        "(sounddevice), or the speaker's /dev/serial/by-id/... link or a socket://host:port "
        "URL (serial).",
    )
    match: DeviceMatch | None = Field(
        default=None,
        description="Or: find it by udev identity when it is plugged in (a USB sound card: "
        "its /dev/snd/controlCN; a serial speaker: its tty).",
    )
    baudrate: Literal[9600, 19200, 38400, 57600, 115200] = Field(
        default=115200, description="Serial speakers only."
    )
    voice_pack: Path = Field(
        default=DEFAULT_VOICE_PACK, description="The built voice pack's folder (its manifest.toml)."
    )
    style: Literal["northern", "southern"] = Field(
        default="northern", description="How numbers are read (nghìn/linh or ngàn/lẻ)."
    )
    ticket_reading: Literal["number", "digits"] = Field(
        default="number", description="Tickets as a number (một nghìn không trăm hai mươi ba) "
        "or digit by digit (một không hai ba).",
    )
    wording: dict[Kind, str] = Field(
        default_factory=dict,
        description="The pack's wording (template variant) per kind, e.g. {payment = \"fee\"}; "
        "\"default\" for the rest.",
    )
    volume: float = Field(
        default=1.0, ge=0.0, le=1.0, description="Scales the audio (1 = as the pack is)."
    )
    merge_window: Duration = Field(
        default=10, ge=0, le=300,
        description="A repeat of an announcement said less than this long ago is not said again.",
    )
    max_pending: int = Field(
        default=50, ge=1, le=1000, description="Waiting announcements at most."
    )
    lead_in: Duration = Field(
        default=0.1, ge=0, le=2,
        description="Silence before each announcement, so that an amplifier or a USB speaker "
        "waking up does not eat its first syllable.",
    )
    tail: Duration = Field(
        default=0.25, ge=0.05, le=2,
        description="Silence after each announcement (at least three times the output's "
        "latency is used): the output is closed only after it, so no speech is cut.",
    )

    @property
    def source(self) -> str | None:
        """What hot-plug reads to know which node a soundbox opens (`serial`: a tty)."""
        return "serial" if self.output == "serial" else None

    @field_validator("counters", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("counters")
    @classmethod
    def _named(cls, counters: tuple[str, ...]) -> tuple[str, ...]:
        bad = [c for c in counters if not 1 <= len(c) <= 128]
        if bad:
            raise ValueError(f"a counter is 1 to 128 characters, not {bad[0]!r}")
        return counters

    @field_validator("wording")
    @classmethod
    def _variant_names(cls, wording: dict[str, str]) -> dict[str, str]:
        bad = {k: v for k, v in wording.items() if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,31}", v)}
        if bad:
            raise ValueError(f"a wording is a template variant name such as \"default\": {bad}")
        return wording

    @field_validator("device")
    @classmethod
    def _stable_name(cls, device: str | None) -> str | None:
        if device is not None and _KERNEL_NAME.fullmatch(device):
            raise ValueError(
                f"{device!r} is a kernel name that changes on replug; "
                "use its /dev/serial/by-id/ link"
            )
        return device

    @model_validator(mode="after")
    def _consistent(self) -> "SoundboxConfig":
        if self.output == "serial" and not (self.device or self.match):
            raise ValueError("device or match is required when output is 'serial'")
        if self.output == "sounddevice" and self.device and not self.device.startswith("/dev/snd/"):
            raise ValueError(f"device {self.device!r}: a sound card's path is under /dev/snd/ "
                             "(its /dev/snd/by-id/ link); to pick an output by name, "
                             "use output_name")
        if self.output != "sounddevice" and self.output_name:
            raise ValueError("output_name is for output 'sounddevice'")
        return self

    def serves(self, counter: str | None) -> bool:
        """Whether this soundbox says an announcement for ``counter``."""
        return counter is None or not self.counters or counter in self.counters
