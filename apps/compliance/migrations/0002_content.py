"""Load the frameworks' content from configs/compliance/ (re-run with `manage.py load_compliance_content`)."""

from django.db import migrations


def load(apps, schema_editor):
    from apps.compliance import content

    content.load_all(models=apps)


class Migration(migrations.Migration):
    dependencies = [("compliance", "0001_initial")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
