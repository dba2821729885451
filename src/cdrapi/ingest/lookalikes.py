"""Lines that are no CDR but look like another source's, and the command that reads them.

Asked only for rejected lines (no cost on the lines stored): a queue_log file given to
``ingest csv`` then says "use `cdrapi ingest queue-log`" on each rejected line instead
of a thousand bare "1 columns", and a CEL file "use `cdrapi ingest cel`".

- queue_log: ``epoch|callid|queue|agent|EVENT|data...`` (the pipe file), or a CSV export
  of the ``queue_log`` table (``time, callid, queuename, agent, event, data1...``);
- CEL: cel_custom's default mapping starts with the event type (``CHAN_START``,
  ``ANSWER``, ``HANGUP``...).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["other_source"]

_QUEUE_LOG = re.compile(r"\d{9,11}(?:\.\d+)?\|[^|]*\|[^|]*\|[^|]*\|[A-Z][A-Z_]+(?:\||$)")
_QUEUE_EVENTS = frozenset(
    "ENTERQUEUE CONNECT COMPLETECALLER COMPLETEAGENT ABANDON RINGNOANSWER RINGCANCELED "
    "EXITWITHTIMEOUT EXITWITHKEY EXITEMPTY TRANSFER BLINDTRANSFER ATTENDEDTRANSFER "
    "ADDMEMBER REMOVEMEMBER PAUSE UNPAUSE PAUSEALL UNPAUSEALL AGENTLOGIN AGENTLOGOFF "
    "AGENTCALLBACKLOGIN AGENTCALLBACKLOGOFF AGENTDUMP CONFIGRELOAD QUEUESTART DID INFO".split()
)
_CEL_EVENTS = frozenset(
    "CHAN_START CHAN_END HANGUP ANSWER APP_START APP_END PARK_START PARK_END USER_DEFINED "
    "BRIDGE_ENTER BRIDGE_EXIT BRIDGE_START BRIDGE_END BLINDTRANSFER ATTENDEDTRANSFER "
    "PICKUP FORWARD LINKEDID_END LOCAL_OPTIMIZE LOCAL_OPTIMIZE_BEGIN STREAM_BEGIN "
    "STREAM_END DTMF CONF_ENTER CONF_EXIT".split()
)


def other_source(line: str, fields: Sequence[str]) -> str | None:
    """What a line that is no CDR looks like, and which command reads it (or ``None``).
    Only rejected lines are asked."""
    if _QUEUE_LOG.match(line) or (
        len(fields) >= 5
        and (fields[4] in _QUEUE_EVENTS or [f.lower() for f in fields[:5]]
             == ["time", "callid", "queuename", "agent", "event"])
    ):  # fmt: skip
        return "looks like a queue_log line: use `cdrapi ingest queue-log`"
    if fields and (fields[0] in _CEL_EVENTS or fields[0].lower() == "eventtype"):
        return "looks like a CEL (cel_custom) line: use `cdrapi ingest cel`"
    return None
