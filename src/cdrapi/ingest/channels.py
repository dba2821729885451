"""Asterisk channel names: the suffix each driver adds, and what kind of line a channel is.

A channel is named ``Technology/resource`` plus a suffix that makes it unique; the suffix
differs per driver (as each one calls ``ast_channel_alloc``):

==================  =====================================  ===========================
driver              name                                   suffix dropped
==================  =====================================  ===========================
chan_pjsip          ``PJSIP/endpoint-0000001a``            ``-`` 8 hex digits
chan_sip            ``SIP/peer-0000001a``                  ``-`` 8 hex digits
Local (core)        ``Local/101@from-internal-0000002a;1`` ``-`` 8 hex digits ``;1``/``;2``
                    (1.4/1.6: ``-7e4c,1``, ``-7e4c;1``)    (or 4 hex digits, ``,1``)
chan_iax2           ``IAX2/peer-1234``                     ``-`` call number
chan_dahdi (Zap)    ``DAHDI/1-1``, ``DAHDI/i1/5551234-3a``  ``-`` decimal or hex counter
                    ``DAHDI/pseudo-1804289383``
chan_motif, gtalk,  ``Motif/name-753b``                    ``-`` 4 hex digits
jingle
chan_dongle         ``Dongle/dongle0-0100000001``          ``-`` 2 digits, 8 hex digits
(Datacard)
chan_skinny, MGCP   ``Skinny/101@SEP00112233-3``           ``-`` counter
                    ``MGCP/aaln/1@gw-1``
chan-sccp-b         ``SCCP/101-0000001A``                  ``-`` 8 hex digits
chan_unistim        ``USTM/101@phone-0x55d0c8a3f2a0``      ``-`` pointer
chan_misdn          ``mISDN/1-u45``                        ``-`` (u)counter
==================  =====================================  ===========================

and a masqueraded channel's ``<MASQ>``/``<ZOMBIE>`` tail. Each pattern only applies to
its own driver, so an endpoint named ``john-doe`` or ``orange-1`` keeps its name; other
technologies lose a ``-`` 8 hex digits or a short number, and a ``;1``/``;2``.

:func:`channel_kind` tells what a channel (without its suffix) is for guessing the
direction: a line to the outside (GSM gateways, PRI spans, H.323), an analog port
(DAHDI/Zap: a line or a phone), a peer named like a trunk (``trunk``, ``pstn``, ``gsm``,
``gw``, a host name or IP address), another peer (with its name, to compare with the
call's numbers), or a channel that says nothing (Local and the other internal channels).
"""

from __future__ import annotations

import re

__all__ = [
    "ANALOG",
    "GATEWAY",
    "HEX_SUFFIX",
    "LOCAL",
    "NONE",
    "PEER",
    "TRUNK",
    "channel_kind",
    "format_channel",
]

#: The commonest suffix, tried first: a dash and 8 hex digits ending the channel
#: (``HEX_SUFFIX(channel, len(channel) - 9)`` matches it).
HEX_SUFFIX = re.compile(r"-[0-9a-f]{8}").fullmatch
_HEX8 = r"-[0-9a-fA-F]{8}"
_BY_TECH = {
    tech: re.compile(f"(?:{pattern})$")
    for techs, pattern in (
        (("pjsip", "sip", "sccp", "snoop", "unicastrtp"), _HEX8),
        (("local", "announcer", "cbann", "cbrec", "recorder", "bridgemedia"),
         r"-(?:[0-9a-fA-F]{8}|[0-9a-fA-F]{4})[;,][12]|" + _HEX8),
        (("iax2", "iax", "skinny", "mgcp", "h323", "ooh323", "phone", "vpb"), r"-\d+"),
        (("dahdi", "zap"), r"-[0-9a-f]+"),
        (("motif", "gtalk", "jingle"), r"-[0-9a-f]{4}"),
        (("dongle", "datacard"), r"-\d{2}[0-9a-f]{8}"),
        (("ustm",), r"-(?:0x)?[0-9a-f]+"),
        (("misdn",), r"-u?\d+"),
        (("mobile",), r"-[0-9a-f]{4}"),
    )
    for tech in techs
}  # fmt: skip
# Any other technology: 8 hex digits or a short number, then maybe ;1/;2 (or ;1 alone).
_GENERIC = re.compile(r"(?:-(?:[0-9a-fA-F]{8}|\d{1,6}))?(?:;\d)?$")
_TAIL = re.compile(r"(?:<MASQ>|<ZOMBIE>)+$")


def format_channel(channel: str) -> str:
    """The channel without its driver's suffix (``PJSIP/john-doe-0000001a`` ->
    ``PJSIP/john-doe``, ``Local/101@from-internal-0000002a;1`` ->
    ``Local/101@from-internal``); ``""`` stays ``""``."""
    if HEX_SUFFIX(channel, len(channel) - 9):  # the commonest form, without a search
        return channel[:-9]
    if not channel:
        return ""
    if channel[-1] == ">":
        channel = _TAIL.sub("", channel)
        if HEX_SUFFIX(channel, len(channel) - 9):
            return channel[:-9]
    slash = channel.find("/")
    pattern = _BY_TECH.get(channel[:slash].lower()) if slash > 0 else None
    return (pattern or _GENERIC).sub("", channel, count=1)


#: What a channel is (see :func:`channel_kind`).
NONE, LOCAL, GATEWAY, ANALOG, TRUNK, PEER = "", "local", "gateway", "analog", "trunk", "peer"

# Technologies whose channels are lines to the outside: GSM gateways (chan_dongle,
# chan_datacard, chan_mobile, gsmopen), H.323, mISDN, and DAHDI/Zap ISDN spans (i<span>/).
_GATEWAYS = {"dongle", "datacard", "mobile", "gsmopen", "gsm", "h323", "ooh323", "misdn",
             "khomp", "capi", "srx", "woomera"}  # fmt: skip
_ANALOG = {"dahdi", "zap", "phone", "vpb"}
# Channels that carry no sign of their own: the call is elsewhere.
_LOCAL = {"local", "announcer", "cbann", "cbrec", "recorder", "bridgemedia", "snoop",
          "unicastrtp", "multicastrtp", "audiosocket", "websocket", "message", "parked",
          "asyncgoto", "agent", "console", "alsa", "oss", "bridge", "surrogate"}  # fmt: skip
# Words of a peer name that name a trunk or gateway (compared with the name's words).
_TRUNK_WORDS = {"trunk", "trunks", "trk", "pstn", "gsm", "goip", "dinstar", "gw", "gateway",
                "provider", "carrier", "itsp", "telco", "voip", "sbc", "pri", "bri", "isdn",
                "fxo", "siptrunk", "sipt", "upstream", "dongle"}  # fmt: skip
_WORDS = re.compile(r"[a-z]+")
# An IP address or a host name with two dots or more (sip.provider.com): not a phone.
_HOST = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?|[\w-]+(?:\.[\w-]+){2,}(?::\d+)?")


def channel_kind(channel: str) -> tuple[str, str]:
    """``(kind, peer)`` for a channel without its suffix: ``PJSIP/101`` ->
    ``("peer", "101")``, ``PJSIP/orange-trunk`` -> ``("trunk", "orange-trunk")``,
    ``Dongle/dongle0`` -> ``("gateway", "dongle0")``, ``Local/101@x`` -> ``("local", "")``."""
    tech, slash, rest = channel.partition("/")
    if not slash:
        return NONE, ""
    tech = tech.lower()
    if tech in _LOCAL:
        return LOCAL, ""
    if tech in _GATEWAYS:
        return GATEWAY, rest
    if tech in _ANALOG:
        if rest == "pseudo":  # a conference's channel, no line
            return LOCAL, ""
        return (GATEWAY if rest[:1] == "i" and "/" in rest else ANALOG), rest
    peer = rest.split("@", 1)[0]
    if _HOST.fullmatch(peer) or any(w in _TRUNK_WORDS for w in _WORDS.findall(peer.lower())):
        return TRUNK, peer
    return PEER, peer
