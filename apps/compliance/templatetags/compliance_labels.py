from django import template
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

register = template.Library()

EVIDENCE_LABELS = {
    "mfa_coverage": _("MFA coverage of staff users"),
    "role_matrix": _("Roles and capabilities"),
    "admin_url_walk": _("Admin URLs without sign-in"),
    "key_rotation_age": _("Key rotation age per ERP profile"),
    "audit_verification": _("Audit chain verification and latest signed checkpoint"),
    "incident_lock_periods": _("Incident-lock periods"),
    "backup_settings": _("Backup settings"),
    "dependency_versions": _("Dependency versions"),
    "check_deploy": _("Deployment checks (check --deploy)"),
    "processing_records": _("Records of processing (GDPR Art. 30)"),
    "retention_runs": _("Retention runs and legal holds"),
}
STATUS_LABELS = {"ok": _("in order"), "attention": _("needs attention"), "not_available": _("not available")}


@register.filter
def evidence_label(code):
    return EVIDENCE_LABELS.get(code, code)


@register.filter
def status_label(status):
    return STATUS_LABELS.get(status, status)


@register.filter
def finding_text(document):
    """A collector's finding in the active language (the English summary when it has no message id)."""
    finding = document.get("summary_i18n") if isinstance(document, dict) else None
    if not finding:
        return document.get("summary", "") if isinstance(document, dict) else ""
    return gettext(finding["text"]) % finding["args"]
