"""Where a customer lives and what clock they keep: ISO 3166-1 countries and IANA time zones.

Messages go out in the customer's own time zone (quiet hours) and printed mail to their postal
address, so both are checked when they are given, not when a message is due.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

# ISO 3166-1 alpha-2, the officially assigned codes (249). Kept here rather than taken from a
# package: the list changes about once a decade, and a fixed set keeps validation free of I/O.
_ALPHA2 = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
    BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE
    EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM
    HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC
    LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA
    NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
    SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO
    TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
"""
COUNTRIES = frozenset(_ALPHA2.split())

# An IANA key: Area/Location names of letters, digits, _ + - (e.g. Europe/Amsterdam,
# America/Argentina/Buenos_Aires, Etc/GMT+1, UTC). The pattern keeps paths out of ZoneInfo's
# file lookup; the names below are files of the database that are not zones a person lives in.
_ZONE_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9][A-Za-z0-9_+-]*){0,2}$")
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory", "leap-seconds", "tzdata", "zone", "zone1970"})


def country_code(value: str) -> str:
    """An ISO 3166-1 alpha-2 code, upper-cased ("nl" is NL); anything else is a ValueError."""
    code = value.strip().upper()
    if code not in COUNTRIES:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code (e.g. NL, BE, DE)")
    return code


def time_zone(value: str) -> str:
    """An IANA time zone name the zone database knows (Europe/Amsterdam); else a ValueError."""
    name = value.strip()
    if not _known_zone(name):
        raise ValueError(f"{value[:64]!r} is not an IANA time zone name (e.g. Europe/Amsterdam)")
    return name


@lru_cache(maxsize=1024)
def _known_zone(name: str) -> bool:
    if len(name) > 64 or not _ZONE_KEY.match(name) or name.rsplit("/", maxsplit=1)[-1] in _NOT_ZONES:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def zone(name: str) -> ZoneInfo:
    """The zone of a name already checked by `time_zone`."""
    return ZoneInfo(name)


def _text(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("a string")
    return value


CountryCode = Annotated[
    str,
    BeforeValidator(_text),
    AfterValidator(country_code),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z]{2}$", "examples": ["NL"]}),
    Field(description="ISO 3166-1 alpha-2 country code"),
]
TimeZoneName = Annotated[
    str,
    BeforeValidator(_text),
    AfterValidator(time_zone),
    WithJsonSchema({"type": "string", "maxLength": 64, "examples": ["Europe/Amsterdam"]}),
    Field(description="IANA time zone name"),
]
