"""Break indexes: the single-column tenant and profile ones go (recon_break_queue and the unique fingerprint lead with them)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_auditor_tenantless_entries"),
        ("erp", "0004_erpsync_trace_context"),
        ("recon", "0002_role_capabilities"),
    ]

    operations = [
        migrations.AlterField(
            model_name="break",
            name="profile",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                to="erp.integrationprofile",
                verbose_name="profile",
            ),
        ),
        migrations.AlterField(
            model_name="break",
            name="tenant",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.PROTECT, to="accounts.tenant", verbose_name="tenant"
            ),
        ),
    ]
