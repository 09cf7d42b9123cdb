from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


class TenantCatalogItem(models.Model):
    """Fields every catalog entry shares: a tenant, a code unique inside it, and a name."""

    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.PROTECT, verbose_name=_("tenant"))
    code = models.CharField(_("code"), max_length=64)
    name = models.CharField(_("name"), max_length=200)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["tenant_id", "code"]

    def __str__(self):
        return f"{self.code} · {self.name}"


def unique_code_per_tenant(model_name: str) -> models.UniqueConstraint:
    return models.UniqueConstraint(fields=["tenant", "code"], name=f"catalog_{model_name}_code_per_tenant")


class Machine(TenantCatalogItem):
    """A production machine on a tenant's floor."""

    location = models.CharField(_("location"), max_length=200, blank=True)

    class Meta(TenantCatalogItem.Meta):
        verbose_name = _("machine")
        verbose_name_plural = _("machines")
        constraints = [unique_code_per_tenant("machine")]
        permissions = [("import_machine", _("Can import machines")), ("export_machine", _("Can export machines"))]


class Post(TenantCatalogItem):
    """A workstation of a machine, where a job actually runs."""

    machine = models.ForeignKey(Machine, on_delete=models.PROTECT, related_name="posts", verbose_name=_("machine"))

    class Meta(TenantCatalogItem.Meta):
        verbose_name = _("post")
        verbose_name_plural = _("posts")
        constraints = [unique_code_per_tenant("post")]
        permissions = [("import_post", _("Can import posts")), ("export_post", _("Can export posts"))]

    def clean(self):
        if self.machine_id and self.tenant_id and self.machine.tenant_id != self.tenant_id:
            raise ValidationError({"machine": _("The machine belongs to another tenant.")})


class Material(TenantCatalogItem):
    """A raw material a job consumes."""

    unit = models.CharField(_("unit"), max_length=16, default="kg")

    class Meta(TenantCatalogItem.Meta):
        verbose_name = _("material")
        verbose_name_plural = _("materials")
        constraints = [unique_code_per_tenant("material")]
        permissions = [("import_material", _("Can import materials")), ("export_material", _("Can export materials"))]


class Template(TenantCatalogItem):
    """A reusable job recipe (program and parameters)."""

    version = models.PositiveIntegerField(_("version"), default=1)

    class Meta(TenantCatalogItem.Meta):
        verbose_name = _("template")
        verbose_name_plural = _("templates")
        constraints = [unique_code_per_tenant("template")]
        permissions = [("import_template", _("Can import templates")), ("export_template", _("Can export templates"))]


class ModelType(TenantCatalogItem):
    """A product model that jobs produce."""

    class Meta(TenantCatalogItem.Meta):
        verbose_name = _("model type")
        verbose_name_plural = _("model types")
        constraints = [unique_code_per_tenant("modeltype")]
        permissions = [
            ("import_modeltype", _("Can import model types")),
            ("export_modeltype", _("Can export model types")),
        ]
