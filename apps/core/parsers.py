"""The JSON parser of every DRF view (DEFAULT_PARSER_CLASSES): a body nested too deeply is a 400 problem.

Python's json decoder recurses once per level of nesting and gives up at the interpreter's recursion limit
(about 1000) with a RecursionError, which is no ValueError: DRF's JSONParser let it through as a 500
(issue 11). Catching it costs nothing on the way of a normal body, unlike walking every parsed value.
"""

import json

from rest_framework import parsers
from rest_framework.exceptions import ParseError

TOO_DEEP = "JSON parse error - the body is nested too deeply."


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None


def loads(raw: bytes | str):
    """json.loads for code that parses a raw body itself (the ERP inbound API, whose signature covers the
    bytes); a body nested too deeply raises ValueError like any other unparseable body."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None
