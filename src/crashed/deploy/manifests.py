"""Render the inference service's Kubernetes objects from the kustomize base in ``k8s/``.

One source of truth: the YAML under ``k8s/`` (shipped in the wheel as ``crashed/deploy_assets``,
symlinked files) is both what ``kubectl kustomize k8s/`` renders and what :func:`render` reads.
:func:`render` loads the base's ``resources``, builds the ConfigMaps of its
``configMapGenerator`` (the real ``model-reference.json`` replaces the placeholder; the
settings env is merged into ``inference.env``), and sets the namespace and the image.

Each generated ConfigMap is named ``<name>-<first 10 hex of sha256 of its data>`` and the
Deployment's references are patched to that name: a new reference (or new settings) means a
new ConfigMap and a new pod template, so pods roll; the same content gives the same name, so
nothing changes. kustomize names them with a different hash of its own, which we do not
reproduce; a test checks that both render the same objects apart from that suffix.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

from crashed.core.names import validate_namespace
from crashed.errors import ConfigError, InputError

Manifest = dict[str, Any]

DEPLOYMENT = "crashed-inference"
CONTAINER = "inference"
IMAGE_NAME = "crashed"
REFERENCE_CONFIGMAP = "crashed-model-reference"
REFERENCE_VOLUME = "model-reference"
REFERENCE_KEY = "model-reference.json"
ENV_CONFIGMAP = "crashed-inference-env"

# What the base may use; anything else is refused so the base cannot silently grow a
# kustomize feature this renderer would ignore.
_KUSTOMIZATION_KEYS = {"apiVersion", "kind", "namespace", "resources", "images"}
_GENERATOR_KEYS = {"name", "files", "envs", "options"}
# Apply order: what the pods need (identity, ConfigMaps) before the Deployment.
_KIND_ORDER = [
    "ServiceAccount",
    "ConfigMap",
    "Service",
    "Deployment",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
]
_ENV_KEY_RE = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


@dataclass(frozen=True)
class Base:
    """A kustomization and the text of every file it names (relative name → text)."""

    kustomization: Mapping[str, Any]
    files: Mapping[str, str] = field(repr=False)
    source: str = "crashed/deploy_assets"


@dataclass(frozen=True)
class ImageRef:
    """An image reference: ``name[:tag][@digest]``."""

    name: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, image: str) -> ImageRef:
        image = image.strip()
        if not image or any(c.isspace() for c in image):
            raise InputError(f"invalid image reference {image!r}")
        name, _, digest = image.partition("@")
        tag = None
        if ":" in name.rsplit("/", 1)[-1]:
            name, _, tag = name.rpartition(":")
        if not name or tag == "" or (digest == "" and "@" in image):
            raise InputError(f"invalid image reference {image!r}")
        return cls(name, tag, digest or None)

    def __str__(self) -> str:
        if self.digest:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tag}" if self.tag else self.name


def image_for_commit(image: str, commit_sha: str | None) -> str:
    """``image`` tagged with ``commit_sha`` when it has neither tag nor digest (CI builds)."""
    ref = ImageRef.parse(image)
    if commit_sha and ref.tag is None and ref.digest is None:
        return str(ImageRef(ref.name, commit_sha))
    return str(ref)


def assets() -> Traversable:
    """The packaged kustomize base (``crashed/deploy_assets``: the files of ``k8s/``)."""
    return resources.files("crashed") / "deploy_assets"


def load_base(root: Traversable | Path | None = None) -> Base:
    """Read ``kustomization.yaml`` and every file it names from ``root`` (default: packaged)."""
    root = assets() if root is None else root
    try:
        kustomization = yaml.safe_load((root / "kustomization.yaml").read_text("utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{root}: no kustomization.yaml (is the package installed whole?)"
        ) from None
    if not isinstance(kustomization, dict):
        raise ConfigError(f"{root}/kustomization.yaml: expected a mapping")
    unknown = set(kustomization) - _KUSTOMIZATION_KEYS - {"configMapGenerator"}
    generators = kustomization.get("configMapGenerator", [])
    for generator in generators:
        unknown |= {f"configMapGenerator.{k}" for k in set(generator) - _GENERATOR_KEYS}
        unknown |= {f"options.{k}" for k in set(generator.get("options") or {}) - {"labels"}}
    if unknown:
        raise ConfigError(
            f"{root}/kustomization.yaml uses {sorted(unknown)}, which crashed.deploy.manifests "
            "does not render; extend it (and its test)"
        )
    names = list(kustomization.get("resources", []))
    for generator in generators:
        names += [_file_source(item)[1] for item in generator.get("files", [])]
        names += list(generator.get("envs", []))
    files = {}
    for name in names:
        if "/" in name or name.startswith("."):
            raise ConfigError(f"{root}: {name!r} must be a file beside kustomization.yaml")
        try:
            files[name] = (root / name).read_text("utf-8")
        except FileNotFoundError:
            raise ConfigError(
                f"{root}: kustomization.yaml names {name!r}, which is missing"
            ) from None
    return Base(kustomization, files, str(root))


def render(
    image: str,
    namespace: str,
    reference_text: str,
    env: Mapping[str, str] | None = None,
    base: Base | None = None,
) -> list[Manifest]:
    """The objects to apply, in apply order (ServiceAccount, ConfigMaps, Service, Deployment…).

    ``reference_text`` becomes the whole ``model-reference.json`` ConfigMap; ``env`` entries
    are merged into the ``crashed-inference-env`` ConfigMap. Both are named by their content's
    hash (:func:`content_name`) and the Deployment refers to those names.
    """
    base = base or load_base()
    validate_namespace(namespace)
    image = str(ImageRef.parse(image))
    objects: list[Manifest] = []
    for name in base.kustomization.get("resources", []):
        objects += [doc for doc in yaml.safe_load_all(base.files[name]) if doc]

    generators = {g["name"]: g for g in base.kustomization.get("configMapGenerator", [])}
    for required in (REFERENCE_CONFIGMAP, ENV_CONFIGMAP):
        if required not in generators:
            raise ConfigError(f"{base.source}: configMapGenerator {required!r} is missing")
    renamed: dict[str, str] = {}
    for name, generator in generators.items():
        data = _generator_data(generator, base.files)
        if name == REFERENCE_CONFIGMAP:
            data = {REFERENCE_KEY: reference_text}
        elif name == ENV_CONFIGMAP:
            data |= _check_env(env or {})
        renamed[name] = content_name(name, data)
        metadata: dict[str, Any] = {"name": renamed[name]}
        if labels := (generator.get("options") or {}).get("labels"):
            metadata["labels"] = dict(labels)
        objects.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}
        )

    for obj in objects:
        obj.setdefault("metadata", {})["namespace"] = namespace
        if obj.get("kind") == "Deployment":
            _patch_pod_spec(obj["spec"]["template"]["spec"], image, renamed)
    _check_deployment(objects, renamed)
    return sorted(objects, key=_order)


def content_name(name: str, data: Mapping[str, str]) -> str:
    """``<name>-<first 10 hex of sha256>`` of ``data`` as canonical JSON (sorted keys, UTF-8)."""
    canonical = json.dumps(dict(data), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{name}-{hashlib.sha256(canonical.encode('utf-8')).hexdigest()[:10]}"


def find(objects: Iterable[Manifest], kind: str, name: str | None = None) -> Manifest:
    """The first object of ``kind`` (and ``name``, if given)."""
    for obj in objects:
        if obj.get("kind") == kind and (name is None or obj["metadata"]["name"] == name):
            return obj
    raise KeyError(f"no {kind} {name or ''} in the manifests")


def to_yaml(objects: Iterable[Manifest]) -> str:
    """A multi-document YAML stream (keys sorted, multi-line strings as literal blocks)."""
    return yaml.dump_all(
        list(objects),
        Dumper=_Dumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )


# -- helpers -------------------------------------------------------------------------------------


def _file_source(item: str) -> tuple[str, str]:
    key, sep, path = item.partition("=")
    return (key, path) if sep else (item.rsplit("/", 1)[-1], item)


def _generator_data(generator: Mapping[str, Any], files: Mapping[str, str]) -> dict[str, str]:
    data: dict[str, str] = {}
    for env_file in generator.get("envs", []):
        for number, line in enumerate(files[env_file].splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep or not _ENV_KEY_RE.match(key):
                raise ConfigError(f"{env_file}:{number}: expected KEY=VALUE")
            data[key] = value
    for item in generator.get("files", []):
        key, path = _file_source(item)
        data[key] = files[path]
    return data


def _check_env(env: Mapping[str, str]) -> dict[str, str]:
    for key, value in env.items():
        if not _ENV_KEY_RE.match(key) or not isinstance(value, str):
            raise InputError(f"invalid environment entry {key!r}")
    return dict(env)


def _patch_pod_spec(pod_spec: dict[str, Any], image: str, renamed: Mapping[str, str]) -> None:
    """Set the ``crashed`` containers' image and point ConfigMap references at ``renamed``."""

    def rename(holder: dict[str, Any] | None) -> None:
        if holder and holder.get("name") in renamed:
            holder["name"] = renamed[holder["name"]]

    for volume in pod_spec.get("volumes", []):
        rename(volume.get("configMap"))
    for container in pod_spec.get("containers", []) + pod_spec.get("initContainers", []):
        if ImageRef.parse(container["image"]).name == IMAGE_NAME:
            container["image"] = image
        for source in container.get("envFrom", []):
            rename(source.get("configMapRef"))
        for variable in container.get("env", []):
            rename((variable.get("valueFrom") or {}).get("configMapKeyRef"))


def _check_deployment(objects: list[Manifest], renamed: Mapping[str, str]) -> None:
    try:
        deployment = find(objects, "Deployment", DEPLOYMENT)
    except KeyError:
        raise ConfigError(f"the kustomize base has no Deployment {DEPLOYMENT!r}") from None
    spec = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: (v.get("configMap") or {}).get("name") for v in spec.get("volumes", [])}
    if volumes.get(REFERENCE_VOLUME) != renamed[REFERENCE_CONFIGMAP]:
        raise ConfigError(
            f"Deployment {DEPLOYMENT!r}: volume {REFERENCE_VOLUME!r} must mount "
            f"{REFERENCE_CONFIGMAP!r}"
        )
    if not any(c.get("name") == CONTAINER for c in spec.get("containers", [])):
        raise ConfigError(f"Deployment {DEPLOYMENT!r} has no container {CONTAINER!r}")


def _order(obj: Manifest) -> tuple[int, str]:
    kind = obj.get("kind", "")
    rank = _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)
    return rank, obj["metadata"]["name"]


class _Dumper(yaml.SafeDumper):
    """Safe dumper writing multi-line strings as ``|`` blocks and indenting lists."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)
