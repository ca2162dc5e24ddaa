"""The local device bridge: the kiosk page's way to the node's hardware (docs/device-bridge.md).

- `settings`: the agent's ``[bridge]`` section (pure; imported by agent/settings.py);
- `guard`: pure checks: loopback peer, this bridge's Host, allow-listed origin, this boot's token;
- `models`: request, response and WebSocket message bodies (the OpenAPI comes from them);
- `peripherals`: the Protocols the bridge needs of printers and soundboxes;
- `app`, `guarded`, `page_socket`: the Starlette routes, the guard in front of them, the
  WebSocket that pushes scans and status changes;
- `server`: `DeviceBridge`, uvicorn on the agent's event loop;
- `openapi`: the committed OpenAPI document, generated from `app.OPERATIONS` and the models;
- `kiosk/`: the sample kiosk page, served at /kiosk/ when ``sample_page`` is set.

Only `settings` may be imported without the web stack (Starlette, uvicorn).
"""
