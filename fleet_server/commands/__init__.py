"""The `rpfleet server` subcommands, one module each.

Each module has ``add(subparsers)``, which registers its parser(s) with
``set_defaults(handler=...)``; a handler takes ``(args, settings)`` and
returns the exit code. To add a command, write a module and list it here.
"""

from fleet_server.commands import openapi, registry, report, serve, summary, tokens
from fleet_server.commands import alerts, nodes, sites
from fleet_server.commands import command
from fleet_server.commands import config
from fleet_server.commands import release, rollout

MODULES = [serve, registry, sites, nodes, summary, report, tokens, openapi, alerts, command, config,
           release, rollout]
