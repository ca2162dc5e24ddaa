"""The fleet server: ingest of every node's ``up/`` topics into the store, acks,
presence, the registry and the satisfaction summary."""
