"""Soundboxes: queue calls and fee confirmations spoken in Vietnamese (README.md beside this file).

- `numbers`: pure reading of integers, đồng amounts and ticket digits as Vietnamese words;
- `number_parser`: the reverse, from those words back to the number (tests, checks on templates);
- `voice_pack`: packs of clips, announcements composed from them and rendered into sound;
- `queue`: pure: what to say next, what to merge, what to drop (the playback rules);
- `driver`: the `Soundbox` driver, adapter-agnostic;
- `sounddevice_adapter`, `serial_adapter` (`serial_protocol` its pure line protocol): the thin
  adapters for the node's audio output and for serial speakers;
- `fake`: a speaker in memory behind the same interface, for tests and the demo.
"""

from devices.soundbox.config import SoundboxConfig
from devices.soundbox.driver import Soundbox, build_soundbox

__all__ = ["Soundbox", "SoundboxConfig", "build_soundbox"]
