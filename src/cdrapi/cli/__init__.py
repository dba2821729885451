"""The ``cdrapi`` command: one module per subcommand, all thin layers over the library."""

from cdrapi.cli.common import main
from cdrapi.cli.demo import demo
from cdrapi.cli.ingest import ingest
from cdrapi.cli.pull import pull
from cdrapi.cli.serve import serve

main.add_command(demo)
main.add_command(ingest)
main.add_command(pull)
main.add_command(serve)

__all__ = ["main"]
