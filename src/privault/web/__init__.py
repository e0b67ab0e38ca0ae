"""The FastAPI app: routers per domain, templates, static files."""
