"""Just enough kustomize to render deploy/kubernetes/ in the tests, with no binary.

No kustomize ships on PyPI (the ``kustomize`` package there is an unrelated helper), so
this renders the subset the manifests use, the way kustomize 5 does: ``resources`` (YAML
files and kustomization folders), ``namespace``, ``labels`` (without selectors, with
``includeTemplates``), ``images``, ``replicas``, ``configMapGenerator`` and
``secretGenerator`` (``files``, ``literals``, ``envs``; ``behavior`` create, merge or
replace; ``options.disableNameSuffixHash``) with kustomize's own content-hash suffix, and
the references to generated names in pod templates. Any other field is an error, so the
manifests cannot drift outside what is checked here; ``tests/test_deploy.py`` compares
the result with ``kubectl kustomize`` wherever kubectl is installed.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["KustomizeError", "Obj", "content_hash", "render"]

Obj = dict[str, Any]

_FIELDS = {
    "apiVersion", "kind", "namespace", "resources", "images", "labels", "replicas",
    "configMapGenerator", "secretGenerator",
}  # fmt: skip
_GENERATOR_FIELDS = {"name", "behavior", "files", "literals", "envs", "options"}
_WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


class KustomizeError(ValueError):
    """A kustomization this renderer does not support, or one kustomize would reject."""


@dataclass
class _Item:
    obj: Obj
    hashed: bool = False  # a generated ConfigMap or Secret whose name takes a hash suffix


def render(folder: Path) -> list[Obj]:
    """The objects ``kustomize build folder`` prints (in no particular order)."""
    items = _build(folder.resolve())
    renamed: dict[tuple[str, str], str] = {}
    for item in items:
        if item.hashed:
            meta = item.obj["metadata"]
            new = f"{meta['name']}-{content_hash(item.obj)}"
            renamed[(item.obj["kind"], meta["name"])] = new
            meta["name"] = new
    objects = [item.obj for item in items]
    for obj in objects:
        for pod in _pod_specs(obj):
            _rename_references(pod, renamed)
    return objects


def content_hash(obj: Obj) -> str:
    """kustomize's suffix: 10 hex digits of a sha256, some letters swapped. kustomize
    looks the name up as one field called "metadata/name", finds none, and hashes ""."""
    encoded: Obj = {"kind": obj["kind"], "name": "", "data": obj.get("data", {})}
    if obj["kind"] == "Secret":
        encoded["type"] = obj.get("type", "")
    text = json.dumps(encoded, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escape in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):  # Go's json
        text = text.replace(char, escape)
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def _build(folder: Path) -> list[_Item]:
    path = folder / "kustomization.yaml"
    if not path.is_file():
        raise KustomizeError(f"{folder}: no kustomization.yaml")
    spec = yaml.safe_load(path.read_text()) or {}
    unknown = set(spec) - _FIELDS
    if unknown:
        raise KustomizeError(f"{path}: fields this renderer does not support: {sorted(unknown)}")
    items: list[_Item] = []
    for entry in spec.get("resources", []):
        target = (folder / entry).resolve()
        if target.is_dir():
            items += _build(target)
        else:
            _inside(folder, target, path)
            items += [_Item(doc) for doc in yaml.safe_load_all(target.read_text()) if doc]
    for kind, key in (("ConfigMap", "configMapGenerator"), ("Secret", "secretGenerator")):
        for generator in spec.get(key, []):
            _generate(folder, path, kind, generator, items)
    for item in items:
        _transform(item.obj, spec, path)
    return items


def _generate(folder: Path, path: Path, kind: str, spec: Obj, items: list[_Item]) -> None:
    unknown = set(spec) - _GENERATOR_FIELDS
    if unknown or set(spec.get("options", {})) - {"disableNameSuffixHash"}:
        raise KustomizeError(f"{path}: generator {spec.get('name')}: unsupported {spec}")
    data: dict[str, str] = {}
    for entry in spec.get("files", []):
        key, _, source = entry.rpartition("=") if "=" in entry else ("", "", entry)
        file = (folder / source).resolve()
        _inside(folder, file, path)
        data[key or file.name] = file.read_text()
    for line in spec.get("literals", []):
        key, _, value = line.partition("=")
        data[key] = value
    for source in spec.get("envs", []):
        file = (folder / source).resolve()
        _inside(folder, file, path)
        for line in file.read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                data[key.strip()] = value
    if kind == "Secret":
        data = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    hashed = not spec.get("options", {}).get("disableNameSuffixHash", False)
    name, behavior = spec["name"], spec.get("behavior", "create")
    existing = [i for i in items if i.obj["kind"] == kind and i.obj["metadata"]["name"] == name]
    if behavior == "create":
        if existing:
            raise KustomizeError(f"{path}: {kind} {name} exists already (use behavior: merge)")
        obj: Obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name}, "data": data}
        if kind == "Secret":
            obj["type"] = "Opaque"
        items.append(_Item(obj, hashed))
    elif behavior in ("merge", "replace") and len(existing) == 1:
        target = existing[0].obj
        target["data"] = (target.get("data", {}) if behavior == "merge" else {}) | data
    else:
        raise KustomizeError(f"{path}: {kind} {name}: cannot {behavior} ({len(existing)} found)")


def _transform(obj: Obj, spec: Obj, path: Path) -> None:
    """This kustomization's transformers on one object: namespace, labels, images, replicas."""
    meta = obj.setdefault("metadata", {})
    if "namespace" in spec:
        meta["namespace"] = spec["namespace"]
    for entry in spec.get("labels", []):
        if entry.get("includeSelectors") or set(entry) - {"pairs", "includeTemplates"}:
            raise KustomizeError(f"{path}: labels: only pairs and includeTemplates: {entry}")
        meta.setdefault("labels", {}).update(entry["pairs"])
        if entry.get("includeTemplates") and obj["kind"] in _WORKLOADS:
            template = obj["spec"]["template"].setdefault("metadata", {})
            template.setdefault("labels", {}).update(entry["pairs"])
    for pod in _pod_specs(obj):
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            container["image"] = _image(container["image"], spec.get("images", []))
    for entry in spec.get("replicas", []):
        if obj["kind"] in _WORKLOADS and meta["name"] == entry["name"]:
            obj["spec"]["replicas"] = entry["count"]


def _image(image: str, rules: list[Obj]) -> str:
    """``name[:tag][@digest]`` with the first rule for ``name`` applied (newName, newTag)."""
    name, at, digest = image.partition("@")
    head, colon, tag = name.rpartition(":")
    if colon and "/" not in tag:
        name = head
    old_tag = f":{tag}" if colon and "/" not in tag else ""
    for rule in rules:
        if rule["name"] == name:
            new_tag = f":{rule['newTag']}" if "newTag" in rule else old_tag
            return f"{rule.get('newName', name)}{new_tag}{at}{digest}"
    return image


def _pod_specs(obj: Obj) -> Iterator[Obj]:
    if obj.get("kind") in _WORKLOADS:
        yield obj["spec"]["template"]["spec"]


def _rename_references(pod: Obj, renamed: dict[tuple[str, str], str]) -> None:
    """Point the pod's ConfigMap and Secret references at the hash-suffixed names."""

    def rename(ref: Obj | None, kind: str, key: str = "name") -> None:
        if ref is not None and (kind, ref.get(key)) in renamed:
            ref[key] = renamed[(kind, ref[key])]

    for volume in pod.get("volumes", []):
        rename(volume.get("configMap"), "ConfigMap")
        rename(volume.get("secret"), "Secret", "secretName")
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        for source in container.get("envFrom", []):
            rename(source.get("configMapRef"), "ConfigMap")
            rename(source.get("secretRef"), "Secret")
        for env in container.get("env", []):
            value_from = env.get("valueFrom", {})
            rename(value_from.get("configMapKeyRef"), "ConfigMap")
            rename(value_from.get("secretKeyRef"), "Secret")


def _inside(folder: Path, file: Path, path: Path) -> None:
    """kustomize's load restrictor: a file must be in or below the kustomization's folder."""
    if not file.is_relative_to(folder):
        raise KustomizeError(f"{path}: {file} is not in or below {folder}")
