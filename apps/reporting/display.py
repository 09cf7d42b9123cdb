"""How the panel shows numbers, durations, dates and filters to analysts: Turkish, as they read them.

The panel is Turkish whatever the browser asks for (views.panel_page activates "tr"), so these use the
active locale's separators (`1.210`, `%71,4`). Exports keep exact values; this module is for pages only.
"""

import datetime as dt
import zoneinfo

from django.utils import formats
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.jobs.models import JobStatus

PANEL_TZ = zoneinfo.ZoneInfo("Europe/Istanbul")
DATE_FORMAT = "%d.%m.%Y"
DATETIME_FORMAT = "%d.%m.%Y %H:%M"

# The filter names as the panel's labels call them (the form, its errors and the exports list).
FILTER_LABELS = {
    "date_from": gettext_lazy("From"),
    "date_to": gettext_lazy("To"),
    "status": gettext_lazy("Status"),
    "model_type": gettext_lazy("Model type"),
    "machine": gettext_lazy("Machine"),
    "post": gettext_lazy("Post"),
    "tenant": gettext_lazy("Tenant"),
    "page": gettext_lazy("Page"),
    "limit": gettext_lazy("Rows per page"),
    "as_of": gettext_lazy("Snapshot"),
    "non_field_errors": gettext_lazy("Filters"),
}


def number(value, decimals=None) -> str:
    """A number with the locale's grouping and decimal separators (`100.000`, `71,4`); "-" for None."""
    if value is None:
        return "-"
    return formats.number_format(value, decimal_pos=decimals, use_l10n=True, force_grouping=True)


def percent(value) -> str:
    """A percentage (0-100) the Turkish way, sign first, one decimal: `%71,4`."""
    if value is None:
        return "-"
    return _("%%%(value)s") % {"value": number(value, 1)}


def duration(ms) -> str:
    """Milliseconds as analysts read them: `850 ms`, `4,6 sn`, `21 dk 5 sn`, `1 sa 16 dk`, `2 gün 3 sa`.

    Truncated, not rounded, like a clock: 4 606 218 ms is 1 h 16 min 46 s, shown `1 sa 16 dk`.
    """
    if ms is None:
        return "-"
    ms = int(ms)
    if ms < 1000:
        return _("%(ms)s ms") % {"ms": number(ms)}
    if ms < 60_000:
        tenths = ms // 100
        text = number(tenths // 10) if tenths % 10 == 0 else number(tenths / 10, 1)
        return _("%(seconds)s s") % {"seconds": text}
    seconds = ms // 1000
    if seconds < 3600:
        minutes, seconds = divmod(seconds, 60)
        if not seconds:
            return _("%(minutes)s min") % {"minutes": number(minutes)}
        return _("%(minutes)s min %(seconds)s s") % {"minutes": number(minutes), "seconds": number(seconds)}
    minutes = seconds // 60
    if minutes < 24 * 60:
        hours, minutes = divmod(minutes, 60)
        if not minutes:
            return _("%(hours)s h") % {"hours": number(hours)}
        return _("%(hours)s h %(minutes)s min") % {"hours": number(hours), "minutes": number(minutes)}
    days, hours = divmod(minutes // 60, 24)
    if not hours:
        return _("%(days)s d") % {"days": number(days)}
    return _("%(days)s d %(hours)s h") % {"days": number(days), "hours": number(hours)}


def minutes(value) -> str:
    """A count of minutes with its thousands separator: `100.000 dk`."""
    return _("%(minutes)s min") % {"minutes": number(value)}


def datetime(value) -> str:
    """`dd.mm.yyyy HH:MM` on Istanbul's wall clock; "-" for None."""
    if value is None:
        return "-"
    return value.astimezone(PANEL_TZ).strftime(DATETIME_FORMAT)


def date(value) -> str:
    """`dd.mm.yyyy`; accepts a date or an ISO date string (as exports store their filters)."""
    if value in (None, ""):
        return "-"
    if isinstance(value, str):
        value = dt.date.fromisoformat(value)
    return value.strftime(DATE_FORMAT)


def status_label(code: str) -> str:
    """A job status' Turkish label (`failed` -> `Başarısız`); an unknown code is shown as it is."""
    try:
        return str(JobStatus(code).label)
    except ValueError:
        return code


def describe_filters(filters: dict, tenant_names: dict) -> list[tuple[str, str]]:
    """Stored export filters as (label, value) pairs an analyst reads: labels, names and dd.mm.yyyy dates."""
    described = []
    for key in FILTER_LABELS:
        value = filters.get(key)
        if value in (None, "", []):
            continue
        if key in ("date_from", "date_to"):
            try:
                text = date(value)
            except (TypeError, ValueError):
                text = str(value)
        elif key == "status":
            text = ", ".join(status_label(s) for s in (value if isinstance(value, list) else [value]))
        elif key == "tenant":
            text = tenant_names.get(value, value)
        else:
            text = str(value)
        described.append((str(FILTER_LABELS[key]), text))
    return described


def form_errors(errors: dict, *, labels: bool = True) -> list[tuple[str, str]]:
    """A serializer's errors as (field label, messages) pairs, for the message above the filters
    (`labels=False`: the field's name, for a JSON problem's `errors`)."""
    flat = []
    for field, messages in errors.items():
        if isinstance(messages, dict):  # a list field's errors come per index: {0: ["..."]}
            messages = [m for ms in messages.values() for m in ms]
        name = str(FILTER_LABELS.get(field, field)) if labels else field
        flat.append((name, " ".join(str(m) for m in messages)))
    return flat
