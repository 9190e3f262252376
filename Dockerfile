# syntax=docker/dockerfile:1
# The Journeyman agent: Debian's Python 3.11 and Chromium, the journeyman package in a
# venv (/opt/journeyman), tini as init, run as uid 10001.
#   docker build -t journeyman .
#   docker run --rm --read-only --tmpfs /tmp -p 9464:9464 -v "$PWD/journeys:/journeys:ro" journeyman
# Without Docker (podman, a local Debian base): make image. See docs/deploy.md.
ARG BASE=debian:bookworm-slim

# --- build: the package and its dependencies into a venv (wheels only, no compilers) ---
FROM ${BASE} AS build
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/journeyman
# The CA bundle pip trusts, mounted into the build when the network needs one; an ARG,
# so the path reaches pip (as PIP_CERT) in this stage only, never the final image.
ARG PIP_CERT
COPY pyproject.toml /src/
# The dependencies first, in their own layer: a change to the sources (or the README)
# reinstalls only the package.
RUN python3 -c "import tomllib; print(*tomllib.load(open('/src/pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" > /tmp/requirements.txt \
    && /opt/journeyman/bin/pip install --no-cache-dir --disable-pip-version-check -r /tmp/requirements.txt
COPY README.md /src/
COPY agent /src/agent
COPY exporters /src/exporters
COPY generators /src/generators
# The package itself, then pip and setuptools out of the venv: the agent never installs.
RUN /opt/journeyman/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps /src \
    && /opt/journeyman/bin/pip uninstall --yes --disable-pip-version-check pip setuptools

# --- the image: the runtime packages, the venv, a user ---
FROM ${BASE}
# chromium for browser journeys; libatomic1 for Playwright's node driver (without it the
# driver dies at start); tini reaps Chromium's children and forwards signals. Left out:
# what headless Chromium never loads (it renders with its own SwiftShader): Mesa's GPU
# drivers and the LLVM they need, GTK's icon themes, Vulkan's debugging layer (~220 MB).
# hadolint ignore=DL3008
RUN printf 'path-exclude=%s\n' '/usr/lib/*/dri/*' '/usr/lib/*/libLLVM-*' '/usr/lib/*/libz3.so*' \
       '/usr/share/icons/*' '/usr/lib/chromium/libVkLayer_khronos_validation.so' \
       > /etc/dpkg/dpkg.cfg.d/journeyman-headless \
    && echo 'path-include=/usr/share/icons/*.theme' >> /etc/dpkg/dpkg.cfg.d/journeyman-headless \
    && apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates chromium libatomic1 python3 tini \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log \
    && useradd --no-log-init --system --uid 10001 --user-group --create-home \
       --home-dir /home/journeyman journeyman \
    && mkdir -p /journeys /artifacts /data \
    && chown 10001:10001 /artifacts /data
COPY --from=build /opt/journeyman /opt/journeyman

# JOURNEYMAN_GRACE: runs in flight get 7 s after SIGTERM, leaving 3 s (the browser's own
# close bound) within the engine's default 10 s stop timeout. JOURNEYMAN_DATA_DIR: the run
# history. XDG_CACHE_HOME: fontconfig's cache in /tmp, writable under a read-only root.
ENV PATH=/opt/journeyman/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    XDG_CACHE_HOME=/tmp/.cache \
    JOURNEYMAN_LISTEN=0.0.0.0:9464 \
    JOURNEYMAN_ARTIFACTS_DIR=/artifacts \
    JOURNEYMAN_DATA_DIR=/data \
    JOURNEYMAN_GRACE=7

WORKDIR /home/journeyman
USER 10001:10001
EXPOSE 9464
VOLUME ["/journeys", "/artifacts", "/data"]

# Liveness: the agent's event loop answers /healthz on the port of JOURNEYMAN_LISTEN.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:' + os.environ['JOURNEYMAN_LISTEN'].rpartition(':')[2] + '/healthz', timeout=4)"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["tini", "--", "journeyman"]
CMD ["run", "/journeys"]
