"""The analysts' Turkish dashboards under /panel/: server-rendered, filters in the URL, charts by ECharts.

Sign-in is the admin's (password + TOTP, apps.accounts.views): an unverified visitor is sent to
/admin/login/?next=<this page> and comes back here after the code step.
"""

import functools
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import translation
from django.utils.timezone import now
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods

from apps.accounts.selectors import scope_to_tenants, tenants_for
from apps.catalog.models import Machine, ModelType, Post
from apps.core.problems import problem_response
from apps.jobs.models import JobStatus

from . import display, selectors, services
from .models import AlertChannel, AlertMetric, AlertNotice, AlertRule, ExportFormat, NoticeStatus
from .serializers import PanelDetailQuerySerializer, PanelFilterSerializer


def panel_page(capability, *, fragment=False):
    """Signed in with both factors, holding `capability` (else 403), and rendered in Turkish.

    Pages send an unverified visitor to the sign-in with ?next=; a `fragment` (the JSON a page's script
    fetches) answers 401 instead, since a redirect to an HTML form is no answer for a script. The panel
    is Turkish whatever Accept-Language says: one locale per page (docs/reporting.md).
    """

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            user = request.user
            with translation.override("tr"):
                if not (user.is_authenticated and user.is_active and user.is_verified()):
                    if fragment:
                        return problem_response(
                            status_code=401, slug="not-authenticated", title=_("Sign in with both factors first.")
                        )
                    login = reverse("admin:login")
                    return HttpResponseRedirect(f"{login}?{urlencode({'next': request.get_full_path()})}")
                if not user.has_perm(capability):
                    if fragment:
                        return problem_response(
                            status_code=403, slug="permission-denied", title=_("You may not open this report.")
                        )
                    raise PermissionDenied
                response = view(request, *args, **kwargs)
                response.headers.setdefault("Content-Language", "tr")
                return response

        return wrapper

    return decorator


def _filter_form(request, data, serializer_class=PanelFilterSerializer):
    """Validated filters and the form's context (choices from the user's tenants)."""
    parsed = serializer_class(data=data, context={"user": request.user})
    valid = parsed.is_valid()
    tenants = tenants_for(request.user)
    choices = {
        "statuses": JobStatus.choices,
        "tenants": tenants.values_list("slug", "name"),
        "model_types": scope_to_tenants(ModelType.objects, request.user)
        .values_list("code", "name")
        .distinct()
        .order_by("code"),
        "machines": scope_to_tenants(Machine.objects, request.user)
        .values_list("code", "name")
        .distinct()
        .order_by("code"),
        "posts": scope_to_tenants(Post.objects, request.user).values_list("code", "name").distinct().order_by("code"),
    }
    selected = {k: data.get(k, "") for k in ("date_from", "date_to", "model_type", "machine", "post", "tenant")}
    selected["status"] = [s for v in data.getlist("status") for s in v.split(",") if s]
    if valid:
        # The inputs show what was understood, dd.mm.yyyy, even when an old link carried ISO dates.
        understood = parsed.validated_data.get("filters", parsed.validated_data)
        for key in ("date_from", "date_to"):
            if understood.get(key):
                selected[key] = display.date(understood[key])
    filter_keys = set(PanelFilterSerializer().fields)
    query = urlencode([(k, v) for k, v in data.lists() if k in filter_keys for v in v if v], doseq=True)
    context = {
        "choices": choices,
        "selected": selected,
        "filter_errors": display.form_errors(parsed.errors) if not valid else [],
        "filter_query": query,
        "error_fields": set(parsed.errors) if not valid else set(),
    }
    return (parsed.validated_data if valid else None), context


def _nav(request):
    user = request.user
    return {
        "can_export": user.has_perm("reporting.add_reportexport"),
        "can_see_alerts": user.has_perm("reporting.view_alertrule"),
    }


@panel_page("reporting.view_report")
def overview(request):
    """The page at once; its key figures and charts come from the fragments below as their data arrives."""
    filters, context = _filter_form(request, request.GET)
    context.update(
        _nav(request),
        page="overview",
        formats=ExportFormat.choices,
        filters_valid=filters is not None,
        chart_labels=_chart_labels(),
    )
    return render(request, "reporting/overview.html", context)


def _fragment(request):
    """The filters of a fragment request, or the 422 problem that explains why they are not valid."""
    parsed = PanelFilterSerializer(data=request.GET, context={"user": request.user})
    if parsed.is_valid():
        return parsed.validated_data, None
    return None, problem_response(
        status_code=422,
        slug="validation-error",
        title=_("Some filters are not valid."),
        errors={field: [text] for field, text in display.form_errors(parsed.errors, labels=False)},
    )


def _json(body):
    return JsonResponse(body, json_dumps_params={"ensure_ascii": False})


@panel_page("reporting.view_report", fragment=True)
def overview_kpis(request):
    """The key figure cards: counts, rates and durations, already formatted for the page."""
    filters, problem = _fragment(request)
    if problem:
        return problem
    kpis = selectors.report_kpis(request.user, filters)
    totals, rates, latency = kpis["totals"], kpis["rates"], kpis["latency_ms"]
    pct = {k: None if rates[f"{k}_rate"] is None else rates[f"{k}_rate"] * 100 for k in ("success", "failure")}
    return _json(
        {
            "values": {**totals, **pct, "p50": latency["p50"], "p95": latency["p95"]},
            "text": {
                "count": display.number(totals["count"]),
                "success": display.number(totals["success"]),
                "failed": display.number(totals["failed"]),
                "success-rate": display.percent(pct["success"]),
                "failure-rate": display.percent(pct["failure"]),
                "p50": display.duration(latency["p50"]),
                "p95": display.duration(latency["p95"]),
            },
        }
    )


@panel_page("reporting.view_report", fragment=True)
def overview_breakdowns(request):
    """The status donut and the stacked bars by machine and by post."""
    filters, problem = _fragment(request)
    if problem:
        return problem
    return _json(selectors.report_breakdowns(request.user, filters))


@panel_page("reporting.view_report", fragment=True)
def overview_trend(request):
    """Jobs per day and the duration distribution."""
    filters, problem = _fragment(request)
    if problem:
        return problem
    trend, histogram = selectors.trend_and_histogram(request.user, filters)
    return _json({"trend": trend, "latency": histogram})


def _chart_labels():
    buckets = [_("under 1 min"), _("1-5 min"), _("5-15 min"), _("15-30 min"), _("30-60 min"), _("1-2 h"), _("over 2 h")]
    return {
        "statuses": {s.value: str(s.label) for s in JobStatus},
        "jobs": _("Jobs"),
        "succeeded": _("Succeeded"),
        "failed": _("Failed"),
        "buckets": buckets,
    }


@panel_page("reporting.view_report")
def detail(request):
    query, context = _filter_form(request, request.GET, PanelDetailQuerySerializer)
    status = 200
    if query is not None:
        report = selectors.report_detail(
            request.user, query["filters"], page=query["page"], limit=query["limit"], as_of=query["as_of"]
        )
        tenant_names = dict(tenants_for(request.user).values_list("slug", "name"))
        report["results"] = [
            {
                **row,
                "status_label": display.status_label(row["status"]),
                "tenant_name": tenant_names.get(row["tenant"], row["tenant"]),
                "created_text": display.datetime(row["created_at"]),
                "finished_text": display.datetime(row["finished_at"]),
                "duration_text": display.duration(row["duration_ms"]),
            }
            for row in report["results"]
        ]
        context["report"] = report
        base = context["filter_query"]
        link = f"?{base}&as_of={report['as_of']}&limit={report['limit']}&page="
        context["prev_url"] = link + str(report["page"] - 1) if report["page"] > 1 else ""
        context["next_url"] = link + str(report["page"] + 1) if report["has_next"] else ""
    elif context["error_fields"] & {"page", "limit", "as_of"}:
        # A paging parameter out of range is the request's fault: 400 with the form and its message.
        status = 400
    context.update(_nav(request), page="detail", formats=ExportFormat.choices)
    return render(request, "reporting/detail.html", context, status=status)


@panel_page("reporting.view_reportexport")
@require_http_methods(["GET", "POST"])
def exports(request):
    if request.method == "POST":
        if not request.user.has_perm("reporting.add_reportexport"):
            raise PermissionDenied
        filters, _context = _filter_form(request, request.POST)
        export_format = request.POST.get("format")
        if filters is None or export_format not in ExportFormat.values:
            messages.error(request, _("The export was not started: check the filters and the format."))
        else:
            try:
                services.request_export(
                    request.user, format=export_format, filters=filters, single_use=bool(request.POST.get("single_use"))
                )
                messages.success(request, _("Export started. It appears below; the link shows when it is ready."))
            except services.ExportRefused as exc:
                messages.error(request, exc.message)
        return HttpResponseRedirect(reverse("panel:exports"))
    tenant_names = dict(tenants_for(request.user).values_list("slug", "name"))
    rows = [
        {
            "export": export,
            "link": services.download_link(export),
            "filters": display.describe_filters(export.filters, tenant_names),
            "created_text": display.datetime(export.created_at),
        }
        for export in selectors.exports_visible_to(request.user)[:50]
    ]
    context = {"rows": rows, "page": "exports", **_nav(request)}
    return render(request, "reporting/exports.html", context)


@panel_page("reporting.view_reportexport")
def export_status(request, export_id):
    """Progress of one export for the page's polling script, with a fresh signed link once it is done."""
    export = get_object_or_404(selectors.exports_visible_to(request.user), pk=export_id)
    link = services.download_link(export)
    return JsonResponse(
        {
            "status": export.status,
            "progress": export.progress_percent,
            "row_count": export.rows_written,
            "download_url": link.url if link else None,
        }
    )


@panel_page("reporting.view_alertrule")
def alerts(request):
    rules = scope_to_tenants(AlertRule.objects, request.user).select_related("tenant").prefetch_related("channels")
    channels = scope_to_tenants(AlertChannel.objects, request.user).select_related("tenant")
    history = (
        scope_to_tenants(AlertNotice.objects, request.user, tenant_field="rule__tenant")
        .select_related("rule", "channel")
        .order_by("-created_at", "-id")[:100]
    )
    context = {
        "rules": [_rule_row(rule) for rule in rules],
        "channels": channels,
        "history": [_notice_row(notice) for notice in history],
        "page": "alerts",
        **_nav(request),
    }
    return render(request, "reporting/alerts.html", context)


def _metric_value(metric, value) -> str:
    """A rule's threshold or a notice's value in the metric's own unit: `%5` or `1 dk`."""
    if value is None:
        return "-"
    return display.percent(value) if metric == AlertMetric.FAILURE_RATE else display.duration(value)


# The metric as a condition names it; the model's labels carry the raw unit, "(ms)", which the panel no longer shows.
_METRIC_NAMES = {
    AlertMetric.FAILURE_RATE: gettext_lazy("Failure rate"),
    AlertMetric.P95_MS: gettext_lazy("P95 duration"),
}


def _rule_row(rule):
    condition = _("%(metric)s > %(threshold)s (last %(window)s)") % {
        "metric": _METRIC_NAMES.get(rule.metric, rule.get_metric_display()),
        "threshold": _metric_value(rule.metric, rule.threshold),
        "window": display.minutes(rule.window_minutes),
    }
    return {
        "rule": rule,
        "condition": condition,
        "repeat": _("every %(minutes)s") % {"minutes": display.minutes(rule.repeat_every_minutes)},
        "breached_since": display.datetime(rule.breached_since) if rule.breached_since else "",
    }


def _notice_row(notice):
    """A history row; a delivery that did not go out says why (the stored error, or the open breaker)."""
    reason = notice.last_error
    channel = notice.channel
    if not reason and notice.status == NoticeStatus.PENDING and channel.open_until and channel.open_until > now():
        reason = _("The channel failed repeatedly; next attempt after %(time)s.") % {
            "time": display.datetime(channel.open_until)
        }
    if not reason and notice.status == NoticeStatus.HELD:
        reason = _("Held until the channel's quiet hours end.")
    return {
        "notice": notice,
        "time": display.datetime(notice.created_at),
        "value": _metric_value(notice.rule.metric, notice.value),
        "times_sent": display.number(notice.send_count),
        "reason": reason,
    }
