"""The demo's directory: three projects, forty agents, five queues, eight inbound
routes and three trunks of a Romanian call centre (:func:`rows` gives them by table).
"""

from __future__ import annotations

from typing import Any

__all__ = ["FIRST", "LAST", "PROJECTS", "QUEUES", "ROUTES", "ROUTE_KEYS", "TRUNKS", "rows", "words"]


def words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


PROJECTS = (
    (1, "Suport Clienți", "0312285000", "SUP"),
    (2, "Vânzări", "0372110200", "VNZ"),
    (3, "Retenție", "0372110300", "RET"),
)
FIRST = words(
    "Andrei Maria Ioana Mihai Elena Alexandru Ana Cristian Gabriela Ion Irina Vlad "
    "Raluca Ștefan Diana Bogdan Alina Radu Cristina Florin Oana Adrian Simona George "
    "Larisa Marius Bianca Dan Teodora Sorin Roxana Cătălin Andreea Lucian Monica Tudor "
    "Corina Ovidiu Iulia Răzvan"
)
LAST = words(
    "Popescu Ionescu Popa Pop Radu Dumitru Stan Stoica Gheorghe Matei Ciobanu Rusu "
    "Munteanu Marin Tudor Dinu Constantin Moldovan Șerban Lungu Barbu Nistor Florea "
    "Cristea Toma Dobre Ilie Preda Neagu Mocanu Enache Voicu Sandu Coman Lazăr Diaconu "
    "Bălan Mihăilă Oprea Vasile"
)
_ASCII = str.maketrans("ăâîșțşţĂÂÎȘȚ", "aaiststAAIST")
# id, name, project, members (user ids)
QUEUES = (
    (1, "suport", 1, range(1, 17)),
    (2, "suport-vip", 1, (*range(1, 7), *range(17, 21))),
    (3, "facturare", 1, range(14, 21)),
    (4, "vanzari", 2, range(21, 33)),
    (5, "retentie", 3, range(33, 41)),
)
# id, did, name, project, queue id (None: reception), IVR menus (the dialplan context of
# each menu the caller goes through and the key pressed there; empty: no IVR), weight
ROUTES = (
    (1, "0312285000", "Linie suport", 1, 1, (("ivr-principal", "1"), ("ivr-suport", "1")), 22),
    (2, "0312285001", "Suport VIP", 1, 2, (), 5),
    (3, "0372110200", "Vânzări", 2, 4, (("ivr-vanzari", "2"),), 12),
    (4, "0372110201", "Campanie radio", 2, 4, (), 4),
    (5, "0312285010", "Facturare", 1, 3, (("ivr-principal", "2"),), 9),
    (6, "0372110300", "Retenție", 3, 5, (), 7),
    (7, "0312285020", "Recepție", 1, None, (), 0),
    (8, "0372110400", "Linie Cluj", 1, 1, (("ivr-cluj", "1"), ("ivr-suport", "2")), 5),
)
ROUTE_KEYS = ("id", "did", "name", "project_id")
TRUNKS = (
    (1, "Orange SIP", "PJSIP/orange-sip"),
    (2, "Vodafone SIP", "PJSIP/vodafone-sip"),
    (3, "Digi SIP", "PJSIP/digi-sip"),
)


def rows() -> dict[str, list[dict[str, Any]]]:
    """The demo's directory rows, by table."""
    users = [
        dict(id=uid, extension=str(99 + uid), fullname=name, project_id=(uid > 20) + (uid > 32) + 1,
             channel_pattern="PJSIP/" + name.lower().translate(_ASCII).replace(" ", "-"))
        for uid, name in enumerate(map(" ".join, zip(FIRST, LAST, strict=True)), 1)
    ]  # fmt: skip
    return {
        "projects": [{"id": p[0], "name": p[1]} for p in PROJECTS],
        "users": users,
        "queues": [{"id": q[0], "name": q[1], "project_id": q[2]} for q in QUEUES],
        "trunks": [{"id": t[0], "name": t[1], "channel_pattern": t[2]} for t in TRUNKS],
        "inbound_routes": [dict(zip(ROUTE_KEYS, r[:4], strict=False)) for r in ROUTES],
    }
