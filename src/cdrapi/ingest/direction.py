"""A call's direction (IN, OUT, INTERNAL) from what its CDR says, without configured trunks.

When the directory has ``[[trunks]]``, they decide (:class:`cdrapi.ingest.derive.Deriver`,
sign ``trunk``). Without, :meth:`Directions.decide` takes the first of these signs that
speaks, and says which (the sign names are what ``cdrapi ingest`` counts and prints):

1. ``did``: a non-empty ``did`` (the number the caller dialled) -> IN.
2. ``trunk-name``: a vendor export's trunk columns: the trunk the call came in on
   (``srctrunk``) -> IN, else the trunk it went out on (``dsttrunk``) -> OUT.
3. ``call-type``: the export's own call type (``calltype``: Yeastar's Communication
   Type, 3CX, Grandstream): ``Inbound``/``Incoming``/``in`` -> IN, ``Outbound``/``Outgoing``/
   ``out`` -> OUT, ``Internal``/``Local``/``Extension`` -> INTERNAL; other values are no sign.
4. ``linkedid``: a leg that is not the first of its call (``uniqueid`` is not the
   ``linkedid``) takes the direction of its call, when an earlier row of the call was IN or
   OUT (the first leg when it came first, else the first leg seen; the first leg's own row
   sets it again). A queue member's leg, an IVR's, a follow-me to a mobile are the call's.
   A leg of an internal call keeps its own signs: a transfer out of it is a call out.
5. ``context``: the dialplan context. IN: ``from-pstn``, ``from-trunk*``, ``ext-did*``,
   ``from-did*``, ``from-external``, ``from-sip-external``, ``from-zaptel``/``from-dahdi``/
   ``from-analog``/``from-digital`` (FreePBX, Issabel), ``from-outside`` (Thirdlane),
   ``public-direct-dial`` (MikoPBX), and any context with ``pstn``, ``trunk``, ``did``,
   ``incoming`` or ``inbound`` in it. OUT: ``outrt-*``, ``macro-dialout-trunk``/
   ``sub-dialout-trunk``, ``outbound-allroutes`` (FreePBX), ``outgoing`` (MikoPBX), any
   context with ``dialout``, ``outbound`` or ``outgoing``. An internal context
   (``from-internal*``, ``default``, ``internal*``, ``cos-*`` of VitalPBX, ``all_peers``)
   means OUT when the destination is a phone number (below), unless the destination
   channel is an extension's device or the caller is a phone number on a channel that is
   not an extension's (an inbound call forwarded out). PBXware names a trunk's context as
   the trunk itself: such contexts say nothing, the next signs decide.
6. ``channel``: the channel technology and name (:func:`cdrapi.ingest.channels.channel_kind`):
   a source channel that is a line to the outside (chan_dongle/GSM, a DAHDI PRI span
   ``DAHDI/i1/...``, H.323, mISDN), a peer named like a trunk (``trunk``, ``pstn``,
   ``gsm``, ``gw``, ``provider``... or an IP address), or an analog port (DAHDI/Zap) whose
   caller is not an extension -> IN; the same as the destination channel (an analog port
   to a phone number) -> OUT; both channels extensions' devices -> INTERNAL.
7. ``number``: the caller is a phone number on a channel that is not an extension's ->
   IN; else the destination is a phone number not on an extension's device -> OUT.
8. ``default``: INTERNAL.

An extension's device: a directory user's channel, or a device named as the number it
carries (``PJSIP/101`` calling as 101, ``PJSIP/client1`` as client1). A phone number:
digits (a leading ``+`` allowed), at least 7 of them and more than the site's extensions
have. The site's extensions have as many digits as the longest directory user's
extension, or as the longest number seen on its own device (learned from the data: a site
with 10-digit extensions teaches 10 on its first call from one), and at least 6: shorter
numbers are queues, ring groups and feature codes.

Caches are per distinct context, channel and call type; the linkedid memory is bounded
(:data:`CALLS`: the older half is forgotten when it is full, after a batch).
"""

from __future__ import annotations

import re
from itertools import islice

from cdrapi.ingest.channels import ANALOG, GATEWAY, TRUNK, channel_kind
from cdrapi.ingest.directory import Directory

__all__ = [
    "CALLS",
    "DEFAULT_EXTENSION_DIGITS",
    "IN",
    "INTERNAL",
    "OUT",
    "SIGNS",
    "Directions",
    "call_type",
    "context_kind",
]

IN, OUT, INTERNAL = "IN", "OUT", "INTERNAL"
#: The sign names, in the order they are tried ("trunk": configured trunks decide alone).
SIGNS = ("trunk", "did", "trunk-name", "call-type", "linkedid", "context", "channel", "number",
         "default")  # fmt: skip
#: Numbers of up to this many digits are extensions, whatever the site's are.
DEFAULT_EXTENSION_DIGITS = 6
MEMORY = 200_000  # distinct contexts, channels, call types cached
#: Calls (linkedids) remembered: a call's legs are minutes apart, 50,000 calls are hours.
CALLS = 50_000

_OUT_CONTEXT = re.compile(
    r"outrt|dialout|outbound|outgoing|^to-(?:pstn|trunk|external|outside|provider|carrier)",
    re.I,
)
_IN_CONTEXT = re.compile(
    r"pstn|trunk|did|from-(?:sip-)?external|from-outside|incoming|inbound|^public"
    r"|from-(?:zaptel|dahdi|analog|digital|pri|bri|isdn|gsm|dongle|provider|itsp|carrier|voip)",
    re.I,
)
_INTERNAL_CONTEXT = re.compile(
    r"from-internal|^internal|^default$|^cos-|^all_peers$"
    r"|^(?:from-)?(?:sip|phones?|users?|extensions?|local|sip-phones?)$",
    re.I,
)
_INTERNAL = "internal"  # context_kind's answer for an internal context
_NEUTRAL = "none"  # a context that says nothing (cached as such)
_DEFAULT = "default"
_OUTSIDE = frozenset((GATEWAY, TRUNK))  # channel kinds that are lines to the outside


def context_kind(context: str) -> str:
    """``IN``, ``OUT``, ``"internal"`` (an internal context) or ``""`` for a context."""
    if _OUT_CONTEXT.search(context):
        return OUT
    if _IN_CONTEXT.search(context):
        return IN
    return _INTERNAL if _INTERNAL_CONTEXT.search(context) else ""


def call_type(value: str) -> str | None:
    """The direction an export's call type names (``Inbound`` -> ``IN``), or None."""
    text = value.strip().lower().replace("_", " ").replace("-", " ")
    if text.startswith(("internal", "intern", "local", "extension", "inner")) or text in (
        "int",
        "ext",
    ):
        return INTERNAL
    if text.startswith(("inbound", "incoming", "in ", "external in")) or text == "in":
        return IN
    if text.startswith(("outbound", "outgoing", "out ")) or text == "out":
        return OUT
    return None


class Directions:
    """Decides directions by the signs above; keeps the caches and the linkedid memory."""

    def __init__(self, directory: Directory | None = None) -> None:
        self.directory = directory or Directory()
        lengths = [len(e) for e in self.directory.by_extension if e.isdigit()]
        #: Digits of the site's extensions (grows as the data shows longer ones).
        self.extension_digits = max([DEFAULT_EXTENSION_DIGITS, *lengths])
        self._users = bool(self.directory.users)
        #: Public for Deriver.row's copy of decide()'s commonest case: context -> the
        #: direction it decides (IN, OUT) or "" (see context_kind), and linkedid -> the
        #: direction of its call (bounded by :meth:`bound`, which Deriver.take_signs calls).
        self.decisive: dict[str, str] = {}
        self.calls: dict[str, str] = {}
        self._older: dict[str, str] = {}  # the calls remembered before (see bound)
        self._contexts: dict[str, str] = {}  # context -> context_kind
        self._channels: dict[str, tuple[str, str | None, bool]] = {}
        self._types: dict[str, str | None] = {}

    def bound(self) -> None:
        """Keep the linkedid memory to :data:`CALLS` calls: once the newer half
        (:attr:`calls`) holds half of them, it becomes the older half and the one before
        is forgotten (dropped whole: deleting the oldest calls one by one cost a second
        a million lines). The caller takes :attr:`calls` anew after this."""
        calls = self.calls
        if len(calls) >= CALLS // 2:
            if len(calls) > CALLS:  # more than a memory's worth since the last bound
                calls = dict(islice(calls.items(), len(calls) - CALLS, None))
            self._older, self.calls = calls, {}

    def call(self, linkedid: str) -> str | None:
        """The direction remembered for the call ``linkedid``, or None."""
        return self.calls.get(linkedid) or self._older.get(linkedid)

    def decide(
        self, did: str, srctrunk: str, dsttrunk: str, calltype: str, context: str,
        chan: str, dchan: str, src: str, dst: str, uniqueid: str, linkedid: str,
    ) -> tuple[str, str]:  # fmt: skip
        """``(direction, sign)`` for a CDR (``chan``/``dchan`` without their suffix)."""
        if did:
            direction, sign = IN, "did"
        elif srctrunk:
            direction, sign = IN, "trunk-name"
        elif dsttrunk:
            direction, sign = OUT, "trunk-name"
        elif calltype and (named := self._call_type(calltype)) is not None:
            direction, sign = named, "call-type"
        else:
            return self.undeclared(context, chan, dchan, src, dst, uniqueid, linkedid)
        if linkedid and (linkedid == uniqueid or self.call(linkedid) is None):
            self.calls[linkedid] = direction  # bounded by bound(), after each batch
        return direction, sign

    def undeclared(
        self, context: str, chan: str, dchan: str, src: str, dst: str, uniqueid: str,
        linkedid: str,
    ) -> tuple[str, str]:  # fmt: skip
        """:meth:`decide` for a CDR without ``did``, trunk names or a call type that
        names a direction (signs 4 to 8): what Deriver.row calls for most CDRs.

        One function on purpose: on Deriver.row's hot path a call costs as much as a sign."""
        if linkedid != uniqueid and linkedid:
            known = self.call(linkedid)
            if known is IN or known is OUT:
                return known, "linkedid"
        kind = self._contexts.get(context) or self._context(context)
        channels = self._channels
        digits = self.extension_digits
        if kind is IN or kind is OUT:
            direction, sign = kind, "context"
        elif (
            kind is _INTERNAL
            and len(src) <= digits
            and len(dst) > digits
            and (dst.isdigit() or (dst[1:].isdigit() and dst[0] == "+"))
            and not ((found := channels.get(dchan) or self._channel(dchan))[2] or found[1] == dst)
        ):
            # the commonest call out: an internal context, a caller that is no phone
            # number, a phone number called on a device that is not an extension's (the
            # general case below, with only the signs it needs)
            direction, sign = OUT, "context"
        else:
            s_kind, s_peer, s_user = channels.get(chan) or self._channel(chan)
            d_kind, d_peer, d_user = channels.get(dchan) or self._channel(dchan)
            # an extension's device: a user's, or named as the number it carries
            src_ext = s_user or s_peer == src
            dst_ext = d_user or d_peer == dst
            # phone numbers: more digits than extensions (a leading + allowed); one on
            # an extension's device means the site's extensions are longer
            src_phone = len(src) > digits and (
                src.isdigit() or (src[1:].isdigit() and src[0] == "+")
            )
            if src_phone and src_ext and src.isdigit():
                self.extension_digits = digits = len(src)
                src_phone = False
            dst_phone = len(dst) > digits and (
                dst.isdigit() or (dst[1:].isdigit() and dst[0] == "+")
            )
            if dst_phone and dst_ext and dst.isdigit():
                self.extension_digits = digits = len(dst)
                dst_phone = False
            outside_caller = src_phone and not src_ext
            if kind is _INTERNAL and dst_phone and not dst_ext and not outside_caller:
                direction, sign = OUT, "context"
            elif not s_user and (
                s_kind in _OUTSIDE
                or (s_kind is ANALOG and not (src.isdigit() and len(src) <= digits))
            ):
                direction, sign = IN, "channel"
            elif not d_user and (d_kind in _OUTSIDE or (d_kind is ANALOG and dst_phone)):
                direction, sign = OUT, "channel"
            elif src_ext and dst_ext:
                direction, sign = INTERNAL, "channel"
            elif outside_caller:
                direction, sign = IN, "number"
            elif dst_phone and not dst_ext:
                direction, sign = OUT, "number"
            else:
                return INTERNAL, "default"
        if linkedid and (linkedid == uniqueid or self.call(linkedid) is None):
            self.calls[linkedid] = direction  # bounded by bound(), after each batch
        return direction, sign

    def _call_type(self, value: str) -> str | None:
        named = self._types.get(value, "")
        if named == "":
            if len(self._types) > MEMORY:
                self._types.clear()
            named = self._types[value] = call_type(value)
        return named

    def _context(self, context: str) -> str:
        if len(self._contexts) > MEMORY:
            self._contexts.clear()
            self.decisive.clear()
        kind = self._contexts[context] = context_kind(context) or _NEUTRAL
        self.decisive[context] = kind if kind is IN or kind is OUT else ""
        return kind

    def _channel(self, chan: str) -> tuple[str, str | None, bool]:
        kind, name = channel_kind(chan)
        peer = name or None  # no peer: equal to no number, not even ""
        user = False
        if self._users and chan:
            directory = self.directory
            user = directory.user_of_channel(chan) is not None or name in directory.by_extension
        if len(self._channels) > MEMORY:
            self._channels.clear()
        found = self._channels[chan] = (kind, peer, user)
        return found
