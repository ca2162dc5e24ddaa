"""Hot-plug: which configured peripheral a udev device is, by what survives a replug."""
