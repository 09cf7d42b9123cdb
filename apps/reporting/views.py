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
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from apps.accounts.selectors import scope_to_tenants, tenants_for
from apps.catalog.models import Machine, ModelType, Post
from apps.jobs.models import JobStatus

from . import selectors, services
from .models import AlertChannel, AlertNotice, AlertRule, ExportFormat
from .serializers import DetailQuerySerializer, ReportFilterSerializer


def panel_page(capability):
    """Signed in with both factors (else to the sign-in with ?next=), and holding `capability` (else 403)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            user = request.user
            if not (user.is_authenticated and user.is_active and user.is_verified()):
                return HttpResponseRedirect(f"{reverse('admin:login')}?{urlencode({'next': request.get_full_path()})}")
            if not user.has_perm(capability):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def _filter_form(request, data):
    """Validated filters and the form's context (choices from the user's tenants)."""
    parsed = ReportFilterSerializer(data=data, context={"user": request.user})
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
    query = urlencode([(k, v) for k, v in data.lists() if k in parsed.fields for v in v if v], doseq=True)
    context = {
        "choices": choices,
        "selected": selected,
        "filter_errors": parsed.errors if not valid else {},
        "filter_query": query,
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
    filters, context = _filter_form(request, request.GET)
    if filters is not None:
        summary = selectors.report_summary(request.user, filters, with_stacks=True)
        stacks = summary.pop("stacks")
        trend, histogram = selectors.trend_and_histogram(request.user, filters)
        rates = summary["rates"]
        context.update(
            summary=summary,
            pct={k: None if rates[f"{k}_rate"] is None else rates[f"{k}_rate"] * 100 for k in ("success", "failure")},
            chart_labels=_chart_labels(),
            charts={
                "trend": trend,
                "by_status": summary["breakdowns"]["by_status"],
                "by_machine": stacks["machine"],
                "by_post": stacks["post"],
                "latency": histogram,
            },
        )
    context.update(_nav(request), page="overview", formats=ExportFormat.choices)
    return render(request, "reporting/overview.html", context)


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
    query = DetailQuerySerializer(data=request.GET, context={"user": request.user})
    _filters, context = _filter_form(request, request.GET)
    if query.is_valid():
        q = query.validated_data
        context["report"] = selectors.report_detail(
            request.user, q["filters"], page=q["page"], limit=q["limit"], as_of=q["as_of"]
        )
        base = context["filter_query"]
        report = context["report"]
        link = f"?{base}&as_of={report['as_of']}&limit={report['limit']}&page="
        context["prev_url"] = link + str(report["page"] - 1) if report["page"] > 1 else ""
        context["next_url"] = link + str(report["page"] + 1) if report["has_next"] else ""
    else:
        context["filter_errors"] = query.errors
    context.update(_nav(request), page="detail", formats=ExportFormat.choices)
    return render(request, "reporting/detail.html", context)


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
    rows = []
    for export in selectors.exports_visible_to(request.user)[:50]:
        rows.append({"export": export, "link": services.download_link(export)})
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
    context = {"rules": rules, "channels": channels, "history": history, "page": "alerts", **_nav(request)}
    return render(request, "reporting/alerts.html", context)
