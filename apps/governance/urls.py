from django.urls import path

from . import api, audit_api

governance = [
    path("inventory", api.InventoryApi.as_view(), name="inventory"),
    path("retention-policies", api.RetentionPolicyApi.as_view(), name="retention-policies"),
    path("apply-retention", api.ApplyRetentionApi.as_view(), name="apply-retention"),
    path("legal-holds", api.LegalHoldListApi.as_view(), name="legal-holds"),
    path("legal-holds/<int:hold_id>", api.LegalHoldLiftApi.as_view(), name="legal-hold"),
    path("compliance-report", api.GovernanceComplianceReportApi.as_view(), name="compliance-report"),
    path("data-requests", api.DataRequestListApi.as_view(), name="data-requests"),
    path("data-requests/<int:request_id>/process", api.DataRequestProcessApi.as_view(), name="data-request-process"),
]

audit = [
    path("logs", audit_api.AuditLogSearchApi.as_view(), name="logs"),
    path("verify-integrity", audit_api.VerifyIntegrityApi.as_view(), name="verify-integrity"),
    path("compliance-report", audit_api.AuditComplianceReportApi.as_view(), name="compliance-report"),
]
