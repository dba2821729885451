"""The ``cdrapi`` command: one module per subcommand, all thin layers over the library."""

from cdrapi.cli.common import main

__all__ = ["main"]
