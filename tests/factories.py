"""Factories for test data; every catalog item and job belongs to one tenant consistently."""

import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from apps.accounts.models import Tenant, User
from apps.billing.models import Invoice, InvoiceLine, License
from apps.catalog.models import Machine, Material, ModelType, Post, Template
from apps.jobs.models import Job


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Fabrika {n}")
    slug = factory.Sequence(lambda n: f"fabrika-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery staple")

    @factory.post_generation
    def saved(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class _CatalogFactory(factory.django.DjangoModelFactory):
    tenant = factory.SubFactory(TenantFactory)
    code = factory.Sequence(lambda n: f"C{n:04d}")
    name = factory.Sequence(lambda n: f"Öğe {n}")


class MachineFactory(_CatalogFactory):
    class Meta:
        model = Machine


class PostFactory(_CatalogFactory):
    class Meta:
        model = Post

    machine = factory.SubFactory(MachineFactory, tenant=factory.SelfAttribute("..tenant"))


class MaterialFactory(_CatalogFactory):
    class Meta:
        model = Material


class TemplateFactory(_CatalogFactory):
    class Meta:
        model = Template


class ModelTypeFactory(_CatalogFactory):
    class Meta:
        model = ModelType


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job

    tenant = factory.SubFactory(TenantFactory)
    model_type = factory.SubFactory(ModelTypeFactory, tenant=factory.SelfAttribute("..tenant"))
    post = factory.SubFactory(PostFactory, tenant=factory.SelfAttribute("..tenant"))
    machine = factory.LazyAttribute(lambda job: job.post.machine)
    external_id = factory.Sequence(lambda n: f"ERP-{n:06d}")
    created_at = factory.LazyFunction(timezone.now)


class LicenseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = License

    tenant = factory.SubFactory(TenantFactory)
    seats = 10
    valid_from = factory.LazyFunction(lambda: timezone.localdate() - dt.timedelta(days=30))
    valid_until = factory.LazyFunction(lambda: timezone.localdate() + dt.timedelta(days=30))


class InvoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invoice

    tenant = factory.SubFactory(TenantFactory)
    number = factory.Sequence(lambda n: f"INV-2026-{n:05d}")
    period_start = dt.date(2026, 10, 1)
    period_end = dt.date(2026, 10, 31)


class InvoiceLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = InvoiceLine

    invoice = factory.SubFactory(InvoiceFactory)
    description = "Lisans"
    quantity = Decimal("3")
    unit_price = Decimal("99.99")
