"""cdrapi: a self-hosted Call Detail Record API for Asterisk-based PBXs.

The library comes first; the ``cdrapi`` command and the HTTP server are thin layers on it.
"""

from cdrapi.client import AsyncClient, Client
from cdrapi.protocol.encoding import http_build_query, parse_str
from cdrapi.protocol.signing import sign

__all__ = ["AsyncClient", "Client", "http_build_query", "parse_str", "sign"]
