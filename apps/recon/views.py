"""The break queue and run history in the Turkish panel (/panel/recon/): thin, filters in the URL."""

import datetime as dt
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from apps.accounts.selectors import tenants_for
from apps.reporting import display
from apps.reporting.views import panel_page

from . import exports, selectors, services
from .constants import AGE_BUCKETS, BUCKET_LABELS, FIELD_LABELS, TIME_FIELDS
from .forms import BreakFilterForm, BulkAssignForm
from .models import BreakKind

PAGE_SIZE = 50


def _nav(request):
    user = request.user
    return {
        "can_export": user.has_perm("reporting.add_reportexport"),
        "can_see_alerts": user.has_perm("reporting.view_alertrule"),
    }


def _breaks_context(request, form):
    now = timezone.now()
    filters = form.cleaned_data if form.is_valid() else {}
    queryset = selectors.queue(request.user, filters, now=now)
    paginator = Paginator(queryset, PAGE_SIZE)
    page = paginator.get_page(filters.get("page") or 1)
    counts = selectors.bucket_counts(request.user, now=now)
    sla_days = settings.RECON_SLA_DAYS
    buckets = [
        {
            "name": name,
            "label": BUCKET_LABELS[name],
            "count": display.number(counts[name]),
            "sla": selectors.sla_state(name, sla_days),
        }
        for name, _l, _h in AGE_BUCKETS
    ]
    rows = [
        {
            "brk": brk,
            "bucket": BUCKET_LABELS[selectors.bucket_of(brk.first_seen_at, now)],
            "first_seen": display.datetime(brk.first_seen_at),
            "summary": _summary(brk),
        }
        for brk in page.object_list
    ]
    query = urlencode([(k, v) for k, vs in request.GET.lists() if k != "page" for v in vs if v])
    return {
        "form": form,
        "buckets": buckets,
        "sla_days": sla_days,
        "rows": rows,
        "page_obj": page,
        "total": display.number(paginator.count),
        "query": query,
        "tenants": tenants_for(request.user),
        "can_assign": request.user.has_perm("recon.assign_break"),
        "page": "recon",
        **_nav(request),
    }


def _value(field, value) -> str:
    """A compared value as analysts read it: times (epoch seconds) in Istanbul time, numbers the Turkish way."""
    if value is None or value == "":
        return "-"
    if field in TIME_FIELDS:
        return display.datetime(dt.datetime.fromtimestamp(int(value), tz=dt.UTC))
    if isinstance(value, float):
        return display.number(int(value) if value.is_integer() else value)
    return str(value)


def _summary(brk) -> str:
    details = brk.details or {}
    if "fields" in details:
        return "; ".join(
            _("%(field)s: ERP %(erp)s, portal %(portal)s")
            % {
                "field": FIELD_LABELS.get(name, name),
                "erp": _value(name, v.get("erp")),
                "portal": _value(name, v.get("portal")),
            }
            for name, v in details["fields"].items()
        )
    if brk.kind == "STATUS_MISMATCH":
        return _("ERP %(erp)s, portal %(portal)s") % {
            "erp": details.get("erp"),
            "portal": display.status_label(details.get("portal") or ""),
        }
    if brk.kind == "DUPLICATE_KEY":
        items = details.get("rows") or details.get("jobs") or []
        return _("%(count)s times on the %(side)s side") % {
            "count": len(items),
            "side": _("ERP") if details.get("side") == "erp" else _("portal"),
        }
    return ""


@panel_page("recon.view_break")
@require_http_methods(["GET", "POST"])
def breaks(request):
    """The break queue: buckets by age with the SLA, filters in the URL, and bulk assignment (POST)."""
    if request.method == "POST":
        return _bulk_assign(request)
    form = BreakFilterForm(request.GET)
    context = _breaks_context(request, form)
    status = 200 if form.is_valid() else 400
    return render(request, "recon/breaks.html", context, status=status)


def _bulk_assign(request):
    back = request.get_full_path()
    if not request.user.has_perm("recon.assign_break"):
        raise PermissionDenied
    ids = [v for v in request.POST.getlist("breaks") if v.isdigit()][:500]
    form = BulkAssignForm(request.POST, break_ids=[int(i) for i in ids])
    if not form.is_valid():
        messages.error(request, _("Choose at least one break."))
        return HttpResponseRedirect(back)
    assignee = None
    username = form.cleaned_data["assignee"]
    if username:
        assignee = get_user_model().objects.filter(username=username, is_active=True).first()
        if assignee is None:
            messages.error(request, _("No such user: %(user)s") % {"user": username})
            return HttpResponseRedirect(back)
    chosen = selectors.breaks_for(request.user).filter(pk__in=form.cleaned_data["breaks"])
    try:
        count = services.bulk_assign(chosen, assignee=assignee, actor=request.user)
    except (ValidationError, PermissionDenied) as refused:
        messages.error(request, " ".join(getattr(refused, "messages", [str(refused)])))
        return HttpResponseRedirect(back)
    messages.success(request, _("%(count)s breaks assigned.") % {"count": display.number(count)})
    return HttpResponseRedirect(back)


@panel_page("recon.view_reconrun")
def runs(request):
    recent = selectors.runs_for(request.user).select_related("tenant", "profile", "config", "file", "started_by")[:100]
    rows = [
        {
            "run": r,
            "started": display.datetime(r.started_at),
            "duration": display.duration(r.duration_ms),
            "counts": [(BreakKind(kind).label, display.number(n)) for kind, n in r.counts.items() if n],
            "starter": r.started_by.get_username() if r.started_by else _("system"),
        }
        for r in recent
    ]
    return render(request, "recon/runs.html", {"rows": rows, "page": "recon-runs", **_nav(request)})


@panel_page("recon.export_break")
def run_breaks_csv(request, run_id):
    recon_run = selectors.runs_for(request.user).select_related("config", "file").filter(pk=run_id).first()
    if recon_run is None:
        raise Http404
    response = HttpResponse(exports.run_breaks_csv(recon_run), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="recon-run-{recon_run.pk}-breaks.csv"'
    return response
