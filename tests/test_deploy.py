"""deploy/: the Kubernetes fleet and the compose stack, rendered, validated against their
schemas, and checked against the agent itself.

- Kubernetes: each overlay is rendered by ``kustomize_lite`` (no kustomize on PyPI; the
  result is compared with ``kubectl kustomize`` where kubectl is installed). Every object
  is validated offline by kubernetes-validate (the schemas it bundles, strict: unknown
  fields are errors) for Kubernetes 1.28, the first with the pod-index label, and the
  newest it ships; the ServiceMonitor and the PrometheusRule against the Prometheus
  Operator's own CRD schemas (tests/vendor/prometheus-operator/), unknown fields refused.
- Compose: the Compose Specification's JSON schema (tests/vendor/compose-spec/); the
  Prometheus and Alertmanager configurations with promtool and amtool.
- Agreement: every flag, JOURNEYMAN_* variable, port and path is one the agent reads or
  serves; the generated files are what their commands (deploy/regenerate.sh) write now.

One file past the usual size: both halves share the agreement checks (``agent_accepts``,
``served_statuses``), and the subject is one folder.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache, partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import structlog
import yaml
from binaries import required_binary
from kustomize_lite import Obj, render
from prometheus_client import CollectorRegistry

from agent import cli
from agent.demo.__main__ import _parser as demo_parser
from agent.language.loader import load
from agent.schedule.reload import Reloader, fingerprint
from agent.schedule.sharding import COUNT_VAR, ORDINAL_VAR, Shard, parse_shard
from agent.serve.server import parse_listen, start_server
from exporters.status import StatusBoard

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted((K8S / "overlays").iterdir())
KUSTOMIZATIONS = [*OVERLAYS, K8S / "rules"]
COMPOSE = ROOT / "deploy" / "compose"
VENDOR = Path(__file__).resolve().parent / "vendor"
KUBERNETES_VERSIONS = ("1.28", kubernetes_validate.utils.latest_version())
CRDS = {
    "ServiceMonitor": "monitoring.coreos.com_servicemonitors.yaml",
    "PrometheusRule": "monitoring.coreos.com_prometheusrules.yaml",
}
MB = 1_000_000
REGENERATE = "sh deploy/regenerate.sh"


@cache
def rendered(folder: Path) -> list[Obj]:
    return render(folder)


def one(objects: list[Obj], kind: str) -> Obj:
    found = [obj for obj in objects if obj["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def named(objects: list[Obj], kind: str, name: str) -> Obj:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def agent_container(objects: list[Obj]) -> Obj:
    pod = one(objects, "StatefulSet")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return dict(container)


def environment(objects: list[Obj]) -> dict[str, str | None]:
    """The agent's environment: env (None where the kubelet fills it in) and envFrom."""
    container = agent_container(objects)
    named = {(o["kind"], o["metadata"]["name"]): o.get("data", {}) for o in objects}
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env |= named[("ConfigMap", source["configMapRef"]["name"])]
        else:
            data = named[("Secret", source["secretRef"]["name"])]
            env |= {k: base64.b64decode(v).decode() for k, v in data.items()}
    env |= {e["name"]: e.get("value") for e in container.get("env", [])}
    return env


def validate_crd(obj: Obj) -> None:
    """Validate a custom resource against its vendored CRD, refusing unknown fields."""
    crd = yaml.safe_load((VENDOR / "prometheus-operator" / CRDS[obj["kind"]]).read_text())
    (version,) = [v for v in crd["spec"]["versions"] if obj["apiVersion"].endswith(v["name"])]
    schema = _closed(version["schema"]["openAPIV3Schema"])
    jsonschema.Draft7Validator(schema).validate(obj)


def _closed(schema: Any) -> Any:
    """An OpenAPI schema where objects with listed properties accept no others (the API
    server would silently drop them: a typo must fail here instead)."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: _closed(value) for key, value in schema.items()}
    if "properties" in closed and "x-kubernetes-preserve-unknown-fields" not in closed:
        closed.setdefault("additionalProperties", False)
    return closed


def validate_object(obj: Obj) -> None:
    if obj["kind"] in CRDS:
        validate_crd(obj)
        return
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_every_object_validates_against_its_schema(folder: Path) -> None:
    """Each rendered object is valid for Kubernetes 1.28 and the newest schemas (strict), or
    for the Prometheus Operator's CRD."""
    objects = rendered(folder)
    assert objects
    for obj in objects:
        validate_object(obj)


def test_schema_validation_refuses_typos() -> None:
    """A misspelt field fails validation, in a built-in kind and in a custom resource."""
    objects = rendered(OVERLAYS[0])
    statefulset = json.loads(json.dumps(one(objects, "StatefulSet")))
    statefulset["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {
        "readOnlyRootFileSystem": True
    }
    with pytest.raises(kubernetes_validate.ValidationError, match="readOnlyRootFileSystem"):
        validate_object(statefulset)
    monitor = json.loads(json.dumps(one(objects, "ServiceMonitor")))
    monitor["spec"]["endpoints"][0]["intervall"] = "15s"
    with pytest.raises(jsonschema.ValidationError, match="intervall"):
        validate_object(monitor)


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_rendering_matches_kubectl_kustomize(folder: Path) -> None:
    """kustomize_lite renders exactly what kubectl's kustomize does (where kubectl exists)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: checked by kustomize_lite alone")
    done = subprocess.run(
        [kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    theirs = {_ident(obj): obj for obj in yaml.safe_load_all(done.stdout) if obj}
    assert {_ident(obj): obj for obj in rendered(folder)} == theirs


def _ident(obj: Obj) -> tuple[str, str]:
    return obj["kind"], obj["metadata"]["name"]


def test_each_location_runs_its_own_shards() -> None:
    """Each overlay is one location named like its folder; its pods' ordinals and
    JOURNEYMAN_SHARD_COUNT (= replicas) give shards 1/N .. N/N; one runs 2 replicas."""
    replicas = {}
    for overlay in OVERLAYS:
        objects = rendered(overlay)
        env = environment(objects)
        count = one(objects, "StatefulSet")["spec"]["replicas"]
        replicas[overlay.name] = count
        assert env["JOURNEYMAN_LOCATION"] == overlay.name
        assert env["JOURNEYMAN_SHARD"] == "auto"
        assert env[COUNT_VAR] == str(count), f"{overlay.name}: replicas and {COUNT_VAR} differ"
        ordinal = next(e for e in agent_container(objects)["env"] if e["name"] == ORDINAL_VAR)
        assert ordinal["valueFrom"]["fieldRef"]["fieldPath"] == (
            "metadata.labels['apps.kubernetes.io/pod-index']"
        )
        name = one(objects, "StatefulSet")["metadata"]["name"]
        for i in range(count):
            for environ in ({COUNT_VAR: str(count), ORDINAL_VAR: str(i)}, {COUNT_VAR: str(count)}):
                assert parse_shard("auto", environ, f"{name}-{i}") == Shard(i + 1, count)
    assert len(replicas) >= 3
    assert 2 in replicas.values()


class RecordingEnviron(dict[str, str]):
    """An environment that remembers which variables were looked up."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)


def agent_accepts(
    args: list[str], env: dict[str, str | None], monkeypatch: pytest.MonkeyPatch
) -> argparse.Namespace:
    """Parse ``journeyman ARGS`` as the agent would in ``env``: every JOURNEYMAN_* variable
    must be one the agent reads, and every value must parse. Returns the options."""
    ours = {k: v if v is not None else "0" for k, v in env.items() if k.startswith("JOURNEYMAN_")}
    recording = RecordingEnviron(ours)
    with monkeypatch.context() as patch:
        patch.setattr(os, "environ", recording)
        options = cli._parser().parse_args(args)
    shard_env = RecordingEnviron({COUNT_VAR: "1"})
    parse_shard("auto", shard_env, "journeyman-0")
    unknown = set(ours) - recording.read - shard_env.read
    assert not unknown, f"variables the agent never reads: {sorted(unknown)}"
    if options.shard:
        parse_shard(options.shard, ours, "journeyman-0")
    parse_listen(options.listen)
    return options


async def served_statuses(paths: set[str]) -> dict[str, int]:
    """The status the agent's real HTTP server answers for each path."""

    class NoMetrics:
        def render(self, openmetrics: bool = False) -> bytes:
            return b""

    server = await start_server(
        "127.0.0.1:0", metrics=NoMetrics(), board=StatusBoard(), ready=lambda: True
    )
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            return {path: (await client.get(path)).status_code for path in sorted(paths)}
    finally:
        await server.close()


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
async def test_manifests_use_only_what_the_agent_accepts(
    overlay: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Arguments, JOURNEYMAN_* variables, the port and the probe and scrape paths of the
    manifests are ones the agent accepts and serves; the named ports line up."""
    objects = rendered(overlay)
    container = agent_container(objects)
    options = agent_accepts(container["args"], environment(objects), monkeypatch)
    (port,) = container["ports"]
    assert parse_listen(options.listen)[1] == port["containerPort"]
    assert options.paths == [container["volumeMounts"][0]["mountPath"]]
    probes = [container["livenessProbe"]["httpGet"], container["readinessProbe"]["httpGet"]]
    assert [probe["port"] for probe in probes] == [port["name"]] * 2
    (endpoint,) = one(objects, "ServiceMonitor")["spec"]["endpoints"]
    paths = {probe["path"] for probe in probes} | {endpoint["path"]}
    assert await served_statuses(paths) == dict.fromkeys(sorted(paths), 200)
    (service_port,) = one(objects, "Service")["spec"]["ports"]
    assert service_port["targetPort"] == port["name"] == endpoint["port"] == service_port["name"]
    ingress = one(objects, "NetworkPolicy")["spec"]["ingress"]
    assert [p["port"] for rule in ingress for p in rule["ports"]] == [port["name"]]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_pods_are_locked_down(overlay: Path) -> None:
    """Non-root uid 10001, read-only root with emptyDirs for /tmp, artifacts and history, no
    privilege escalation, no capabilities, RuntimeDefault seccomp, no API token; in, only
    Prometheus; out, anywhere."""
    objects = rendered(overlay)
    pod = one(objects, "StatefulSet")["spec"]["template"]["spec"]
    container = agent_container(objects)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    assert "emptyDir" in mounts["/tmp"]
    env = environment(objects)
    for variable in ("JOURNEYMAN_ARTIFACTS_DIR", "JOURNEYMAN_DATA_DIR"):
        assert "emptyDir" in mounts[str(env[variable])], variable
    policy = one(objects, "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["egress"] == [{}]
    (source,) = policy["ingress"][0]["from"]
    assert source["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    assert one(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_the_browser_is_chromium_without_its_own_sandbox(overlay: Path) -> None:
    """JOURNEYMAN_BROWSER is the executable base/chromium-no-sandbox from a ConfigMap:
    Chromium's sandbox needs user namespaces, which RuntimeDefault and no capabilities
    forbid (docs/deploy.md); compose mounts the same script."""
    objects = rendered(overlay)
    pod = one(objects, "StatefulSet")["spec"]["template"]["spec"]
    browser = Path(str(environment(objects)["JOURNEYMAN_BROWSER"]))
    mounts = {m["mountPath"]: m["name"] for m in agent_container(objects)["volumeMounts"]}
    (volume,) = [v for v in pod["volumes"] if v["name"] == mounts[str(browser.parent)]]
    assert volume["configMap"]["defaultMode"] == 0o555
    config = named(objects, "ConfigMap", volume["configMap"]["name"])
    script = K8S / "base" / browser.name
    assert config["data"] == {browser.name: script.read_text()}
    assert script.read_text().splitlines()[-1] == 'exec /usr/bin/chromium --no-sandbox "$@"'
    agent = compose()["services"]["agent"]
    assert agent["environment"]["JOURNEYMAN_BROWSER"] == str(browser)
    assert f"../kubernetes/base/{browser.name}:{browser}:ro" in agent["volumes"]


def test_the_no_sandbox_script_starts_chromium() -> None:
    """The script is executable and hands its arguments to Debian's Chromium."""
    if not Path("/usr/bin/chromium").exists():
        if os.environ.get("CI") == "true":
            pytest.fail("/usr/bin/chromium is missing (Debian package chromium)")
        pytest.skip("/usr/bin/chromium is missing (Debian package chromium)")
    done = subprocess.run(
        [K8S / "base" / "chromium-no-sandbox", "--version"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Chromium ")


def test_resources_cover_the_benchmark_figures() -> None:
    """The requests hold what docs/deploy.md's capacity planning adds up: the agent (~60 MB
    PSS), driver + idle Chromium (392 MB) and up to 59 MB per browser run, about a core
    per browser run at the limit; the pod outlives the agent's grace period."""
    for overlay in OVERLAYS:
        objects = rendered(overlay)
        env = environment(objects)
        resources = agent_container(objects)["resources"]
        browsers = int(env["JOURNEYMAN_MAX_BROWSERS"] or "0")
        assert _bytes(resources["requests"]["memory"]) >= (60 + 392 + 59 * browsers) * MB
        assert float(resources["limits"]["cpu"]) >= browsers
        pod = one(objects, "StatefulSet")["spec"]["template"]["spec"]
        assert pod["terminationGracePeriodSeconds"] >= float(env["JOURNEYMAN_GRACE"] or 0) + 5


def _bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}
    for unit, factor in units.items():
        if quantity.endswith(unit):
            return int(quantity.removesuffix(unit)) * factor
    return int(quantity)


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_journeys_come_from_a_configmap_folder(overlay: Path) -> None:
    """The journeys ConfigMap keeps its name (edits are reloaded, not rolled out), is
    mounted as a whole folder (subPath mounts never update), holds the repository's
    journey files, and provides every ${env.X} they read."""
    objects = rendered(overlay)
    pod = one(objects, "StatefulSet")["spec"]["template"]["spec"]
    container = agent_container(objects)
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == container["args"][-1]]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert "subPath" not in mount
    assert mount["readOnly"] is True
    assert volume["configMap"]["name"] == "journeyman-journeys"  # no hash suffix
    journeys = named(objects, "ConfigMap", "journeyman-journeys")
    expected = {p.name: p.read_text() for p in sorted((ROOT / "journeys").glob("*.yaml"))}
    assert journeys["data"] == expected, f"run {REGENERATE}; list new files in the base"
    provided = set(environment(objects))
    for name in _env_names(ROOT / "journeys"):
        assert name in provided, f"{overlay.name}: no {name} for the journeys"


def _env_names(folder: Path) -> set[str]:
    """The ${env.X} names the journey files under ``folder`` read."""
    texts = (path.read_text() for path in folder.glob("*.yaml"))
    return {name for text in texts for name in re.findall(r"\$\{env\.(\w+)\}", text)}


def regenerate_commands(tmp_path: Path) -> Iterator[tuple[list[str], Path, Path]]:
    """The `journeyman` commands of deploy/regenerate.sh, each with the file it writes and
    written instead to a file of the same name under ``tmp_path``."""
    for line in (ROOT / "deploy" / "regenerate.sh").read_text().splitlines():
        if line.startswith("$JOURNEYMAN "):
            argv = shlex.split(line)[1:]
            output = argv.index("-o") + 1
            checked_in = ROOT / argv[output]
            argv[output] = str(tmp_path / checked_in.name)
            yield argv, checked_in, tmp_path / checked_in.name


def test_generated_files_are_what_their_commands_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PrometheusRule, the compose rules and the dashboard are byte for byte what
    `journeyman rules` and `journeyman dashboard` write now, and the base's journeys are
    the repository's (else: deploy/regenerate.sh)."""
    monkeypatch.chdir(ROOT)
    commands = list(regenerate_commands(tmp_path))
    assert {str(checked_in.relative_to(ROOT)) for _, checked_in, _ in commands} == {
        "deploy/kubernetes/rules/prometheusrule.yaml",
        "deploy/compose/prometheus/rules.yml",
        "deploy/compose/grafana/dashboards/journeyman.json",
    }
    for argv, checked_in, fresh in commands:
        assert cli.main(argv) == 0
        assert fresh.read_bytes() == checked_in.read_bytes(), f"{checked_in}: run {REGENERATE}"
    copy = {p.name: p.read_bytes() for p in (K8S / "base" / "journeys").iterdir()}
    assert copy == {p.name: p.read_bytes() for p in (ROOT / "journeys").glob("*.yaml")}, (
        f"deploy/kubernetes/base/journeys/ is not journeys/: run {REGENERATE}"
    )


JOURNEY = """\
journey: {id}
title: {title}
business_process: order-to-cash
steps: [{{name: home, http: {{get: "http://127.0.0.1:9/"}}}}]
"""


def kubelet_write(mount: Path, files: dict[str, str], version: int) -> None:
    """Update a ConfigMap volume as the kubelet's atomic writer does: a new hidden folder,
    the `..data` link swapped to it by a rename, a link per file into `..data`."""
    folder = mount / f"..2026_12_01_00_00_00.{version:09d}"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    old = (mount / "..data").resolve() if (mount / "..data").exists() else None
    (mount / "..data_tmp").symlink_to(folder.name)
    (mount / "..data_tmp").replace(mount / "..data")
    for name in files:
        if not (mount / name).is_symlink():
            (mount / name).symlink_to(f"..data/{name}")
    for link in mount.iterdir():
        if not link.name.startswith("..") and link.name not in files:
            link.unlink()
    if old is not None:
        shutil.rmtree(old)


def test_configmap_updates_are_reloaded(tmp_path: Path) -> None:
    """The reloader sees a kubelet swap of the ConfigMap's files: new, changed and removed
    journeys, each file read once (never through `..data` or the hidden folders)."""
    journey = JOURNEY
    applied: list[dict[str, str]] = []
    logger = structlog.wrap_logger(
        structlog.testing.CapturingLogger(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
    )
    reloader = Reloader(
        paths=[tmp_path],
        load=partial(load, environ={}),
        apply=lambda journeys, _: applied.append({j.journey: j.title or "" for j in journeys}),
        registry=CollectorRegistry(),
        logger=logger,
    )
    kubelet_write(tmp_path, {"a.yaml": journey.format(id="a", title="one")}, 1)
    reloader.reload()
    seen = fingerprint([tmp_path])
    kubelet_write(
        tmp_path,
        {
            "a.yaml": journey.format(id="a", title="two!"),
            "b.yaml": journey.format(id="b", title="x"),
        },
        2,
    )
    assert fingerprint([tmp_path]) != seen
    assert len(fingerprint([tmp_path])) == 2
    reloader.reload()
    kubelet_write(tmp_path, {"b.yaml": journey.format(id="b", title="x")}, 3)
    reloader.reload()
    assert applied == [{"a": "one"}, {"a": "two!", "b": "x"}, {"b": "x"}]


# --- compose ---------------------------------------------------------------------------


@cache
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    return document


def test_compose_file_follows_the_compose_specification() -> None:
    """compose.yaml is valid against the Compose Specification's schema, which refuses an
    unknown service key."""
    schema = json.loads((VENDOR / "compose-spec" / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    validator.validate(compose())
    broken = json.loads(json.dumps(compose()))
    broken["services"]["agent"]["enviroment"] = {}
    assert not validator.is_valid(broken)


async def test_compose_uses_only_what_the_agent_and_the_shop_accept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The agent's command, variables and port, the shop's flags, and Prometheus's scrape
    target and path are ones the agent and the demo shop accept and serve."""
    services = compose()["services"]
    agent = services["agent"]
    options = agent_accepts(agent["command"], agent["environment"], monkeypatch)
    port = parse_listen(options.listen)[1]
    assert [p.rsplit(":", 1)[1] for p in agent["ports"]] == [str(port)]
    for name in _env_names(ROOT / "journeys"):
        assert name in agent["environment"], f"compose: no {name} for the journeys"
    shop = services["shop"]
    assert shop["entrypoint"] == ["python3", "-m", "agent.demo"]
    shop_port = demo_parser().parse_args(shop["command"]).port
    assert urlsplit(agent["environment"]["JOURNEY_SHOP_URL"]).port == shop_port
    scrape = yaml.safe_load((COMPOSE / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in scrape["scrape_configs"] if j["job_name"] == "journeyman")
    assert job["static_configs"] == [{"targets": [f"agent:{port}"]}]
    assert await served_statuses({job["metrics_path"]}) == {job["metrics_path"]: 200}


def test_compose_mounts_and_provisioning_line_up() -> None:
    """Every bind mount's source exists, the build context has the Dockerfile, Grafana's
    data source is the compose Prometheus and its dashboards provider reads the mount."""
    services = compose()["services"]
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE / source).exists(), source
    assert (COMPOSE / services["agent"]["build"] / "Dockerfile").is_file()
    grafana = COMPOSE / "grafana" / "provisioning"
    (source,) = yaml.safe_load((grafana / "datasources" / "prometheus.yaml").read_text())[
        "datasources"
    ]
    assert source["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((grafana / "dashboards" / "journeyman.yaml").read_text())[
        "providers"
    ]
    mounts = dict(v.split(":")[:2][::-1] for v in services["grafana"]["volumes"])
    assert mounts[provider["options"]["path"]] == "./grafana/dashboards"


def test_compose_prometheus_and_alertmanager_configs_check() -> None:
    """promtool accepts prometheus.yml and the generated rules it loads; amtool accepts the
    Alertmanager configuration (where Debian's prometheus-alertmanager is installed)."""
    promtool = required_binary("promtool")
    config = COMPOSE / "prometheus" / "prometheus.yml"
    done = subprocess.run(
        [promtool, "check", "config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert yaml.safe_load(config.read_text())["rule_files"] == ["rules.yml"]
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool is missing (Debian package prometheus-alertmanager)")
    config = COMPOSE / "../alertmanager/alertmanager.yml"
    done = subprocess.run(
        [amtool, "check-config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
