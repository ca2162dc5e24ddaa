"""The `rpfleet provision` subcommands, one module each.

Each module has ``add(subparsers)``, which registers its parser(s) with
``set_defaults(handler=...)``; a handler takes ``args`` and returns the exit
code. To add a command, write a module and list it here.
"""

from provisioning.commands import broker_config, handover, init, node, voice_pack

MODULES: list = [init, broker_config, node, handover, voice_pack]
