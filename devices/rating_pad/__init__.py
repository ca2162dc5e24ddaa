"""Rating pads: the citizen's satisfaction tap.

- `decoding`: pure key-event -> rating logic (key map, key-up/repeat, bounce);
- `driver`: the `RatingPad` driver, adapter-agnostic;
- `evdev_adapter`: the thin USB HID adapter (exclusive grab);
- `fake`: a keypad in memory behind the same interface, for tests and the demo.
"""

from devices.rating_pad.config import RatingPadConfig
from devices.rating_pad.driver import RatingPad, build_rating_pad

__all__ = ["RatingPad", "RatingPadConfig", "build_rating_pad"]
