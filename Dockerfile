# syntax=docker/dockerfile:1
# The Journeyman agent: Python 3.11, the journeyman package, Chromium for browser journeys.
#   docker build -t journeyman .
#   docker run -p 9464:9464 -v "$PWD/journeys:/journeys:ro" -e SHOP_PASSWORD journeyman
# See docs/deploy.md.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PLAYWRIGHT_BROWSERS_PATH=/opt/playwright \
    JOURNEYMAN_LISTEN=0.0.0.0:9464 \
    JOURNEYMAN_ARTIFACTS_DIR=/artifacts

WORKDIR /src
COPY pyproject.toml README.md ./
COPY agent ./agent
COPY exporters ./exporters
COPY generators ./generators

# The package, then Playwright's Chromium with the system libraries it needs (apt),
# in one layer so the apt lists and the source tree do not stay in the image.
RUN pip install --no-cache-dir . \
    && playwright install --with-deps chromium \
    && rm -rf /var/lib/apt/lists/* /src \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/journeyman journeyman \
    && mkdir -p /journeys /artifacts \
    && chown journeyman:journeyman /artifacts

WORKDIR /home/journeyman
USER 10001:10001

EXPOSE 9464
VOLUME ["/journeys"]

# Liveness: the agent's event loop answers /healthz on the metrics port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4)"]

ENTRYPOINT ["journeyman"]
CMD ["run", "/journeys"]
