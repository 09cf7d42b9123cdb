"""URLconf of the benchmark server only: every real URL, plus a bare view behind the same middleware."""

from django.db import connection
from django.http import JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt

BARE_TABLE = "bench_bare_insert"


@csrf_exempt
def bare_insert(request):
    """The comparison: parse nothing, check nothing, one INSERT of the body, answer {"ok": true}."""
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {BARE_TABLE} (body, created_at) VALUES (%s, now())", [request.body.decode()])  # noqa: S608
    return JsonResponse({"ok": True})


urlpatterns = [path("bench/bare-insert", bare_insert), path("", include("config.urls"))]
handler404 = "apps.core.problems.handler404"
handler500 = "apps.core.problems.handler500"
