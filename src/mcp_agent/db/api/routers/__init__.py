"""The REST API's routers, one module per resource; app.py mounts each under /v1."""
