"""The CEL events and queue_log lines the demo's PBX writes for each leg of a call.

What Asterisk 12+ writes with the demo PBX's cel.conf (``apps =
dial,queue,background,goto,mixmonitor``; ``events = CHAN_START,ANSWER,HANGUP,APP_START,
BRIDGE_ENTER,BLINDTRANSFER,ATTENDEDTRANSFER,LINKEDID_END``: the events that say something
of a call, without their ``*_END``/``*_EXIT`` twins, which also keeps the demo fast), in
the shapes of tests/fixtures/cel/: per channel ``CHAN_START`` .. ``ANSWER`` ..
``HANGUP`` (``extra``: ``hangupcause``, ``dialstatus``), ``APP_START`` of the tracked
applications (an IVR menu is ``BackGround`` in its context, the key pressed the
extension of the ``Goto`` that leaves it), ``BRIDGE_ENTER`` of the two sides,
``BLINDTRANSFER`` / ``ATTENDEDTRANSFER`` with their ``extra`` JSON as cel.c packs it,
an on-demand recording's ``MixMonitor`` and the call's ``LINKEDID_END``. An event is a
tuple in :data:`cdrapi.ingest.cel_events.Event` order
(time as ``<epoch>.000000`` text), the form CEL derivation reads; queue_log events are
:data:`cdrapi.ingest.queue_events.Event` tuples (``ENTERQUEUE``, ``CONNECT``,
``RINGNOANSWER``, ``COMPLETECALLER``, ``ABANDON``, ``EXITEMPTY``, the transfers).

:class:`Leg` is the PBX's side of one CDR; :func:`dial_events` and :func:`queue_events`
append its events to the call's lists; a :class:`Pbx` gets each call's logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "Cel",
    "Leg",
    "Pbx",
    "QueueEvent",
    "dial_events",
    "hangup_extra",
    "ivr_events",
    "queue_events",
    "transfer_extra",
]

Cel = tuple[str, str, str, str, str, str, str, str, str, str, str]
QueueEvent = tuple[int, str, str, str, str, tuple[str, ...]]

_CAUSES = {0: "16", 1: "19", 2: "17", 3: "3", 4: "34"}  # by status index
_DIALSTATUS = ("ANSWER", "NOANSWER", "BUSY", "CHANUNAVAIL", "CONGESTION")


def hangup_extra(cause: str, dialstatus: str) -> str:
    """A HANGUP event's ``extra`` JSON (cel.c: hangupcause, hangupsource, dialstatus)."""
    return f'{{"hangupcause":{cause},"hangupsource":"","dialstatus":"{dialstatus}"}}'


def transfer_extra(kind: str, target: str, transferee: str, transferee_uid: str) -> str:
    """A BLINDTRANSFER's (``target`` an extension) or ATTENDEDTRANSFER's (``target`` a
    channel) ``extra`` JSON, as cel.c packs it."""
    if kind == "blind":
        return (
            f'{{"extension":"{target}","context":"from-internal","bridge_id":"b",'
            f'"transferee_channel_name":"{transferee}",'
            f'"transferee_channel_uniqueid":"{transferee_uid}"}}'
        )
    return (
        f'{{"bridge1_id":"b1","bridge2_id":"b2","transferee_channel_name":"{transferee}",'
        f'"transferee_channel_uniqueid":"{transferee_uid}",'
        f'"transfer_target_channel_name":"{target}"}}'
    )


class Pbx(Protocol):
    """Where the PBX's own logs of each call go, as the demo makes them
    (:class:`cdrapi.demo.files.PbxFiles` writes them)."""

    def call(self, cdrs: list[tuple[str, ...]], cel: list[Cel], log: list[QueueEvent]) -> None:
        """One call's CDRs, CEL events (time order) and queue_log lines."""

    def day(self, midnight: str, epoch: int) -> None:
        """The end of a day's calls: its legs that start from ``midnight``
        (``"YYYY-MM-DD "``, local time; ``epoch`` in UTC seconds) on are the next day's."""

    def end(self) -> None:
        """The last call is made."""


@dataclass(slots=True)
class Leg:
    """One CDR's channels as the PBX ran them: the calling side ``a`` (channel name and
    uniqueid), the called side ``b`` (``""``: none rang), where the call came in, and
    whether this leg starts or ends the caller's channel."""

    at: int  # epoch seconds the leg starts
    a: str
    a_uid: str
    b: str
    b_uid: str
    number: str  # the caller's number (CEL cid_num)
    exten: str  # what was dialled
    context: str
    app: str
    data: str
    b_exten: str = ""  # b's extension ("": what was dialled)
    new_a: bool = True  # CHAN_START of a (else it carries on from an earlier leg)
    start_app: bool = True  # APP_START of app (else it runs since an earlier event)
    end_a: bool = True  # HANGUP of a
    ends_call: bool = True  # the call's LINKEDID_END (with end_a)
    b_started: bool = False  # b already exists (an attended transfer's target)
    b_stays: bool = False  # b stays up at the end (a consultation's target)


def dial_events(
    cel: list[Cel],
    leg: Leg,
    ring: int,
    bill: int,
    st: int,
    monitor: str | None = None,
    transfer: tuple[str, str, str] | None = None,
) -> None:
    """``a`` runs ``Dial`` (or, after an IVR, ``Queue``) and ``b`` rings ``ring`` seconds,
    then talks ``bill`` (``st`` 0) or not; ``monitor``: an on-demand MixMonitor file;
    ``transfer``: (kind, target, linkedid) when ``b`` transfers ``a`` at the end."""
    a, ua, b, ub, num = leg.a, leg.a_uid, leg.b, leg.b_uid, leg.number
    exten, ctx, app, data = leg.exten, leg.context, leg.app, leg.data
    t = leg.at
    add = cel.append
    if leg.new_a:
        add((f"{t}.000000", "CHAN_START", a, ua, "", "", exten, ctx, num, "", ""))
    if app and leg.start_app:
        add((f"{t}.000000", "APP_START", a, ua, app, data, exten, ctx, num, "", ""))
    answered, end = t + ring, t + ring + bill
    if b:
        bx = leg.b_exten or exten
        if not leg.b_started:
            add((f"{t}.000000", "CHAN_START", b, ub, "", "", bx, "from-internal", "", "", ""))
        if st == 0:
            at = f"{answered}.000000"
            if not leg.b_started:
                add((at, "ANSWER", b, ub, "", "", bx, "from-internal", "", "", ""))
            if leg.new_a:
                add((at, "ANSWER", a, ua, app, data, exten, ctx, num, "", ""))
            add((at, "BRIDGE_ENTER", a, ua, app, data, exten, ctx, num, "", '{"bridge_id":"b"}'))
            add((at, "BRIDGE_ENTER", b, ub, "", "", bx, "from-internal", "", a,
                 '{"bridge_id":"b"}'))  # fmt: skip
            if monitor is not None:
                at = f"{answered + min(bill // 2, 5)}.000000"
                add((at, "APP_START", b, ub, "MixMonitor", f"{monitor},b", bx, "from-internal",
                     "", "", ""))  # fmt: skip
            at = f"{end}.000000"
            if transfer is not None:
                kind, target, _ = transfer
                name = "BLINDTRANSFER" if kind == "blind" else "ATTENDEDTRANSFER"
                add((at, name, b, ub, "", "", bx, "from-internal", "", "",
                     transfer_extra(kind, target, a, ua)))  # fmt: skip
            if not leg.b_stays:
                add((at, "HANGUP", b, ub, "", "", bx, "from-internal", "", "",
                     hangup_extra("16", "")))  # fmt: skip
        else:
            at = f"{answered}.000000"
            add((at, "HANGUP", b, ub, "", "", bx, "from-internal", "", "",
                 hangup_extra(_CAUSES[st], "")))  # fmt: skip
    at = f"{end}.000000"
    if leg.end_a:
        add((at, "HANGUP", a, ua, "", "", exten, ctx, num, "",
             hangup_extra(_CAUSES[st], _DIALSTATUS[st])))  # fmt: skip
        if leg.ends_call:
            add((at, "LINKEDID_END", a, ua, "", "", exten, ctx, num, "", ""))


def ivr_events(cel: list[Cel], leg: Leg, menus: tuple[tuple[str, str], ...], ivr: int) -> None:
    """The caller ``a`` answered by the PBX and led through ``menus`` ((context, key)
    each, ``ivr`` seconds in all) before the queue."""
    a, ua, num, t = leg.a, leg.a_uid, leg.number, leg.at
    add = cel.append
    add((f"{t}.000000", "CHAN_START", a, ua, "", "", leg.exten, "from-pstn", num, "", ""))
    add((f"{t}.000000", "ANSWER", a, ua, "", "", "s", menus[0][0] if menus else "ext-queues",
         num, "", ""))  # fmt: skip
    at, left = t, ivr
    for n, (context, key) in enumerate(menus):
        spent = left if n == len(menus) - 1 else left // 2
        left -= spent
        nxt = menus[n + 1][0] if n + 1 < len(menus) else "ext-queues"
        add((f"{at}.000000", "APP_START", a, ua, "BackGround", f"custom/{context}", "s",
             context, num, "", ""))  # fmt: skip
        at += spent
        add((f"{at}.000000", "APP_START", a, ua, "Goto", f"{nxt},s,1", key, context, num,
             "", ""))  # fmt: skip


def queue_events(
    log: list[QueueEvent],
    callid: str,
    queue: str,
    enter: int,
    agent: str,
    hold: int,
    ring: int,
    bill: int,
    st: int,
    number: str,
    b_uid: str,
    transfer: tuple[str, str] | None = None,
) -> None:
    """The queue_log lines of a caller who entered ``queue`` at ``enter`` and waited
    ``hold`` seconds: connected to ``agent`` after ``ring`` seconds of ringing, that
    agent not answering (``st`` 1 with an agent), abandoned (``st`` 1 without), or no
    agent to take it (other statuses); ``transfer``: (kind, extension) when the agent
    transfers the caller."""
    add = log.append
    add((enter, callid, queue, "NONE", "ENTERQUEUE", ("", number, "1")))
    rang = enter + hold + ring
    if agent and st == 0:
        add((rang, callid, queue, agent, "CONNECT", (str(hold), b_uid, str(ring))))
        end = rang + bill
        if transfer is None:
            add((end, callid, queue, agent, "COMPLETECALLER", (str(hold), str(bill), "1")))
        elif transfer[0] == "blind":
            add((end, callid, queue, agent, "BLINDTRANSFER",
                 (transfer[1], "from-internal", str(hold), str(bill), "1")))  # fmt: skip
        else:
            add((end, callid, queue, agent, "ATTENDEDTRANSFER",
                 ("BRIDGE", transfer[1], str(hold), str(bill), "1")))  # fmt: skip
    elif agent:
        add((rang, callid, queue, agent, "RINGNOANSWER", (str(ring * 1000),)))
    elif st == 1:
        add((enter + hold, callid, queue, "NONE", "ABANDON", ("1", "1", str(hold))))
    else:
        add((enter + hold, callid, queue, "NONE", "EXITEMPTY", ("1", "1", str(hold))))
