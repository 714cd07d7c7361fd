"""The data API: FastAPI app factory (api.app), routes, version-keyed cache and ETags,
and the uvicorn service the hub runs (api.server)."""
