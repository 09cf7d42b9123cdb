"""deploy/fluent-bit/ is checked by parsing only: Fluent Bit is neither a Debian package here nor on PyPI, so it
cannot be run in these tests. The classic format is parsed (sections, indented `Key Value` lines, comments) and
what docs/siem.md promises is asserted: the tail input reads LOG_FILE's JSON lines with a parser that matches
apps/core/logging.py's JsonFormatter, the lines are masked before they are written, and the output is RFC 5424
over TLS with certificate verification against SIEM_CA_FILE."""

import json
import logging
import re
from datetime import datetime
from pathlib import Path

import pytest

from apps.core.logging import JsonFormatter

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "deploy" / "fluent-bit"
SECTIONS = {"SERVICE", "INPUT", "FILTER", "OUTPUT", "PARSER", "MULTILINE_PARSER", "PLUGINS", "UPSTREAM", "NODE"}


class ConfigError(ValueError):
    pass


def parse(text: str) -> list[tuple[str, dict[str, str]]]:
    """[(section name, {key: value})] of Fluent Bit's classic format, strict about what Fluent Bit refuses:
    a key outside a section, a key that is not indented, inconsistent indentation, an unknown section."""
    sections: list[tuple[str, dict[str, str]]] = []
    indent = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("@"):  # @INCLUDE / @SET
            continue
        header = re.fullmatch(r"\[([A-Z_]+)\]", stripped)
        if header:
            if raw[0].isspace():
                raise ConfigError(f"line {number}: a section header is not indented")
            if header.group(1) not in SECTIONS:
                raise ConfigError(f"line {number}: unknown section [{header.group(1)}]")
            sections.append((header.group(1), {}))
            continue
        if not sections:
            raise ConfigError(f"line {number}: a key outside any section")
        leading = len(line) - len(line.lstrip())
        if leading == 0:
            raise ConfigError(f"line {number}: keys must be indented")
        indent = indent if indent is not None else leading
        if leading != indent:
            raise ConfigError(f"line {number}: indentation differs from the first key's ({indent})")
        parts = stripped.split(None, 1)
        if len(parts) != 2:
            raise ConfigError(f"line {number}: `{stripped}` has no value")
        key, value = parts
        body = sections[-1][1]
        if key.lower() in (k.lower() for k in body) and key not in ("Add", "Copy", "Rename", "Remove", "Set"):
            raise ConfigError(f"line {number}: {key} given twice")
        body[key if key not in body else f"{key}#{len(body)}"] = value
    return sections


def one(sections, name, plugin=None) -> dict:
    found = [body for section, body in sections if section == name and (plugin is None or body.get("Name") == plugin)]
    assert len(found) == 1, f"expected one [{name}] {plugin or ''}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def config():
    return parse((FOLDER / "fluent-bit.conf").read_text())


@pytest.fixture(scope="module")
def parsers():
    return parse((FOLDER / "parsers.conf").read_text())


def test_the_parser_refuses_what_fluent_bit_refuses():
    with pytest.raises(ConfigError, match="outside any section"):
        parse("    Name tail\n")
    with pytest.raises(ConfigError, match="indented"):
        parse("[INPUT]\nName tail\n")
    with pytest.raises(ConfigError, match="no value"):
        parse("[INPUT]\n    Name\n")
    with pytest.raises(ConfigError, match="unknown section"):
        parse("[OUTPUTS]\n    Name syslog\n")
    with pytest.raises(ConfigError, match="twice"):
        parse("[OUTPUT]\n    Name syslog\n    Port 1\n    port 2\n")
    assert parse("# c\n[INPUT]\n    Name tail\n    Path /x\n") == [("INPUT", {"Name": "tail", "Path": "/x"})]


def test_the_service_names_a_parsers_file_that_exists_and_buffers_on_disk(config):
    service = one(config, "SERVICE")
    assert (FOLDER / service["Parsers_File"]).is_file()
    assert service["storage.path"].startswith("/")
    assert one(config, "INPUT", "tail")["storage.type"] == "filesystem"  # a SIEM outage does not drop lines


def test_the_input_tails_log_file_with_a_parser_that_reads_the_applications_lines(config, parsers):
    tail = one(config, "INPUT", "tail")
    assert tail["Path"] == "${TEZGAH_LOG_FILE}"
    assert tail["DB"].startswith("/")  # the read position survives a restart
    parser = one(parsers, "PARSER", tail["Parser"])
    assert parser["Format"] == "json"
    record = logging.LogRecord("apps.erp", logging.INFO, __file__, 1, "sent %s", ("x",), None)
    line = json.loads(JsonFormatter().format(record))
    assert parser["Time_Key"] in line
    # Fluent Bit's %L is the fraction of a second; Python's %f reads the same digits.
    datetime.strptime(line[parser["Time_Key"]], parser["Time_Format"].replace("%L", "%f"))
    output = one(config, "OUTPUT", "syslog")
    modify = one(config, "FILTER", "modify")
    copied_from = modify["Copy"].split()[0]
    assert copied_from in line and output["Syslog_Message_Key"] in line
    assert modify["Copy"].split()[1] == output["Syslog_Msgid_Key"]
    assert modify["Add"].split()[0] == output["Syslog_Appname_Key"]


def test_filter_and_output_match_the_inputs_tag(config):
    tag = one(config, "INPUT", "tail")["Tag"]
    for section, body in config:
        if section in ("FILTER", "OUTPUT"):
            assert re.fullmatch(body["Match"].replace(".", r"\.").replace("*", ".*"), tag), body


def test_the_output_is_rfc5424_over_tls_with_verification_against_siem_ca_file(config):
    output = one(config, "OUTPUT", "syslog")
    assert output["Syslog_Format"] == "rfc5424"
    assert output["Mode"] == "tls" and output["tls"] == "on" and output["tls.verify"] == "on"
    assert output["tls.ca_file"] == "${SIEM_CA_FILE}"
    assert (output["Host"], output["Port"]) == ("${SIEM_HOST}", "${SIEM_PORT}")
    assert output["Retry_Limit"] in ("False", "no_limits")  # retried until the SIEM is back
    assert int(output["Syslog_MaxSize"]) >= 8192


def test_every_environment_variable_it_reads_is_documented(config):
    used = set(re.findall(r"\$\{([A-Z_]+)\}", (FOLDER / "fluent-bit.conf").read_text()))
    assert used == {"TEZGAH_LOG_FILE", "SIEM_HOST", "SIEM_PORT", "SIEM_CA_FILE"}
    docs = (ROOT / "docs" / "siem.md").read_text()
    for name in used:
        assert f"`{name}`" in docs or name in docs, name


def test_the_lines_fluent_bit_reads_are_masked_before_they_are_written(settings):
    """The sidecar sends what LOG_FILE holds; the application masks the line before writing it."""
    settings.LOG_MASK_PII = True
    # Authorization masks the rest of its line, so it comes last.
    message = "call +90 532 123 45 67, sent to ayse.yilmaz@ornek.com.tr with Authorization: Bearer abc.def.ghi"
    record = logging.LogRecord("apps.erp", logging.WARNING, __file__, 1, message, (), None)
    line = JsonFormatter().format(record)
    for planted in ("ayse.yilmaz@ornek.com.tr", "abc.def.ghi", "532 123 45 67"):
        assert planted not in line
    assert "[EMAIL]" in line and "[SECRET]" in line and "[PHONE]" in line
