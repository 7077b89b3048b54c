# syntax=docker/dockerfile:1
# Marquee: one image for every role (api, worker, beat, migrate); the command picks the role.

# ---- build: Poetry installs the locked runtime dependencies, and Marquee itself, into a venv ----
FROM python:3.12-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    POETRY_NO_INTERACTION=1 \
    POETRY_VIRTUALENVS_CREATE=false \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# Poetry lives outside the venv, so it never reaches the final image.
RUN python -m pip install "poetry>=2.0,<3" && python -m venv /opt/venv

WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lock changes, not on a code or docs edit
# (installing without the root package reads no README).
COPY pyproject.toml poetry.lock ./
RUN poetry install --only main --no-root --no-directory

# Then the project, installed editable: the venv points at /app, where core/migrate.py expects
# alembic.ini and migrations/ beside the core package. Its metadata needs the README.
COPY README.md alembic.ini ./
COPY marquee ./marquee
COPY core ./core
COPY providers ./providers
COPY api ./api
COPY migrations ./migrations
RUN poetry install --only-root && python -m compileall -q /app

# ---- runtime: the venv and the source, nothing else ----
FROM python:3.12-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DATABASE_URL=sqlite:////data/marquee.db \
    MARQUEE_ARCHIVE_DIR=/data/archive

RUN groupadd --system --gid 10001 marquee \
    && useradd --system --uid 10001 --gid marquee --home-dir /app --no-create-home marquee \
    && mkdir -p /data/archive && chown -R marquee:marquee /data

# Owned by root: the process can read its code but not rewrite it.
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app

WORKDIR /app
USER marquee
# Only the SQLite default and retention's archive files (/data/archive) write to /data: mount a
# volume there to keep them (`-v marquee-data:/data`).
# No VOLUME instruction, which would give every role (api, worker, beat) an anonymous volume.
EXPOSE 8000

# Liveness of the API role; compose gives worker, beat and migrate their own checks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"]

# Alone (`docker run -p 8000:8000 marquee`), the image is `make run`: it migrates its SQLite file
# in /data, serves and schedules fetches in-process. Compose overrides the command per role.
CMD ["marquee", "run", "--migrate", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
