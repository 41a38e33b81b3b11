# syntax=docker/dockerfile:1
# brincr-bot: multi-stage build. Stage 1 builds a wheel-installed virtualenv; stage 2 copies
# only that venv onto a slim base and runs as a non-root user. No Docker engine runs on our
# development machines: each step below was run by hand in a clean venv (see README).

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
RUN /opt/venv/bin/pip install --upgrade pip \
 && /opt/venv/bin/pip install .

FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATABASE_URL=sqlite:////data/brincr-bot.db
RUN groupadd --system --gid 10001 brincr \
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
# `serve` applies pending migrations before it starts listening.
CMD ["brincr-bot", "serve"]
