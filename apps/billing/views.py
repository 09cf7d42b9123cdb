"""The cost page under /panel/billing/ (Turkish, ECharts) and its CSV / JSON / PDF downloads."""

import functools
from decimal import Decimal
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from apps.accounts.selectors import tenants_for
from apps.core.problems import problem_response

from . import report_formats, selectors
from .models import UsageMetric
from .serializers import UsageQuerySerializer

CAPABILITY = "billing.view_usage_report"


def turkish_panel_page(view):
    """Both factors and the usage capability, else the sign-in (with ?next=) or 403; always in Turkish."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        user = request.user
        with translation.override("tr"):
            if not (user.is_authenticated and user.is_active and user.is_verified()):
                login = reverse("admin:login")
                return HttpResponseRedirect(f"{login}?{urlencode({'next': request.get_full_path()})}")
            if not user.has_perm(CAPABILITY):
                raise PermissionDenied
            response = view(request, *args, **kwargs)
            response.headers.setdefault("Content-Language", "tr")
            return response

    return wrapper


def _query(request):
    tenants = list(tenants_for(request.user).values_list("slug", "name"))
    data = {
        "tenant": request.GET.get("tenant") or (tenants[0][0] if tenants else ""),
        "period": request.GET.get("period") or f"{timezone.localdate():%Y-%m}",
    }
    parsed = UsageQuerySerializer(data=data, context={"user": request.user})
    return parsed, data, tenants


@turkish_panel_page
def usage(request):
    parsed, data, tenants = _query(request)
    context = {"tenants": tenants, "selected": data, "page": "billing"}
    if parsed.is_valid():
        tenant, period = parsed.validated_data["tenant"], parsed.validated_data["period"]
        report = selectors.cost_report(tenant, period)
        labels = {m: str(label) for m, label in UsageMetric.choices}
        context.update(
            report=report,
            tenant_name=tenant.name,
            metric_rows=[{**m, "label": labels[m["metric"]]} for m in report["metrics"]],
            line_rows=[{**ln, "label": labels[ln["metric"]]} for ln in report["lines"]],
            chart={
                "days": report["daily"]["days"],
                "series": [
                    {"name": labels[m], "data": [float(Decimal(v)) for v in values]}
                    for m, values in report["daily"]["cost"].items()
                ],
                "currency": report["currency"],
            },
            export_query=urlencode({"tenant": tenant.slug, "period": period.label}),
        )
    else:
        context["errors"] = [str(e) for errors in parsed.errors.values() for e in errors]
    return render(request, "billing/usage.html", context, status=200 if parsed.is_valid() else 400)


@turkish_panel_page
def usage_export(request, fmt):
    parsed, _data, _tenants = _query(request)
    if not parsed.is_valid():
        return problem_response(
            status_code=422,
            slug="validation-error",
            title=_("Some filters are not valid."),
            errors={k: [str(e) for e in v] for k, v in parsed.errors.items()},
        )
    tenant, period = parsed.validated_data["tenant"], parsed.validated_data["period"]
    report = selectors.cost_report(tenant, period)
    name = f"usage-{tenant.slug}-{period.label}"
    if fmt == "csv":
        response = HttpResponse(report_formats.as_csv(report), content_type="text/csv; charset=utf-8")
    elif fmt == "json":
        response = HttpResponse(report_formats.as_json(report), content_type="application/json")
    else:
        response = HttpResponse(report_formats.as_pdf(report, tenant_name=tenant.name), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response
