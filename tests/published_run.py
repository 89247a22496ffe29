"""A real published run for verification tests: the six ops in process over the in-memory
fakes (:mod:`tests.fakes`), on a small synthetic year; built once per test process."""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.fakes import FakePorts

from crashed.core.crash_schema import normalise, read_crash_csv
from crashed.core.evaluation import Evaluation
from crashed.core.model_bundle import ModelBundle
from crashed.core.reference import Artifact, PromotedReference, artifact_items, parse_reference
from crashed.pipeline.ops import run_in_process
from crashed.pipeline.spec import CRASHED_PIPELINE
from crashed.ports import Lake
from crashed.settings import Settings
from crashed.synthetic import generate_crashes, write_csv

RUN_ID = "run-verify"
WINDOWS = {
    "train_start": "2018-01-01",
    "train_end": "2018-09-30",
    "validation_start": "2018-10-01",
    "validation_end": "2018-12-31",
}


@dataclass(frozen=True)
class PublishedRun:
    """What publish wrote for one run: the reference it proposed and every artifact's bytes."""

    reference: PromotedReference
    files: dict[str, bytes]
    """Artifact name (model, distributions, metrics, report) → bytes."""

    @property
    def evaluation(self) -> Evaluation:
        return Evaluation.model_validate_json(self.files["metrics"])

    def copy_to(self, lake: Lake) -> PromotedReference:
        """Put every artifact into ``lake`` at its URI; the reference, unchanged."""
        for name, artifact in artifact_items(self.reference):
            lake.put_bytes(artifact.uri, self.files[name])
        return self.reference

    def publish_as(
        self, lake: Lake, run_id: str, roc_auc: float | None = None, bucket: str = "crashed-lake"
    ) -> PromotedReference:
        """The same artifacts published as run ``run_id`` (under ``gs://<bucket>/models/crashed/
        <run_id>/``), optionally with another candidate ROC-AUC in metrics.json and the
        reference alike: a distinct, consistent promotion without training again (the model
        carries the run id as an extra booster attribute, so each run's sha256 differs)."""
        bundle = ModelBundle.from_bytes(self.files["model"])
        bundle.booster.set_attr(test_published_as=run_id)
        files = dict(self.files, model=bundle.to_bytes())
        metrics = self.reference.metrics
        if roc_auc is not None:
            candidate = self.evaluation.candidate
            overall = candidate.overall.model_copy(update={"roc_auc": roc_auc})
            evaluation = self.evaluation.model_copy(
                update={"candidate": candidate.model_copy(update={"overall": overall})}
            )
            files["metrics"] = evaluation.model_dump_json().encode()
            metrics = metrics.model_copy(update={"roc_auc": roc_auc})
        artifacts = {}
        for name, artifact in artifact_items(self.reference):
            file_name = artifact.uri.rsplit("/", 1)[1]
            info = lake.put_bytes(f"gs://{bucket}/models/crashed/{run_id}/{file_name}", files[name])
            artifacts[name] = Artifact(**info.as_dict())
        return self.reference.model_copy(
            update={
                "model": self.reference.model.model_copy(update={"run_id": run_id}),
                "artifacts": self.reference.artifacts.model_copy(update=artifacts),
                "metrics": metrics,
                "lineage": self.reference.lineage.model_copy(update={"run_id": run_id}),
            }
        )


@functools.cache
def published_run() -> PublishedRun:
    """Run the pipeline once (~10 s) with the default bucket, model name and no lake path."""
    previous = os.environ.get("CRASHED_GIT_COMMIT")
    os.environ["CRASHED_GIT_COMMIT"] = "0" * 40
    try:
        with tempfile.TemporaryDirectory(prefix="crashed-verify-") as tmp:
            home = Path(tmp)
            write_csv(generate_crashes(6_000, seed=11), home / "crashes.csv")
            frame = normalise(read_crash_csv(home / "crashes.csv"), source="synthetic")
            ports = FakePorts()
            ports.warehouse.load_frame("crashes_raw", frame)
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                crashed_home=home,
                crashed_model_name="crashed",
                lake_bucket="crashed-lake",
                lake_path="",
                train_max_rounds=30,
                gate_bootstrap_resamples=100,
                crashed_image="crashed:test",
            )
            outputs = run_in_process(
                CRASHED_PIPELINE, settings, ports, RUN_ID, "2019-01-01T00:00:00+00:00", WINDOWS
            )
    finally:
        if previous is None:
            os.environ.pop("CRASHED_GIT_COMMIT", None)
        else:
            os.environ["CRASHED_GIT_COMMIT"] = previous
    text = ports.lake.get_bytes(outputs["publish"].reference_uri).decode()
    reference = parse_reference(text, "published reference")
    assert isinstance(reference, PromotedReference)
    files = {name: ports.lake.get_bytes(a.uri) for name, a in artifact_items(reference)}
    return PublishedRun(reference, files)
