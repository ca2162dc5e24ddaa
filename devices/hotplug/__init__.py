"""Hot-plug: which configured peripheral a udev device is, by what survives a replug.

- `match`: how a peripheral's config names its device (`DeviceMatch`);
- `nodes`: what a udev property dict is: a node a driver opens, its identity (pure);
- `matcher`: which peripheral a node is, ambiguity, unknown devices (pure);
- `inventory`: what is plugged in and attached where, as udev events come (pure);
- `udevadm`: `udevadm info` text -> property dicts (golden cases, pasted dumps);
- `adapter`: the `DeviceMonitor` interface; `udev_adapter`: pyudev behind it;
  `fake`: devices plugged and pulled in memory behind the same interface.

The agent's `agent.hotplug.HotPlug` carries out what the inventory decides.
README.md says why the rules are what they are.
"""
