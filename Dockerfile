# syntax=docker/dockerfile:1
# brincr-bot: multi-stage build. Stage 1 installs the locked dependencies, then the bot, into a
# virtualenv; stage 2 copies only that venv onto a slim base without pip or setuptools and runs
# as a non-root user. No Docker engine runs on our development machines: each step below was
# run by hand in a clean venv (see README, "Docker"), and tests/test_dockerfile.py reads it.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# pip itself, pinned with hashes (scripts/lock writes requirements-build.lock).
COPY requirements-build.lock ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m pip install --require-hashes --requirement requirements-build.lock
# The venv has no pip of its own: the build stage's pip installs into it (--python), so nothing
# of pip reaches the runtime image.
RUN python -m venv --without-pip /opt/venv
# Dependencies before the source: a code change reuses this layer instead of reinstalling them.
COPY requirements.lock ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m pip --python /opt/venv/bin/python install --require-hashes --only-binary=:all: \
      --requirement requirements.lock
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m pip --python /opt/venv/bin/python install --no-deps . \
 && /opt/venv/bin/python -c "import bot.cli, storage.migrate"

FROM python:3.11-slim-bookworm AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="brincr-bot" \
      org.opencontainers.image.description="Slack chat-ops bot for vendors integrating with the Brincr API through Visma Connect" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim-bookworm"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATABASE_URL=sqlite:////data/brincr-bot.db
# The base image's own pip, setuptools and wheel are not needed to run the bot: out they go.
RUN python -m pip uninstall --yes --disable-pip-version-check pip setuptools wheel \
 && groupadd --system --gid 10001 brincr \
 && useradd --system --uid 10001 --gid brincr --home-dir /data --shell /usr/sbin/nologin brincr \
 && mkdir -p /data && chown brincr:brincr /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /data
USER brincr
EXPOSE 3000
VOLUME ["/data"]
# /readyz is 200 when the database answers and the scheduler runs (python: slim has no curl).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os,sys,urllib.request; sys.exit(0 if urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT','3000')}/readyz\", timeout=4).status == 200 else 1)"]
# `serve` applies pending migrations before it starts listening. It runs as two processes:
# the listener (PID 1, which gets the SIGTERM) and its check engine, a child it stops itself
# and that talks to it over a Unix socket in a private directory under /tmp (writable here).
CMD ["brincr-bot", "serve"]
