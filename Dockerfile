# One image for every `spoc` command: worker, sink (`project`), notifier (`notify`), replay, report, sql.
#   docker build -t spoc-ledger .
#   docker run --rm spoc-ledger --version
# The runtime with PostgreSQL support, installed from requirements/image.txt (every package pinned with its
# hash); no compiler, no test tools, no embedded broker. Runs as an unprivileged user.
FROM python:3.13-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/spoc
COPY requirements/image.txt /tmp/image.txt
RUN /opt/spoc/bin/pip install --require-hashes --no-deps -r /tmp/image.txt
COPY pyproject.toml README.md /src/
COPY ledger /src/ledger
COPY processors /src/processors
COPY projections /src/projections
COPY reports /src/reports
COPY schemas /src/schemas
COPY simulator /src/simulator
COPY spoc /src/spoc
RUN /opt/spoc/bin/pip install --no-deps --no-build-isolation /src \
    && /opt/spoc/bin/pip uninstall --yes setuptools wheel

FROM python:3.13-slim-bookworm
COPY --from=build /opt/spoc /opt/spoc
# /data: where the compose file mounts the analysts' volume (a new volume takes this owner).
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/spoc --create-home spoc \
    && mkdir /data && chown spoc:spoc /data
USER 10001:10001
WORKDIR /var/lib/spoc
ENV PATH=/opt/spoc/bin:$PATH PYTHONUNBUFFERED=1
# The worker's /owners, /route, /metrics, /healthz and /readyz (with --web-host 0.0.0.0 --web-public).
EXPOSE 6066
ENTRYPOINT ["spoc"]
CMD ["--help"]
