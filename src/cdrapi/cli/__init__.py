"""The ``cdrapi`` command: one module per subcommand, all thin layers over the library."""

from cdrapi.cli.common import COMMANDS, main

__all__ = ["main"]

# The web call log's accounts: ``cdrapi user`` (issue 11's name), also ``cdrapi web-user``.
COMMANDS.update(dict.fromkeys(("user", "web-user"), "cdrapi.cli.web_user:web_user"))
