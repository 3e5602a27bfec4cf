"""The HTTP API v1 (FastAPI): ``tandem.api.app.create_app(runtime)``; routers by noun, streams, auth."""
