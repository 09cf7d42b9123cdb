import re

import pytest
from django.contrib.admin import helpers
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.jobs.models import Job, JobStatusChange
from apps.jobs.services import change_status
from tests import factories
from tests.conftest import verified_client

CHANGELIST = reverse("admin:jobs_job_changelist")


def _messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def operator_client(client, role_users):
    return verified_client(client, role_users["operator"])


@pytest.mark.django_db
def test_cancel_action_first_asks_for_confirmation_and_changes_nothing(operator_client, tenant_a):
    job = factories.JobFactory(tenant=tenant_a)
    response = operator_client.post(CHANGELIST, {"action": "cancel_selected", helpers.ACTION_CHECKBOX_NAME: [job.pk]})
    assert response.status_code == 200
    assert "Evet, iptal et" in response.content.decode(), "the confirmation page, in Turkish by default"
    assert b'name="confirm" value="yes"' in response.content
    job.refresh_from_db()
    assert job.status == "queued"


@pytest.mark.django_db
def test_confirmed_cancel_goes_through_the_job_service_and_reports_refusals(operator_client, tenant_a, role_users):
    queued = factories.JobFactory(tenant=tenant_a)
    finished = change_status(change_status(factories.JobFactory(tenant=tenant_a), "running"), "succeeded")
    response = operator_client.post(
        CHANGELIST,
        {
            "action": "cancel_selected",
            helpers.ACTION_CHECKBOX_NAME: [queued.pk, finished.pk],
            "confirm": "yes",
            "reason": "malzeme yok",
        },
        follow=True,
    )
    assert response.status_code == 200
    queued.refresh_from_db()
    finished.refresh_from_db()
    assert queued.status == "cancelled" and finished.status == "succeeded"
    change = JobStatusChange.objects.get(job=queued, to_status="cancelled")
    assert (change.source, change.actor, change.reason) == ("admin_bulk", role_users["operator"], "malzeme yok")
    texts = _messages(response)
    assert any(str(finished) in t for t in texts), texts
    assert any("1" in t for t in texts)


@pytest.mark.django_db
def test_cancel_action_is_not_offered_without_the_capability(client, role_users, tenant_a):
    factories.JobFactory(tenant=tenant_a)
    verified_client(client, role_users["analyst"])
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    assert b'value="cancel_selected"' not in response.content


@pytest.mark.django_db
def test_admin_status_change_uses_the_state_machine(operator_client, tenant_a, role_users):
    job = factories.JobFactory(tenant=tenant_a)
    url = reverse("admin:jobs_job_change", args=[job.pk])
    form = {
        "tenant": tenant_a.pk, "external_id": job.external_id, "model_type": job.model_type_id,
        "machine": job.machine_id, "post": job.post_id, "material": "", "template": "",
        "new_status": "succeeded", "new_progress": "", "status_reason": "",
        "status_changes-TOTAL_FORMS": "0", "status_changes-INITIAL_FORMS": "0",
    }  # fmt: skip
    refused = operator_client.post(url, form)
    assert refused.status_code == 200, "an illegal transition re-shows the form"
    assert "succeeded" in refused.content.decode()
    job.refresh_from_db()
    assert job.status == "queued"
    accepted = operator_client.post(url, {**form, "new_status": "running", "new_progress": "15"})
    assert accepted.status_code == 302
    job.refresh_from_db()
    assert (job.status, job.progress) == ("running", 15)
    assert JobStatusChange.objects.get(job=job).source == "admin"


@pytest.mark.django_db
def test_job_changelist_never_runs_an_unbounded_count(operator_client, tenant_a, settings):
    settings.ADMIN_COUNT_LIMIT = 5
    factories.JobFactory.create_batch(8, tenant=tenant_a)
    with CaptureQueriesContext(connection) as queries:
        response = operator_client.get(CHANGELIST, {"status__exact": "queued"})
    assert response.status_code == 200
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    job_counts = [sql for sql in counts if '"jobs_job"' in sql]
    assert job_counts, "the paginator should count (bounded)"
    for sql in job_counts:
        assert re.search(r"LIMIT\s+6", sql), f"unbounded count: {sql}"


@pytest.mark.django_db
def test_job_changelist_queries_do_not_grow_with_rows(operator_client, tenant_a):
    factories.JobFactory.create_batch(3, tenant=tenant_a)
    operator_client.get(CHANGELIST)  # warms the cached incident lock state, read once per cache lifetime
    with CaptureQueriesContext(connection) as few:
        operator_client.get(CHANGELIST)
    factories.JobFactory.create_batch(30, tenant=tenant_a)
    with CaptureQueriesContext(connection) as many:
        operator_client.get(CHANGELIST)
    assert len(many) == len(few), "list_select_related keeps one query per page, not per row"


@pytest.mark.django_db
def test_adding_a_job_in_the_admin_creates_a_queued_job(operator_client, tenant_a):
    post = factories.PostFactory(tenant=tenant_a)
    model_type = factories.ModelTypeFactory(tenant=tenant_a)
    response = operator_client.post(
        reverse("admin:jobs_job_add"),
        {
            "tenant": tenant_a.pk, "external_id": "ERP-NEW-1", "model_type": model_type.pk,
            "machine": post.machine_id, "post": post.pk, "material": "", "template": "",
            "status_changes-TOTAL_FORMS": "0", "status_changes-INITIAL_FORMS": "0",
        },
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    job = Job.objects.get(external_id="ERP-NEW-1")
    assert job.status == "queued" and job.tenant == tenant_a


@pytest.mark.django_db
def test_adding_a_job_with_a_post_of_another_machine_is_refused(operator_client, tenant_a):
    post = factories.PostFactory(tenant=tenant_a)
    other_machine = factories.MachineFactory(tenant=tenant_a)
    model_type = factories.ModelTypeFactory(tenant=tenant_a)
    response = operator_client.post(
        reverse("admin:jobs_job_add"),
        {
            "tenant": tenant_a.pk, "external_id": "ERP-NEW-2", "model_type": model_type.pk,
            "machine": other_machine.pk, "post": post.pk, "material": "", "template": "",
            "status_changes-TOTAL_FORMS": "0", "status_changes-INITIAL_FORMS": "0",
        },
    )  # fmt: skip
    assert response.status_code == 200
    assert not Job.objects.filter(external_id="ERP-NEW-2").exists()


@pytest.mark.django_db
def test_a_capped_count_is_shown_as_more_than_the_limit(operator_client, tenant_a, settings):
    settings.ADMIN_COUNT_LIMIT = 5
    settings.LANGUAGE_CODE = "en"
    factories.JobFactory.create_batch(8, tenant=tenant_a)
    capped = operator_client.get(CHANGELIST, {"status__exact": "queued"}, HTTP_ACCEPT_LANGUAGE="en")
    assert "more than 5" in capped.content.decode()
    exact = operator_client.get(CHANGELIST, {"status__exact": "running"}, HTTP_ACCEPT_LANGUAGE="en")
    assert "more than" not in exact.content.decode()
    assert "Show counts" not in capped.content.decode(), "facet counts are off for the job list"


def _finished(tenant):
    return change_status(change_status(factories.JobFactory(tenant=tenant), "running"), "succeeded")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "will", "will_not"),
    [
        ("en", "2 jobs will be cancelled:", "1 job will not be cancelled, because it is already finished:"),
        ("tr", "2 iş iptal edilecek:", "1 iş zaten bittiği için iptal edilmeyecek:"),
    ],
)
def test_the_cancel_confirmation_says_which_jobs_will_and_will_not_be_cancelled(
    operator_client, tenant_a, language, will, will_not
):
    queued, running = (
        factories.JobFactory(tenant=tenant_a),
        change_status(factories.JobFactory(tenant=tenant_a), "running"),
    )
    finished = _finished(tenant_a)
    response = operator_client.post(
        CHANGELIST,
        {"action": "cancel_selected", helpers.ACTION_CHECKBOX_NAME: [queued.pk, running.pk, finished.pk]},
        HTTP_ACCEPT_LANGUAGE=language,
    )
    text = response.content.decode()
    assert will in text and will_not in text
    will_list = text.split('class="will-cancel"')[1].split("</ul>")[0]
    will_not_list = text.split('class="will-not-cancel"')[1].split("</ul>")[0]
    assert str(queued) in will_list and str(running) in will_list and str(finished) not in will_list
    assert str(finished) in will_not_list and str(queued) not in will_not_list
    assert b'name="confirm" value="yes"' in response.content


@pytest.mark.django_db
def test_a_selection_of_finished_jobs_offers_nothing_to_confirm(operator_client, tenant_a):
    finished = _finished(tenant_a)
    response = operator_client.post(
        CHANGELIST, {"action": "cancel_selected", helpers.ACTION_CHECKBOX_NAME: [finished.pk]}
    )
    text = response.content.decode()
    assert "0 iş iptal edilecek:" in text and "1 iş zaten bittiği için iptal edilmeyecek:" in text
    assert 'name="confirm"' not in text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "summary"),
    [("en", "0 jobs cancelled; 2 jobs not cancelled."), ("tr", "0 iş iptal edildi; 2 iş iptal edilmedi.")],
)
def test_after_a_cancel_both_counts_are_reported_even_when_nothing_was_cancelled(
    operator_client, tenant_a, language, summary
):
    finished = [_finished(tenant_a), _finished(tenant_a)]
    response = operator_client.post(
        CHANGELIST,
        {"action": "cancel_selected", helpers.ACTION_CHECKBOX_NAME: [j.pk for j in finished], "confirm": "yes"},
        HTTP_ACCEPT_LANGUAGE=language,
        follow=True,
    )
    texts = _messages(response)
    assert texts[0] == summary, texts
    assert len(texts) == 3


@pytest.mark.django_db
def test_after_a_cancel_the_summary_counts_one_of_each(operator_client, tenant_a):
    jobs = [factories.JobFactory(tenant=tenant_a), _finished(tenant_a)]
    response = operator_client.post(
        CHANGELIST,
        {"action": "cancel_selected", helpers.ACTION_CHECKBOX_NAME: [j.pk for j in jobs], "confirm": "yes"},
        HTTP_ACCEPT_LANGUAGE="en",
        follow=True,
    )
    assert _messages(response)[0] == "1 job cancelled; 1 job not cancelled."


@pytest.mark.django_db
def test_the_changelist_shows_a_short_linked_id_with_the_full_one_on_hover(operator_client, tenant_a):
    job = factories.JobFactory(tenant=tenant_a)
    text = operator_client.get(CHANGELIST).content.decode()
    change_url = reverse("admin:jobs_job_change", args=[job.pk])
    short = f'<code class="job-id" title="{job.public_id}">{job.public_id.hex[:8]}</code>'
    assert f'<a href="{change_url}">{short}</a>' in text
    assert f">{job.public_id}<" not in text
