"""Load the frameworks' content again: retention-run evidence is mapped to SOC 2 C1.2, ISO 27001 A.5.33 and
A.8.10, and GDPR Art. 5 and the new Art. 17 row (the same loader as 0002; it updates rows in place)."""

from django.db import migrations


def load(apps, schema_editor):
    from apps.compliance import content

    content.load_all(models=apps)


class Migration(migrations.Migration):
    dependencies = [("compliance", "0002_content"), ("governance", "0002_default_policies_and_roles")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
