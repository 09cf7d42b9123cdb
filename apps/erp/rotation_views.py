"""The admin flow of key rotation: a confirmation page, then the new next secret shown once."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.views import View

from apps.accounts import selectors as account_selectors

from . import rotation
from .models import ErpKey, IntegrationProfile, KeyState

CAPABILITY = "erp.change_integrationprofile"
# A leaked key is exactly when rotation is needed: it stays possible under the incident lock if allowed.
EMERGENCY_OP = "erp.rotate_keys"


class RotateKeysView(View):
    """GET: what will happen; POST: rotate (audited) and show the new next secret once (no-store page)."""

    admin_site = None
    template_name = "admin/erp/rotate_keys.html"

    def _profile(self, request, profile_id) -> IntegrationProfile:
        if not request.user.has_perm(CAPABILITY):
            raise PermissionDenied
        profile = IntegrationProfile.objects.select_related("tenant").filter(pk=profile_id).first()
        if profile is None:
            raise Http404
        # The default profile (no tenant) serves every tenant: only someone who sees all tenants rotates it.
        allowed = (
            account_selectors.sees_all_tenants(request.user)
            if profile.tenant_id is None
            else account_selectors.can_access_tenant(request.user, profile.tenant)
        )
        if not allowed:
            raise Http404
        return profile

    def _render(self, request, profile, **context):
        keys = {k.state: k for k in ErpKey.objects.filter(profile=profile, state__in=[KeyState.CURRENT, KeyState.NEXT])}
        response = TemplateResponse(
            request,
            self.template_name,
            {
                **self.admin_site.each_context(request),
                "title": _("Rotate ERP keys"),
                "profile": profile,
                "current": keys.get(KeyState.CURRENT),
                "next": keys.get(KeyState.NEXT),
                **context,
            },
        )
        response["Cache-Control"] = "no-store"
        return response

    def get(self, request, profile_id):
        return self._render(request, self._profile(request, profile_id))

    def post(self, request, profile_id):
        profile = self._profile(request, profile_id)
        result = rotation.rotate(profile, actor=request.user, source="admin")
        return self._render(request, profile, result=result)


def rotate_keys_view(admin_site):
    view = admin_site.admin_view(RotateKeysView.as_view(admin_site=admin_site))
    view.emergency_op = EMERGENCY_OP
    return view
