"""Signed software updates on the node, installed beside the running release, proven or rolled back.

- `agent.update.machine`: the pure state machine (`next_state`);
- `agent.update.journal`: the on-disk journal it works on;
- `agent.update.proof`: the new release's evidence and the judgement on it;
- `agent.update.settings`: ``[update]`` settings, the maintenance window, `may_install_now`;
- `agent.update.updater`: `Updater`, which runs the machine's actions;
- `agent.update.guard`: the start-time guard (``ExecStartPre=``) that rolls back a
  release that cannot start.
"""
