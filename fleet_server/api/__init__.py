"""The fleet server's HTTP API (FastAPI) and its Prometheus metrics.

Modules, each small and with one job:

- `tokens`: API tokens — minted, stored hashed, checked, revoked (no FastAPI here,
  so the `rpfleet server token` commands load fast);
- `queries`: what the endpoints read from the store, as response models;
- `models`: the JSON the API returns (pydantic), which is also its OpenAPI schema;
- `metrics`: the numbers behind ``/metrics`` and their text exposition;
- `app`: `create_app`, the routes and the token check in front of all of them;
- `serving`: uvicorn in a thread, started and stopped by `FleetServer`;
- `openapi`: the OpenAPI document as committed under ``docs/openapi.json``.
"""
