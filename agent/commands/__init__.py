"""Remote commands (``down/cmd`` -> ``up/cmd-result``), each run at most once.

`runner` decides and runs, `store` keeps the executed ids and the results,
`handlers` does each command, `args` checks their arguments; the machine is
reached through thin adapters (`system_adapter`, `journal_adapter`).
"""

from __future__ import annotations

from typing import Any

from agent.commands.runner import CommandRunner


def for_node(agent: Any) -> CommandRunner:
    """The runner of a `agent.node.NodeAgent`: its drivers, its link, the machine's adapters."""
    from agent.commands.handlers import Handlers, NodeParts
    from agent.commands.journal_adapter import JournalCtl
    from agent.commands.runner import utc_now
    from agent.commands.store import CommandStore
    from agent.commands.system_adapter import MachineActions
    from rpfleet.protocol import Channel

    parts = NodeParts(
        drivers=lambda: agent.drivers, system=MachineActions(), journal=JournalCtl(), clock=utc_now,
        update_reset=lambda reason: agent.updates.reset(reason),
    )
    return CommandRunner(
        agent.settings.node_id,
        CommandStore(agent.settings.state_dir / "commands.sqlite"),
        Handlers(parts),
        lambda result: agent.link.publish(Channel.CMD_RESULT, result),
    )
