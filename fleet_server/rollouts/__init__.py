"""Software releases and their rollouts in waves (issue 11, the server's side).

- `plan`: which node goes in which wave (pure, deterministic, stable);
- `gates`: whether a wave may proceed, must wait, or halts the rollout (pure);
- `store`: the tables (``releases``, ``rollouts``, ``rollout_targets``,
  ``node_updates``), SQL only, both backends;
- `progress`: `start`, `advance` (the periodic step), `pause`, `resume`, `abort`;
- `publish`: each node's desired update, retained on ``down/update``, and the
  duty that runs `advance` and publishing in one server worker of many;
- `releases`: adding a verified, signed artifact.

docs/updates.md (operator's path) and docs/http-api.md ("Releases and rollouts")
say how they are used.
"""
