# syntax=docker/dockerfile:1
# Tezgah image: `docker build -t tezgah .`; compose.yaml runs web, worker, beat and migrate from it.
# The default command is the web server; worker and beat pass their own `celery -A config ...` command.

# ---------------------------------------------------------------- builder: a venv with the runtime dependencies
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# gcc for any dependency that has no wheel for this platform; it stays in this stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Dependencies first, read from pyproject.toml alone, so a code change does not reinstall them.
# Only [project].dependencies: the `dev` extra (pytest, ruff, ...) is never installed.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
COPY config ./config
COPY apps ./apps
RUN pip install --no-deps . && pip check

# ---------------------------------------------------------------- assets: npm packages pinned by package-lock.json
# Only the build needs Node.js; the runtime image gets the installed files (collected as static files below).
FROM node:20-slim AS assets
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --omit=dev

# ---------------------------------------------------------------- runtime
FROM python:3.11-slim AS runtime

# The code runs from the source tree in /app (settings find templates/, locale/ and static/ next to config/),
# so /app comes before the copy of the package that `pip install .` put in the venv.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    TEZGAH_VAR_DIR=/app/var \
    DJANGO_STATIC_ROOT=/app/staticfiles

RUN groupadd --system --gid 10001 tezgah \
    && useradd --system --uid 10001 --gid tezgah --create-home --home-dir /home/tezgah \
        --shell /usr/sbin/nologin tezgah

# issue 19: WeasyPrint (cost report and evidence PDFs) renders with Pango and Debian's DejaVu fonts (Turkish letters).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY . .
COPY --from=assets /src/node_modules ./node_modules

# Build-time only: translations and static files. The secret and DEBUG=false are set for these two
# commands alone (never ENV), and the settings' side effects (var/, the file broker folder) go to a
# throw-away folder. Static files live outside var/ and belong to root: the app user cannot change them.
RUN export DJANGO_SECRET_KEY=build-only-not-a-secret DJANGO_DEBUG=false TEZGAH_VAR_DIR=/tmp/build-var \
    && python manage.py compile_translations \
    && python manage.py collectstatic --noinput -v0 \
    && rm -rf /tmp/build-var \
    && mkdir -p /app/var/prometheus /app/var/audit-witness \
    && chown -R tezgah:tezgah /app/var

# 10001 is the tezgah user created above (numeric, so runAsNonRoot-style checks can verify it).
USER 10001:10001

EXPOSE 8000

# No curl in slim: python's urllib. A 503 (database unreachable) raises, so the probe exits non-zero.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=4)"]

CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
