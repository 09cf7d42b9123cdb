"""RFC 3161 time-stamping of checkpoints: the request and the reply's status, in the little DER they need.

Hand-written because the request is a fixed five-field structure and the reply is only unwrapped; the
token itself is stored as the TSA sent it and checked with `openssl ts -verify` (docs/audit.md).
"""

import base64
import hashlib
import secrets

import requests

SHA256_OID = bytes.fromhex("0609608648016503040201")  # 2.16.840.1.101.3.4.2.1, tag and length included
GRANTED = {0, 1}  # granted, grantedWithMods


class TimestampError(Exception):
    """The TSA could not be reached or refused the request."""


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _length(len(content)) + content


def _integer(n: int) -> bytes:
    body = n.to_bytes(n.bit_length() // 8 + 1, "big")  # a leading zero byte keeps it positive
    return _tlv(0x02, body)


def build_request(data: bytes, *, nonce: int) -> bytes:
    """TimeStampReq v1 for sha256(data), with a nonce and asking for the TSA's certificate."""
    algorithm = _tlv(0x30, SHA256_OID + b"\x05\x00")
    imprint = _tlv(0x30, algorithm + _tlv(0x04, hashlib.sha256(data).digest()))
    return _tlv(0x30, _integer(1) + imprint + _integer(nonce) + b"\x01\x01\xff")


def _read(der: bytes, at: int):
    """(tag, content start, content end) of the TLV at `at`."""
    tag, first = der[at], der[at + 1]
    if first < 0x80:
        return tag, at + 2, at + 2 + first
    size = first & 0x7F
    length = int.from_bytes(der[at + 2 : at + 2 + size], "big")
    return tag, at + 2 + size, at + 2 + size + length


def parse_reply(der: bytes) -> bytes:
    """The timeStampToken (DER) of a granted TimeStampResp; TimestampError otherwise."""
    try:
        tag, start, end = _read(der, 0)
        status_tag, status_start, status_end = _read(der, start)
        _, int_start, int_end = _read(der, status_start)
        status = int.from_bytes(der[int_start:int_end], "big")
    except IndexError:
        raise TimestampError("the TSA's reply is not a TimeStampResp") from None
    if tag != 0x30 or status_tag != 0x30:
        raise TimestampError("the TSA's reply is not a TimeStampResp")
    if status not in GRANTED:
        raise TimestampError(f"the TSA refused the request (PKIStatus {status})")
    if status_end >= end:
        raise TimestampError("the TSA granted the request but sent no token")
    _, _, token_end = _read(der, status_end)
    return der[status_end:token_end]


def timestamp(url: str, data: bytes, *, timeout: float) -> str:
    """Ask the TSA at `url` to time-stamp sha256(data); returns the token as base64."""
    request = build_request(data, nonce=secrets.randbits(63))
    try:
        response = requests.post(
            url, data=request, headers={"Content-Type": "application/timestamp-query"}, timeout=timeout
        )
    except requests.RequestException as exc:
        raise TimestampError(f"the TSA could not be reached: {exc}") from exc
    if response.status_code != 200:
        raise TimestampError(f"the TSA answered HTTP {response.status_code}")
    return base64.b64encode(parse_reply(response.content)).decode()
