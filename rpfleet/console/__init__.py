"""The fleet console: a Textual app over the fleet server's HTTP API (`rpfleet console`).

It talks to the server only through `client.FleetApi` with an API token, so it
runs on any laptop and never opens the database. `view` works out what the
screens show (pure code); `screens` and `detail` put it on the terminal.
"""
