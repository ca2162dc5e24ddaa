"""Rating pads: the citizen's satisfaction tap (README.md beside this file).

- `decoding`: pure key-event -> tap logic (key map, key-up/repeat, bounce);
- `misuse`: pure burst and hammering judgement, attached to taps as ``suspect``;
- `serial_protocol`: the serial pads' line protocol, pure bytes in and out;
- `driver`: the `RatingPad` driver, adapter-agnostic;
- `evdev_adapter`, `serial_adapter`: the thin USB HID and serial adapters;
- `fake`: a keypad in memory behind the same interface, for tests and the demo.
"""

from devices.rating_pad.config import RatingPadConfig
from devices.rating_pad.driver import RatingPad, build_rating_pad

__all__ = ["RatingPad", "RatingPadConfig", "build_rating_pad"]
