"""A reader of the RFC 5424 lines rsyslog writes (independent of apps.siem.rfc5424, which writes them)."""

import json
import re

_HEADER = re.compile(r"^<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) ")
_SD_ELEMENT = re.compile(r'\[(?P<id>[^\s\]=" ]+)(?P<params>(?: [^\s\]="]+="(?:[^"\\\]]|\\.)*")*)\]')
_SD_PARAM = re.compile(r'([^\s\]="]+)="((?:[^"\\\]]|\\.)*)"')


def parse(line: str) -> dict:
    """{pri, ts, host, app, procid, msgid, sd: {id: {name: value}}, msg}; ValueError when not RFC 5424."""
    header = _HEADER.match(line)
    if header is None:
        raise ValueError(f"not an RFC 5424 line: {line[:120]!r}")
    rest = line[header.end() :]
    sd = {}
    if rest.startswith("- "):
        rest = rest[2:]
    else:
        while rest.startswith("["):
            element = _SD_ELEMENT.match(rest)
            if element is None:
                raise ValueError(f"bad structured data: {rest[:120]!r}")
            sd[element["id"]] = {
                name: re.sub(r"\\(.)", r"\1", value) for name, value in _SD_PARAM.findall(element["params"])
            }
            rest = rest[element.end() :]
        if not rest.startswith(" "):
            raise ValueError(f"no space after the structured data: {rest[:120]!r}")
        rest = rest[1:]
    msg = rest[1:] if rest.startswith("\ufeff") else rest
    return {**header.groupdict(), "pri": int(header["pri"]), "sd": sd, "msg": msg}


def envelope(line: str) -> dict:
    return json.loads(parse(line)["msg"])
