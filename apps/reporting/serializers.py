"""Report filters (shared by the API, the panel and exports) and the API's input/output shapes."""

import datetime as dt

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from apps.accounts.selectors import tenants_for
from apps.jobs.models import JobStatus

from . import constants
from .models import ExportFormat


class ReportFilterSerializer(serializers.Serializer):
    """date_from/date_to are calendar days in Europe/Istanbul, both inclusive, on the job's creation time."""

    date_from = serializers.DateField(required=False, allow_null=True)
    date_to = serializers.DateField(required=False, allow_null=True)
    status = serializers.ListField(child=serializers.ChoiceField(choices=JobStatus.choices), required=False)
    model_type = serializers.CharField(required=False, allow_blank=True, max_length=64)
    machine = serializers.CharField(required=False, allow_blank=True, max_length=64)
    post = serializers.CharField(required=False, allow_blank=True, max_length=64)
    tenant = serializers.SlugField(required=False, allow_blank=True)

    def to_internal_value(self, data):
        # Query strings repeat a key (?status=a&status=b) or join values (?status=a,b); accept both.
        if hasattr(data, "getlist"):
            plain = {k: data.get(k) for k in data if k in self.fields}
            if "status" in plain:
                plain["status"] = [s.strip() for v in data.getlist("status") for s in v.split(",") if s.strip()]
            data = plain
        elif not isinstance(data, dict):
            # A JSON body's "filters" must be an object; let DRF say so as a field error (422), not crash.
            return super().to_internal_value(data)
        elif isinstance(data.get("status"), str):
            data = {**data, "status": [s.strip() for s in data["status"].split(",") if s.strip()]}
        # An empty form field means "any", not an invalid date.
        data = {k: v for k, v in data.items() if v not in ("", None)}
        return super().to_internal_value(data)

    def _in_range(self, value):
        if value is not None and not constants.MIN_FILTER_DATE <= value <= constants.MAX_FILTER_DATE:
            raise serializers.ValidationError(_("Pick a day between 1900-01-01 and 9999-12-30."))
        return value

    def validate_date_from(self, value):
        return self._in_range(value)

    def validate_date_to(self, value):
        return self._in_range(value)

    def validate_tenant(self, value):
        user = self.context.get("user")
        if value and user is not None and not tenants_for(user).filter(slug=value).exists():
            raise serializers.ValidationError(_("No such tenant, or not one of yours."))
        return value

    def validate(self, attrs):
        if attrs.get("date_from") and attrs.get("date_to") and attrs["date_from"] > attrs["date_to"]:
            raise serializers.ValidationError({"date_to": _("date_to must not be before date_from.")})
        return {k: v for k, v in attrs.items() if v not in ("", None, [])}


def filters_to_json(filters: dict) -> dict:
    """Validated filters as plain JSON values (dates as ISO strings), for storage and file headers."""
    return {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in sorted(filters.items())}


class DetailQuerySerializer(ReportFilterSerializer):
    # Bounded here, the one parser of the API's and the panel's detail query (and the schema says the same).
    page = serializers.IntegerField(required=False, min_value=1, max_value=constants.DETAIL_MAX_PAGE, default=1)
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=constants.DETAIL_MAX_LIMIT, default=constants.DETAIL_DEFAULT_LIMIT
    )
    # The snapshot from page 1 (`as_of` in its response); later pages pass it back so they never shift.
    as_of = serializers.IntegerField(required=False, min_value=0, max_value=constants.MAX_JOB_ID)

    def validate(self, attrs):
        page, limit, as_of = attrs.pop("page", 1), attrs.pop("limit"), attrs.pop("as_of", None)
        filters = super().validate(attrs)
        return {"filters": filters, "page": page, "limit": limit, "as_of": as_of}


class ExportCreateSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=ExportFormat.choices)
    filters = ReportFilterSerializer(required=False, default=dict)
    single_use = serializers.BooleanField(required=False, default=False)


class ExportOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    format = serializers.CharField()
    status = serializers.CharField()
    progress = serializers.IntegerField(source="progress_percent")
    filters = serializers.JSONField()
    single_use = serializers.BooleanField()
    rows_expected = serializers.IntegerField()
    row_count = serializers.SerializerMethodField()
    sha256 = serializers.CharField()
    size_bytes = serializers.IntegerField()
    data_as_of = serializers.DateTimeField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField()
    download_url = serializers.SerializerMethodField()
    download_expires_at = serializers.SerializerMethodField()

    def get_row_count(self, obj) -> int | None:
        return obj.rows_written if obj.status == "done" else None

    def get_download_url(self, obj) -> str | None:
        link = self.context.get("link")
        return self.context["request"].build_absolute_uri(link.url) if link else None

    def get_download_expires_at(self, obj) -> dt.datetime | None:
        link = self.context.get("link")
        return link.expires_at if link else None


# The panel's date inputs are Turkish text fields (dd.mm.yyyy); old links with ISO dates still work.
PANEL_DATE_INPUT_FORMATS = ["%d.%m.%Y", "iso-8601"]
# The panel's detail pages stop here: a page beyond it is a form error (400), never an offset the
# database cannot hold (page=10**30 overflowed SQLite's integers into a 500).
PANEL_MAX_PAGE = 1_000_000


def _panel_date():
    return serializers.DateField(
        required=False,
        allow_null=True,
        input_formats=PANEL_DATE_INPUT_FORMATS,
        error_messages={"invalid": _("Enter the date as dd.mm.yyyy, e.g. 15.11.2026.")},
    )


class PanelFilterSerializer(ReportFilterSerializer):
    """The report filters as the panel's form sends them: dates as dd.mm.yyyy (or YYYY-MM-DD)."""

    date_from = _panel_date()
    date_to = _panel_date()

    def validate(self, attrs):
        if attrs.get("date_from") and attrs.get("date_to") and attrs["date_from"] > attrs["date_to"]:
            raise serializers.ValidationError({"date_to": _("The end date must not be before the start date.")})
        return super().validate(attrs)


class PanelDetailQuerySerializer(DetailQuerySerializer):
    """The detail page's query: the panel's dates, and a page number with an upper bound."""

    date_from = _panel_date()
    date_to = _panel_date()
    page = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=PANEL_MAX_PAGE,
        default=1,
        error_messages={"max_value": _("There is no such page."), "invalid": _("Enter a page number.")},
    )

    def validate(self, attrs):
        if attrs.get("date_from") and attrs.get("date_to") and attrs["date_from"] > attrs["date_to"]:
            raise serializers.ValidationError({"date_to": _("The end date must not be before the start date.")})
        return super().validate(attrs)
