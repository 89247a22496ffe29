"""Compile a pipeline spec to KFP IR YAML with the real kfp compiler, and read it back.

The schedule and experiment travel *inside* the compiled file: the last line of the pipeline
description (``pipelineInfo.description``, which kfp keeps verbatim and the KFP UI shows) is::

    crashed-metadata: {"experiment": "crashed", "pipeline": "crashed_pipeline", "schedule": "…"}

so a compiled file alone is enough to deploy it (:func:`read_compiled`).

The version name is the *content hash*: the first 12 hex digits of the sha256 of the canonical
form of the compiled documents (JSON, sorted keys, no whitespace), so it ignores YAML
formatting/comments but changes with anything that changes what runs (image, env, ops,
parameters, schedule, experiment, kfp version).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from crashed.errors import ConfigError, InputError
from crashed.orchestration_records import CompiledPipeline, kfp_cron
from crashed.pipeline.spec import PipelineSpec
from crashed.settings import Settings

__all__ = [
    "CompiledPipeline",
    "compile_pipeline",
    "content_hash",
    "kfp_cron",
    "load_documents",
    "read_compiled",
    "read_metadata",
]

METADATA_PREFIX = "crashed-metadata: "
HASH_LENGTH = 12
_MIN_SECRET_LENGTH = 6


def describe(spec: PipelineSpec) -> str:
    """The pipeline description carrying the machine-readable metadata line."""
    metadata = {"pipeline": spec.name, "schedule": spec.schedule, "experiment": spec.experiment}
    kfp_cron(spec.schedule)  # validate early
    return f"{spec.description}\n\n{METADATA_PREFIX}{json.dumps(metadata, sort_keys=True)}"


def compile_pipeline(spec: PipelineSpec, settings: Settings, output: Path) -> CompiledPipeline:
    """Compile ``spec`` to ``output`` (YAML, written atomically) and return what was compiled.

    Deterministic: the same spec and settings give byte-identical files. Raises
    :class:`ConfigError` if a secret setting's value would end up in the file.
    """
    from kfp import compiler

    from crashed.pipeline.dag import build_pipeline

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        pipeline = build_pipeline(spec, settings, description=describe(spec))
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{output.name}.", suffix=".yaml", dir=output.parent
        )
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            compiler.Compiler().compile(pipeline, package_path=str(tmp))
            text = tmp.read_text(encoding="utf-8")
            _refuse_secrets(text, settings)
            tmp.chmod(0o644)
            os.replace(tmp, output)
        finally:
            tmp.unlink(missing_ok=True)
    return _compiled(output, text)


def read_compiled(path: Path) -> CompiledPipeline:
    """Read a file written by :func:`compile_pipeline` (hash, schedule, experiment, …)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"cannot read compiled pipeline {path}: {error.strerror}") from None
    return _compiled(path, text)


def load_documents(text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pipeline spec and the platform spec (``{}`` if absent) of a compiled YAML text."""
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as error:
        raise InputError(f"not a compiled pipeline (invalid YAML): {error}") from None
    if not documents or not isinstance(documents[0], dict) or "root" not in documents[0]:
        raise InputError("not a compiled pipeline (no pipeline spec with a root DAG)")
    platform: dict[str, Any] = {}
    for doc in documents[1:]:
        if isinstance(doc, dict):
            platform.update(doc)
    return documents[0], platform


def content_hash(text: str) -> str:
    """sha256 (hex) of the canonical JSON form of the compiled documents."""
    documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    canonical = json.dumps(documents, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def read_metadata(pipeline_spec: dict[str, Any]) -> dict[str, Any]:
    """The ``crashed-metadata`` JSON from ``pipelineInfo.description`` (``{}`` if absent)."""
    description = pipeline_spec.get("pipelineInfo", {}).get("description") or ""
    for line in reversed(description.splitlines()):
        if line.startswith(METADATA_PREFIX):
            try:
                value = json.loads(line[len(METADATA_PREFIX) :])
            except json.JSONDecodeError:
                return {}
            return value if isinstance(value, dict) else {}
    return {}


def _compiled(path: Path, text: str) -> CompiledPipeline:
    pipeline_spec, _ = load_documents(text)
    metadata = read_metadata(pipeline_spec)
    if not metadata:
        raise InputError(f"{path}: no {METADATA_PREFIX.strip()} line; compile it with crashed")
    digest = content_hash(text)
    declared = pipeline_spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {})
    tasks = pipeline_spec.get("root", {}).get("dag", {}).get("tasks", {})
    return CompiledPipeline(
        path=path,
        name=str(metadata.get("pipeline", pipeline_spec["pipelineInfo"].get("name", ""))),
        version=digest[:HASH_LENGTH],
        sha256=digest,
        schedule=str(metadata.get("schedule", "")),
        experiment=str(metadata.get("experiment", "")),
        parameters={k: str(v.get("defaultValue", "")) for k, v in sorted(declared.items())},
        ops=tuple(sorted(tasks)),
        image=_image(pipeline_spec),
    )


def _image(pipeline_spec: dict[str, Any]) -> str:
    executors = pipeline_spec.get("deploymentSpec", {}).get("executors", {})
    images = sorted({str(e.get("container", {}).get("image", "")) for e in executors.values()})
    return images[0] if len(images) == 1 else ",".join(images)


def _refuse_secrets(text: str, settings: Settings) -> None:
    """Defence in depth: no secret setting's value may appear in the compiled file."""
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            secret = value.get_secret_value()
            if len(secret) >= _MIN_SECRET_LENGTH and secret in text:
                raise ConfigError(
                    f"refusing to write the pipeline: it would contain {name.upper()}"
                )
