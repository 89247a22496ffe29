"""Render the inference service's Kubernetes objects from the kustomize base in ``k8s/``.

One source of truth: the YAML under ``k8s/`` (shipped in the wheel as ``crashed/deploy_assets``,
symlinked files) is both what ``kubectl kustomize k8s/`` renders and what this module reads.
:func:`render` applies the small subset of kustomize the base uses — ``namespace``,
``images``, ``configMapGenerator`` (``files``/``envs``/``literals``, ``options.labels``, the
content-hash name suffix and the name references to it) — plus the deploy-time overlay: the
image, the namespace, the real ``model-reference.json`` (``behavior: replace``) and the settings
env (``behavior: merge``). Anything else in the kustomization is refused, so the base cannot
silently grow a feature this renderer would ignore; a test compares the result with
``kubectl kustomize`` on the equivalent overlay.
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

from crashed.errors import ConfigError, InputError

Manifest = dict[str, Any]

DEPLOYMENT = "crashed-inference"
CONTAINER = "inference"
IMAGE_NAME = "crashed"
REFERENCE_CONFIGMAP = "crashed-model-reference"
REFERENCE_KEY = "model-reference.json"
ENV_CONFIGMAP = "crashed-inference-env"

_KUSTOMIZATION_KEYS = {
    "apiVersion",
    "kind",
    "namespace",
    "resources",
    "images",
    "configMapGenerator",
}
_GENERATOR_KEYS = {"name", "files", "envs", "literals", "options"}
_OPTION_KEYS = {"labels", "annotations"}
# kustomize's "legacy" output order (the kinds the base can contain), then by name.
_KIND_ORDER = [
    "Namespace",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ConfigMap",
    "Secret",
    "Service",
    "Deployment",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
]
_NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_ENV_KEY_RE = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


@dataclass(frozen=True)
class Base:
    """A kustomization and the text of every file it names (relative name → text)."""

    kustomization: Mapping[str, Any]
    files: Mapping[str, str] = field(repr=False)
    source: str = "crashed/deploy_assets"


@dataclass(frozen=True)
class ImageRef:
    """An image reference split like kustomize's ``images`` transformer does."""

    name: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, image: str) -> ImageRef:
        image = image.strip()
        if not image or any(c.isspace() for c in image):
            raise InputError(f"invalid image reference {image!r}")
        name, _, digest = image.partition("@")
        last = name.rsplit("/", 1)[-1]
        tag = None
        if ":" in last:
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
    _check_supported(kustomization)
    names = list(kustomization.get("resources", []))
    for generator in kustomization.get("configMapGenerator", []):
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
    are merged into the ``crashed-inference-env`` ConfigMap. Both ConfigMaps get kustomize's
    content-hash suffix, and the Deployment refers to the suffixed names.
    """
    base = base or load_base()
    if not _NAMESPACE_RE.match(namespace):
        raise InputError(f"invalid namespace {namespace!r} (lower-case DNS label expected)")
    kustomization = base.kustomization
    objects: list[Manifest] = []
    for name in kustomization.get("resources", []):
        objects += [doc for doc in yaml.safe_load_all(base.files[name]) if doc]

    generators = {g["name"]: g for g in kustomization.get("configMapGenerator", [])}
    for required in (REFERENCE_CONFIGMAP, ENV_CONFIGMAP):
        if required not in generators:
            raise ConfigError(f"{base.source}: configMapGenerator {required!r} is missing")
    renamed: dict[str, str] = {}
    for generator in generators.values():
        data = _generator_data(generator, base.files)
        if generator["name"] == REFERENCE_CONFIGMAP:
            data = {REFERENCE_KEY: reference_text}
        elif generator["name"] == ENV_CONFIGMAP and env:
            data = {**data, **_check_env(env)}
        config_map = _config_map(generator, data)
        renamed[generator["name"]] = config_map["metadata"]["name"]
        objects.append(config_map)

    images = {item["name"]: item for item in kustomization.get("images", [])}
    images[IMAGE_NAME] = _image_entry(ImageRef.parse(image))
    for obj in objects:
        obj.setdefault("metadata", {})["namespace"] = namespace
        for pod_spec in _pod_specs(obj):
            _set_images(pod_spec, images)
            _rename_config_maps(pod_spec, renamed)

    _check_deployment(objects, renamed)
    return sorted(objects, key=_order)


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


def configmap_hash(data: Mapping[str, str]) -> str:
    """kustomize's ConfigMap name suffix for ``data``.

    kustomize v5 hashes ``{"data", "kind", "name"}`` as Go's ``json.Marshal`` writes it;
    its lookup of ``metadata/name`` finds nothing, so ``name`` is always empty. The sha256 hex
    digest's first ten characters are mapped 0→g 1→h 3→k a→m e→t (no vowels, no look-alikes).
    """
    encoded = json.dumps(
        {"data": dict(data), "kind": "ConfigMap", "name": ""},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        encoded = encoded.replace(char, escaped)
    digest = hashlib.sha256(encoded.encode("utf-8")).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


# -- helpers -------------------------------------------------------------------------------------


def _check_supported(kustomization: Mapping[str, Any]) -> None:
    unknown = set(kustomization) - _KUSTOMIZATION_KEYS
    if unknown:
        raise ConfigError(
            f"kustomization.yaml uses {sorted(unknown)}, which "
            "crashed.deploy.manifests does not render; extend it (and its test)"
        )
    for generator in kustomization.get("configMapGenerator", []):
        extra = set(generator) - _GENERATOR_KEYS
        extra |= {f"options.{k}" for k in set(generator.get("options") or {}) - _OPTION_KEYS}
        if extra:
            raise ConfigError(
                f"configMapGenerator {generator.get('name')!r}: unsupported {sorted(extra)}"
            )
    for image in kustomization.get("images", []):
        if set(image) - {"name", "newName", "newTag", "digest"}:
            raise ConfigError(f"images entry {image!r}: unsupported fields")


def _file_source(item: str) -> tuple[str, str]:
    key, sep, path = item.partition("=")
    return (key, path) if sep else (item.rsplit("/", 1)[-1], item)


def _generator_data(generator: Mapping[str, Any], files: Mapping[str, str]) -> dict[str, str]:
    data: dict[str, str] = {}
    for env_file in generator.get("envs", []):
        data.update(_parse_env(files[env_file], env_file))
    for literal in generator.get("literals", []):
        key, sep, value = literal.partition("=")
        if not sep:
            raise ConfigError(f"literal {literal!r} is not KEY=VALUE")
        if len(value) > 1 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]  # kustomize drops one pair of surrounding quotes
        data[key] = value
    for item in generator.get("files", []):
        key, path = _file_source(item)
        data[key] = files[path]
    return data


def _parse_env(text: str, source: str) -> dict[str, str]:
    data = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not _ENV_KEY_RE.match(key):
            raise ConfigError(f"{source}:{number}: expected KEY=VALUE")
        data[key] = value
    return data


def _check_env(env: Mapping[str, str]) -> dict[str, str]:
    for key, value in env.items():
        if not _ENV_KEY_RE.match(key) or not isinstance(value, str):
            raise InputError(f"invalid environment entry {key!r}")
    return dict(env)


def _config_map(generator: Mapping[str, Any], data: dict[str, str]) -> Manifest:
    options = generator.get("options") or {}
    metadata: dict[str, Any] = {"name": f"{generator['name']}-{configmap_hash(data)}"}
    if options.get("labels"):
        metadata["labels"] = dict(options["labels"])
    if options.get("annotations"):
        metadata["annotations"] = dict(options["annotations"])
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def _image_entry(ref: ImageRef) -> dict[str, str]:
    entry = {"name": IMAGE_NAME, "newName": ref.name}
    if ref.digest:
        entry["digest"] = ref.digest
    elif ref.tag:
        entry["newTag"] = ref.tag
    return entry


def _pod_specs(obj: Manifest) -> list[dict[str, Any]]:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Pod":
        return [spec]
    template = spec.get("template") or (spec.get("jobTemplate", {}).get("spec", {}).get("template"))
    return [template["spec"]] if template and "spec" in template else []


def _set_images(pod_spec: dict[str, Any], images: Mapping[str, Mapping[str, str]]) -> None:
    for container in pod_spec.get("containers", []) + pod_spec.get("initContainers", []):
        current = ImageRef.parse(container["image"])
        entry = images.get(current.name)
        if entry is None:
            continue
        name = entry.get("newName", current.name)
        if entry.get("digest"):
            container["image"] = f"{name}@{entry['digest']}"
        else:
            tag = entry.get("newTag", current.tag)
            container["image"] = f"{name}:{tag}" if tag else name


def _rename_config_maps(pod_spec: dict[str, Any], renamed: Mapping[str, str]) -> None:
    def rename(holder: dict[str, Any] | None) -> None:
        if holder and holder.get("name") in renamed:
            holder["name"] = renamed[holder["name"]]

    for volume in pod_spec.get("volumes", []):
        rename(volume.get("configMap"))
        for source in (volume.get("projected") or {}).get("sources", []):
            rename(source.get("configMap"))
    for container in pod_spec.get("containers", []) + pod_spec.get("initContainers", []):
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
    volumes = [v.get("configMap", {}).get("name") for v in spec.get("volumes", [])]
    if renamed[REFERENCE_CONFIGMAP] not in volumes:
        raise ConfigError(f"Deployment {DEPLOYMENT!r} does not mount {REFERENCE_CONFIGMAP!r}")
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
