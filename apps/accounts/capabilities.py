"""The one capability matrix: which Django permissions (capabilities) each role (group) holds.

Views and services check capabilities by name (`user.has_perm("jobs.cancel_job")`), never role names.
A migration turns this matrix into groups; `manage.py sync_roles` re-applies it after a change.
"""

ADMIN = "admin"
ANALYST = "analyst"
OPERATOR = "operator"
AUDITOR = "auditor"
ROLES = (ADMIN, ANALYST, OPERATOR, AUDITOR)


def _crud(app_label: str, model: str, *extra: str) -> list[str]:
    return [f"{app_label}.{verb}_{model}" for verb in ("view", "add", "change", "delete")] + [
        f"{app_label}.{e}" for e in extra
    ]


def _view(app_label: str, *models: str) -> list[str]:
    return [f"{app_label}.view_{m}" for m in models]


_CATALOG_MODELS = ("machine", "post", "material", "template", "modeltype")

# Reporting (issue 6): see the dashboards, start and download own exports, read alert rules and history.
_REPORTING_READ = [
    "reporting.view_report",
    "reporting.view_reportexport",
    "reporting.add_reportexport",
    *_view("reporting", "alertrule", "alertchannel", "alertnotice"),
]

# Governance (issue 17): read retention policies, runs, legal holds, the inventory and compliance reports.
_GOVERNANCE_READ = _view("governance", "retentionpolicy", "retentionrun", "legalhold")
_GOVERNANCE_AUDITOR = _view("governance", "datasubjectrequest")
# Recon (issue 18): analysts read breaks, runs and files; operators work breaks, load files and start runs.
_RECON_READ = [*_view("recon", "break", "breakcomment", "reconrun", "reconfile"), "recon.export_break"]
_RECON_WORK = [
    *_RECON_READ,
    "recon.add_reconfile",
    "recon.run_recon",
    "recon.assign_break",
    "recon.comment_break",
    "recon.resolve_break",
    "recon.suppress_break",
]
# Usage and cost (issue 19): read usage events, cost reports and pricing versions.
_BILLING_USAGE_READ = ["billing.view_usage_report", *_view("billing", "usageevent", "pricingversion", "pricerate")]

ROLE_CAPABILITIES: dict[str, list[str]] = {
    # Tenant administrator: everything on the tenants granted to them.
    ADMIN: [
        *_crud("accounts", "user", "assign_roles"),
        *_view("accounts", "tenant"),
        "accounts.change_tenant",
        *[p for m in _CATALOG_MODELS for p in _crud("catalog", m, f"import_{m}", f"export_{m}")],
        *_crud("jobs", "job", "cancel_job", "change_job_status", "import_job", "export_job"),
        *_view("jobs", "jobstatuschange"),
        *_crud("billing", "license", "extend_license"),
        *_crud("billing", "invoice"),
        *_crud("billing", "invoiceline"),
        *_view("django_celery_beat", "periodictask", "crontabschedule", "intervalschedule"),
        *_view("audit", "auditlog", "auditcheckpoint"),
        *_crud("erp", "integrationprofile"),
        *_view("erp", "erpkey", "erpsync", "erpsyncattempt", "erpoutbounddeadletter"),
        "erp.replay_erpsync",
        "erp.resolve_erpsync",
        *_view("events", "outboxevent"),
        # Reporting (issue 6): dashboards, exports, and the tenant's alert rules and channels.
        *_REPORTING_READ,
        *_crud("reporting", "alertrule"),
        *_crud("reporting", "alertchannel"),
        # issue 15: the SLA figures of the tenant's requests (admin and /api/enterprise/metrics).
        *_view("observability", "requeststat"),
        # issue 14: lockouts, sessions and security events of their tenants' users (the address lists and
        # break-glass reach every tenant: superusers only).
        "security.view_securityevent",
        "security.unlock_account",
        "security.view_usersession",
        "security.delete_usersession",
        "security.view_iplistentry",
        "flags.view_featureflag",
        # Governance (issue 17): retention policies, legal holds, data subject requests (global changes also
        # need every tenant: apps.governance checks that).
        *_GOVERNANCE_READ,
        "governance.change_retentionpolicy",
        "governance.apply_retention",
        "governance.add_legalhold",
        "governance.change_legalhold",
        "governance.view_datasubjectrequest",
        "governance.add_datasubjectrequest",
        "governance.process_datasubjectrequest",
        # Recon (issue 18): everything operators do, and the versioned config.
        *_RECON_WORK,
        *_view("recon", "reconconfig"),
        "recon.add_reconconfig",
        # Usage and cost (issue 19): the tenant's usage, cost reports and the price list.
        *_BILLING_USAGE_READ,
    ],
    # Reads reports and exports; changes nothing.
    ANALYST: [
        *_view("accounts", "tenant"),
        *_view("catalog", *_CATALOG_MODELS),
        *_view("jobs", "job", "jobstatuschange"),
        "jobs.export_job",
        *_REPORTING_READ,
        *_RECON_READ,
    ],
    # Runs the floor: moves and cancels jobs, keeps the catalog.
    OPERATOR: [
        *_view("accounts", "tenant"),
        *[p for m in _CATALOG_MODELS for p in _crud("catalog", m, f"import_{m}", f"export_{m}")],
        *_view("jobs", "job", "jobstatuschange"),
        "jobs.add_job",
        "jobs.change_job",
        "jobs.cancel_job",
        "jobs.change_job_status",
        "jobs.import_job",
        "jobs.export_job",
        *_RECON_WORK,
    ],
    # Reads everything that evidence may point at; changes nothing.
    AUDITOR: [
        *_view("accounts", "tenant", "user"),
        *_view("catalog", *_CATALOG_MODELS),
        *_view("jobs", "job", "jobstatuschange"),
        *_view("billing", "license", "invoice", "invoiceline"),
        *_view("audit", "auditlog", "auditcheckpoint"),
        # Entries of no tenant (sign-ins, user admin): auditors only, never tenant admins (issue 11).
        "audit.view_tenantless_entries",
        *_view("erp", "integrationprofile", "erpkey", "erpsync", "erpsyncattempt", "erpoutbounddeadletter"),
        *_view("events", "outboxevent"),
        # issue 15: the SIEM feed (what waits, each destination's cursor); re-sending stays with superusers.
        *_view("siem", "siemrecord", "siemdestination"),
        *_view("observability", "requeststat"),
        # issue 14: security events, sessions and the address lists, read only.
        "security.view_securityevent",
        "security.view_usersession",
        "security.view_iplistentry",
        "flags.view_featureflag",
        *_GOVERNANCE_READ,
        *_GOVERNANCE_AUDITOR,
        *_view("recon", "break", "breakcomment", "reconrun", "reconfile", "reconconfig"),
        *_BILLING_USAGE_READ,
    ],
}
