"""The HTTP server: a thin Starlette layer over the protocol and the store."""
