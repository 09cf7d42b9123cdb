"""compose.yaml and the Dockerfile stay runnable: Docker is not available here, so they are read, not run.

Every command they start must name something that exists in the project (a WSGI module, the Celery app,
a registered management command), every long-running service must have a healthcheck, and the image
must be multi-stage, non-root and free of dev dependencies.
"""

import ast
import json
import re
import shlex
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
import yaml
from celery import Celery
from celery.app.utils import find_app
from django.core.management import get_commands
from django.urls import resolve
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

APP_SERVICES = ("migrate", "web", "worker", "beat")
READY_URL = "http://127.0.0.1:8000/health/ready"


# ---------------------------------------------------------------- reading the files


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def services() -> dict:
    return compose()["services"]


def argv(command) -> list[str]:
    """A compose `command`/healthcheck `test` or a Dockerfile exec-form list as an argument list."""
    if command is None:
        return []
    if isinstance(command, str):
        return shlex.split(command)
    if command and command[0] in ("CMD", "CMD-SHELL"):
        return shlex.split(command[1]) if command[0] == "CMD-SHELL" else list(command[1:])
    return list(command)


def one_shot_services() -> set[str]:
    """Services others wait for to *finish* (`service_completed_successfully`), like `migrate`."""
    done = set()
    for service in services().values():
        depends = service.get("depends_on") or {}
        if isinstance(depends, dict):
            done |= {name for name, c in depends.items() if c.get("condition") == "service_completed_successfully"}
    return done


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and backslash continuations joined."""
    instructions, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = pending + stripped
        pending = ""
        keyword, _, rest = full.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
    return instructions


def dockerfile_stages(text: str) -> list[list[tuple[str, str]]]:
    stages = []
    for keyword, rest in dockerfile_instructions(text):
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, rest))
    return stages


def exec_form(rest: str) -> list[str]:
    """CMD/ENTRYPOINT/HEALTHCHECK CMD arguments: the JSON list form, or a shell string split into words."""
    rest = rest.strip()
    if rest.startswith("["):
        return json.loads(rest)
    return shlex.split(rest)


# ---------------------------------------------------------------- what a command refers to in the project


def module_file(dotted: str) -> Path | None:
    base = ROOT.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_level_names(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names |= {alias.asname or alias.name.split(".")[0] for alias in node.names}
    return names


def option_value(args: list[str], *flags: str) -> str | None:
    for i, arg in enumerate(args):
        for flag in flags:
            if arg == flag and i + 1 < len(args):
                return args[i + 1]
            if flag.startswith("--") and arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
    return None


def gunicorn_app_spec(args: list[str]) -> str | None:
    """The positional `module:variable` argument; option values (`--bind 0.0.0.0:8000`) are skipped."""
    skip_next = False
    for arg in args:
        if skip_next:
            skip_next = False
        elif arg.startswith("-"):
            skip_next = "=" not in arg
        else:
            return arg
    return None


def problems_with(args: list[str]) -> tuple[list[str], list[str]]:
    """(what the command refers to in the project, what of that is missing)."""
    refs, missing = [], []
    names = [Path(a).name for a in args]
    if "gunicorn" in names:
        spec = gunicorn_app_spec(args[names.index("gunicorn") + 1 :])
        refs.append(f"gunicorn {spec}")
        module, _, variable = (spec or "").partition(":")
        path = module_file(module) if module else None
        if path is None:
            missing.append(f"gunicorn app module {module!r} has no file under {ROOT}")
        elif (variable or "application") not in module_level_names(path):
            missing.append(f"{path.relative_to(ROOT)} defines no {variable or 'application'!r}")
    if "celery" in names:
        app = option_value(args, "-A", "--app")
        refs.append(f"celery -A {app}")
        try:
            # Celery's own lookup: `-A config` finds config.app, config.celery, or config/celery.py's `app`.
            found = find_app(app) if app else None
        except (ImportError, AttributeError) as exc:
            found = exc
        if not isinstance(found, Celery):
            missing.append(f"celery -A {app}: no Celery app in the project ({found!r})")
    if "manage.py" in names:
        i = names.index("manage.py")
        command = args[i + 1] if i + 1 < len(args) else None
        refs.append(f"manage.py {command}")
        if command not in get_commands():
            missing.append(f"`manage.py {command}` is not a registered management command")
    return refs, missing


def installed_closure(requirements: list[str]) -> set[str]:
    """Every distribution `pip install` of these requirements pulls in, read from installed metadata."""
    seen, todo = set(), [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        key = (canonicalize_name(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = distribution(req.name).requires or []
        except PackageNotFoundError:
            continue  # not installed here, e.g. for another platform: nothing more to follow
        for sub in map(Requirement, requires):
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in req.extras or {""}):
                todo.append(sub)
    return {name for name, _ in seen}


# ---------------------------------------------------------------- compose.yaml


def test_the_stack_has_postgres_redis_web_worker_and_beat():
    assert {"postgres", "redis", "web", "worker", "beat", "migrate"} <= set(services())
    assert "version" not in compose(), "the Compose spec has no `version:` key"


def test_every_long_running_service_has_its_own_healthcheck():
    one_shot = one_shot_services()
    assert "migrate" in one_shot
    for name, service in services().items():
        check = service.get("healthcheck") or {}
        if name in one_shot:
            continue
        assert not check.get("disable"), f"{name}: healthcheck disabled"
        assert argv(check.get("test")), f"{name}: no healthcheck test"
        if not service.get("ports") and "build" in service:
            # The image's HEALTHCHECK probes the web port; worker and beat must not inherit it.
            assert "8000" not in " ".join(argv(check["test"])), f"{name} serves no HTTP but probes port 8000"


def test_one_shot_services_are_not_restarted():
    for name in one_shot_services():
        assert str(services()[name].get("restart", "no")) in ("no", "on-failure"), name


def test_the_web_healthcheck_probes_the_readiness_url():
    probe = " ".join(argv(services()["web"]["healthcheck"]["test"]))
    assert READY_URL in probe
    assert resolve("/health/ready").url_name == "health-ready"


def test_named_volumes_are_declared_and_used():
    declared = set(compose().get("volumes") or {})
    used = set()
    for name, service in services().items():
        for volume in service.get("volumes") or []:
            source = volume.get("source") if isinstance(volume, dict) else volume.split(":")[0]
            if source and not source.startswith((".", "/", "~", "$")):
                assert source in declared, f"{name} mounts undeclared volume {source!r}"
                used.add(source)
    assert declared, "no named volumes"
    assert declared == used, f"declared but unused: {sorted(declared - used)}"

    def mounts(service):
        return [v.split(":", 1)[1] for v in services()[service].get("volumes", []) if isinstance(v, str)]

    assert "/var/lib/postgresql/data" in mounts("postgres")
    assert "/data" in mounts("redis")


def test_app_services_build_from_the_project_dockerfile():
    for name in APP_SERVICES:
        build = services()[name].get("build")
        assert build, f"{name} does not build the project image"
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        assert (COMPOSE.parent / context).resolve() == ROOT, f"{name} builds from {context!r}"
        assert (ROOT / dockerfile).resolve() == DOCKERFILE, f"{name} builds {dockerfile!r}"


def test_app_services_share_one_build_and_environment():
    first = services()[APP_SERVICES[0]]
    for name in APP_SERVICES[1:]:
        assert services()[name]["build"] == first["build"], name
        assert services()[name]["environment"] == first["environment"], name


def test_app_services_reach_postgres_and_redis_by_service_name_and_need_a_real_secret():
    env = services()["web"]["environment"]
    assert re.fullmatch(r"postgres://[^@]+@postgres:5432/\w+", env["DATABASE_URL"])
    assert re.fullmatch(r"redis://redis:6379/\d+", env["REDIS_URL"])
    assert re.fullmatch(r"\$\{DJANGO_SECRET_KEY:\?[^}]+\}", env["DJANGO_SECRET_KEY"]), "no default secret key"
    assert "127.0.0.1" in env["DJANGO_ALLOWED_HOSTS"], "the in-container health probe would get a 400"


def test_app_services_start_after_healthy_databases_and_the_migration():
    assert services()["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker", "beat"):
        depends = services()[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name


def test_every_compose_command_names_something_in_the_project():
    checked = {}
    for name, service in services().items():
        for what in ("command", "entrypoint"):
            refs, missing = problems_with(argv(service.get(what)))
            assert not missing, f"{name} {what}: {missing}"
            checked.setdefault(name, []).extend(refs)
        refs, missing = problems_with(argv((service.get("healthcheck") or {}).get("test")))
        assert not missing, f"{name} healthcheck: {missing}"
    assert checked["web"] == ["gunicorn config.wsgi"]
    assert checked["worker"] == ["celery -A config"]
    assert checked["beat"] == ["celery -A config"]
    assert checked["migrate"] == ["manage.py migrate"]


def test_worker_and_beat_run_the_celery_subcommand_their_name_says():
    assert "worker" in argv(services()["worker"]["command"])
    assert "beat" in argv(services()["beat"]["command"])


def test_published_ports_are_quoted_strings():
    # YAML 1.1 reads an unquoted `22:22` as the number 1342; the Compose docs ask for quoted ports.
    root = yaml.compose(COMPOSE.read_text())
    service_nodes = next(v for k, v in root.value if k.value == "services")
    found = 0
    for service_key, service_node in service_nodes.value:
        for key, value in service_node.value if isinstance(service_node, yaml.MappingNode) else []:
            if key.value != "ports":
                continue
            for port in value.value:
                found += 1
                assert isinstance(port, yaml.ScalarNode) and port.style in ('"', "'"), (
                    f"{service_key.value}: port {port.value!r} is not a quoted string"
                )
                assert re.fullmatch(r"([\d.]+:)?\d+:\d+(/tcp|/udp)?", port.value), port.value
    assert found, "no published ports"
    assert any(p.endswith(":8000") for p in services()["web"]["ports"]), "gunicorn binds 8000 in the container"


# ---------------------------------------------------------------- Dockerfile


def test_the_image_is_built_in_stages_and_runs_as_a_non_root_user():
    stages = dockerfile_stages(DOCKERFILE.read_text())
    assert len(stages) >= 2, "expected a builder stage and a runtime stage"
    final = stages[-1]
    assert "slim" in final[0][1] and "python:3.11" in final[0][1], final[0]
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users, "the final stage has no USER line, so it runs as root"
    user, _, group = users[-1].partition(":")
    assert user not in ("root", "0") and group not in ("root", "0"), f"USER {users[-1]}"


def test_the_image_installs_the_project_without_dev_dependencies():
    text = DOCKERFILE.read_text()
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    dev_names = {re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower() for requirement in dev}
    installs = [rest for keyword, rest in dockerfile_instructions(text) if keyword == "RUN" and "pip install" in rest]
    assert installs, "nothing is pip-installed"
    assert any(re.search(r"pip install\b[^&;|]*\s\.(\s|$)", rest) for rest in installs), (
        "the project `.` is not installed"
    )
    for rest in installs:
        assert "[dev]" not in rest, rest
        words = {w.lower() for w in re.split(r"[\s'\"]+", rest)}
        assert not words & dev_names, f"dev dependencies installed: {sorted(words & dev_names)}"
        assert not words & {"-e", "--editable"}, "editable install in the image"


def test_the_image_starts_gunicorn_with_the_project_wsgi_by_default():
    final = dockerfile_stages(DOCKERFILE.read_text())[-1]
    start = [arg for keyword, rest in final if keyword in ("ENTRYPOINT", "CMD") for arg in exec_form(rest)]
    refs, missing = problems_with(start)
    assert refs == ["gunicorn config.wsgi"], start
    assert not missing, missing
    assert "0.0.0.0:8000" in start
    assert ("EXPOSE", "8000") in final


def test_the_image_has_a_healthcheck_on_the_readiness_url():
    final = dockerfile_stages(DOCKERFILE.read_text())[-1]
    checks = [rest for keyword, rest in final if keyword == "HEALTHCHECK"]
    assert checks, "no HEALTHCHECK"
    assert checks[-1].upper() != "NONE"
    assert READY_URL in checks[-1]
    probe = exec_form(checks[-1].split(" CMD ", 1)[1])
    assert probe[0] == "python", "slim images have no curl: probe with python's urllib"


def test_every_manage_py_command_in_the_dockerfile_is_registered():
    commands = re.findall(r"manage\.py\s+([\w-]+)", DOCKERFILE.read_text())
    assert {"compile_translations", "collectstatic"} <= set(commands)
    registered = get_commands()
    assert [c for c in commands if c not in registered] == []


def test_build_time_settings_do_not_stay_in_the_image():
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    for keyword, rest in instructions:
        if keyword in ("ENV", "ARG"):
            assert "DJANGO_SECRET_KEY" not in rest and "DJANGO_DEBUG" not in rest, f"{keyword} {rest}"
    collect = [rest for keyword, rest in instructions if keyword == "RUN" and "collectstatic" in rest]
    assert collect and "DJANGO_SECRET_KEY=" in collect[0] and "DJANGO_DEBUG=false" in collect[0]


def test_the_image_runs_unbuffered_without_bytecode_and_keeps_state_in_app_var():
    env = " ".join(rest for keyword, rest in dockerfile_instructions(DOCKERFILE.read_text()) if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env
    assert "TEZGAH_VAR_DIR=/app/var" in env


def test_the_image_dependencies_let_celery_use_the_redis_broker():
    # The dev venv has more installed (pytest brings `packaging`), so it cannot show what the image lacks:
    # follow [project].dependencies alone, as the image's `pip install` does.
    assert services()["worker"]["environment"]["REDIS_URL"].startswith("redis://")
    runtime = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    image = installed_closure(runtime)
    needed = installed_closure(["kombu[redis]"])  # what kombu.transport.redis imports
    missing = sorted(needed - image)
    assert not missing, f"the image cannot reach Redis from Celery without {missing} (depend on celery[redis])"


@pytest.mark.parametrize("path", [".env", ".venv", "var", ".git", "node_modules", "__pycache__"])
def test_the_build_context_leaves_out_local_state_and_secrets(path):
    patterns = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    assert path in patterns or f"**/{path}" in patterns, f".dockerignore does not exclude {path}"


def test_the_mock_erp_is_its_own_service_and_the_app_points_at_it():
    mock = services()["mock-erp"]
    assert argv(mock["command"])[:4] == ["python", "manage.py", "run_mock_erp", "--host"]
    assert "8081" in argv(mock["command"])
    assert "8081/erp/v1/health" in " ".join(argv(mock["healthcheck"]["test"]))
    for name in ("web", "worker", "beat"):
        env = services()[name]["environment"]
        assert env["ERP_BASE_URL"] == "${ERP_BASE_URL:-http://mock-erp:8081}"
        assert env["ERP_SHARED_SECRET"].startswith("${ERP_SHARED_SECRET:?")


def test_every_app_process_shares_the_prometheus_folder():
    for name in ("web", "worker", "beat"):
        service = services()[name]
        assert service["environment"]["PROMETHEUS_MULTIPROC_DIR"] == "/app/var/prometheus"
        assert "prometheus-data:/app/var/prometheus" in service["volumes"]


def test_the_app_allowlists_only_the_mock_erp_for_outbound_calls():
    env = services()["web"]["environment"]
    assert env["ERP_ALLOWED_HOSTS"] == "${ERP_ALLOWED_HOSTS:-mock-erp:8081}"
    assert env["ALERT_WEBHOOK_ALLOWED_HOSTS"] == "${ALERT_WEBHOOK_ALLOWED_HOSTS:-}"


def test_prometheus_scrapes_metrics_with_the_internal_token():
    prometheus = services()["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    assert compose()["secrets"]["internal_token"] == {"environment": "INTERNAL_TOKEN"}
    assert "internal_token" in prometheus["secrets"]
    assert services()["web"]["environment"]["INTERNAL_TOKEN"] == "${INTERNAL_TOKEN:-}"
    mounted = {v.split(":")[1]: v.split(":")[0] for v in prometheus["volumes"] if v.startswith("./")}
    config = yaml.safe_load((ROOT / mounted["/etc/prometheus/prometheus.yml"]).read_text())
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics" and resolve("/metrics").url_name == "metrics"
    assert job["authorization"] == {"type": "Bearer", "credentials_file": "/run/secrets/internal_token"}
    assert job["static_configs"][0]["targets"] == ["web:8000"]
