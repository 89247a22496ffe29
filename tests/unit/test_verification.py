"""verify_contents: a reference verifies only when every artifact is where the configuration
says, matches its checksums and is what it claims to be. Real artifacts from the pipeline run
in process (tests/published_run.py); the lake is the in-memory fake of the port."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from tests.fakes import FakeLake
from tests.published_run import PublishedRun, published_run

from crashed.core.reference import Artifact, PromotedReference
from crashed.errors import ServiceError
from crashed.settings import Settings
from crashed.verification import (
    ArtifactCheck,
    artifact_prefix,
    exit_code,
    fetch_verified,
    verify_contents,
    verify_reference,
)

NAMES = ["model", "distributions", "metrics", "report"]


@pytest.fixture(scope="module")
def run() -> PublishedRun:
    return published_run()


@pytest.fixture
def lake() -> FakeLake:
    return FakeLake()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_for(tmp_path)


def settings_for(home: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "crashed_home": home,
        "crashed_model_name": "crashed",
        "lake_bucket": "crashed-lake",
        "lake_path": "",
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def failures(checks: list[ArtifactCheck]) -> dict[str, str]:
    """name → kind of every failed check; and every problem is one line."""
    assert all("\n" not in check.problem for check in checks)
    return {check.name: check.kind for check in checks if not check.ok}


def problem(checks: list[ArtifactCheck], name: str) -> str:
    return next(check.problem for check in checks if check.name == name)


def with_artifact(
    reference: PromotedReference, lake: FakeLake, name: str, data: bytes, uri: str | None = None
) -> PromotedReference:
    """``reference`` naming ``data`` (stored at ``uri``, default: the artifact's own) as ``name``,
    with its real checksums: only the content check can object."""
    info = lake.put_bytes(uri or getattr(reference.artifacts, name).uri, data)
    artifacts = reference.artifacts.model_copy(update={name: Artifact(**info.as_dict())})
    return reference.model_copy(update={"artifacts": artifacts})


def test_a_published_run_verifies(run: PublishedRun, lake: FakeLake, settings: Settings) -> None:
    reference = run.copy_to(lake)

    checks = verify_contents(reference, lake, settings)

    assert [(c.name, c.ok, c.kind, c.problem) for c in checks] == [
        (name, True, "ok", "") for name in NAMES
    ]
    assert [c.uri for c in checks] == [getattr(reference.artifacts, n).uri for n in NAMES]
    assert exit_code(checks) == 0


def test_swapped_model_and_metrics_fail_naming_both(
    run: PublishedRun, lake: FakeLake, settings: Settings
) -> None:
    reference = run.copy_to(lake)
    artifacts = reference.artifacts.model_copy(
        update={"model": reference.artifacts.metrics, "metrics": reference.artifacts.model}
    )
    swapped = reference.model_copy(update={"artifacts": artifacts})
    assert all(check.ok for check in verify_reference(swapped, lake))  # checksums cannot tell

    checks = verify_contents(swapped, lake, settings)

    assert failures(checks) == {"model": "content", "metrics": "content"}
    assert problem(checks, "model").startswith("expected an XGBoost UBJSON model bundle: ")
    assert problem(checks, "metrics").startswith("expected metrics.json (an evaluation): ")
    assert exit_code(checks) == 2


@pytest.mark.parametrize(
    "uri",
    [
        "gs://other-bucket/models/crashed/run-verify/model.ubj",
        "gs://crashed-lake/models/other-model/run-verify/model.ubj",
        "gs://crashed-lake/models/crashed/run-other/model.ubj",
        "gs://crashed-lake/models/crashed/run-verify/sub/model.ubj",
        "gs://crashed-lake/models/crashed/run-verify/../run-other/model.ubj",
        "gs://crashed-lake/models/crashed/run-verify-2/model.ubj",
        "gs://crashed-lake/elsewhere/models/crashed/run-verify/model.ubj",
    ],
)
def test_a_uri_outside_the_configured_prefix_fails_unfetched(
    run: PublishedRun, lake: FakeLake, settings: Settings, uri: str
) -> None:
    reference = with_artifact(run.copy_to(lake), lake, "model", run.files["model"], uri)
    fetched: list[str] = []
    get_bytes = lake.get_bytes
    lake.get_bytes = lambda u: fetched.append(u) or get_bytes(u)  # type: ignore[method-assign]

    checks = verify_contents(reference, lake, settings)

    assert failures(checks) == {"model": "location"}
    assert problem(checks, "model") == (
        "expected a file directly under gs://crashed-lake/models/crashed/run-verify/ "
        "(the configured bucket, model and run)"
    )
    assert uri not in fetched  # a foreign location is never read
    assert exit_code(checks) == 2


def test_the_prefix_includes_lake_path(run: PublishedRun, lake: FakeLake, tmp_path: Path) -> None:
    settings = settings_for(tmp_path, lake_path="/team/crashes/")
    assert artifact_prefix(settings, "r1") == "gs://crashed-lake/team/crashes/models/crashed/r1/"

    checks = verify_contents(run.copy_to(lake), lake, settings)

    assert failures(checks) == dict.fromkeys(NAMES, "location")


def test_model_name_is_pinned_too(run: PublishedRun, lake: FakeLake, tmp_path: Path) -> None:
    """Artifacts under another configured model name: the URIs fit, the bundle does not."""
    reference = run.publish_as(lake, "run-verify")
    base = "gs://crashed-lake/models/other/run-verify"
    for name, file_name in (("distributions", "distributions.json"), ("metrics", "metrics.json")):
        reference = with_artifact(reference, lake, name, run.files[name], f"{base}/{file_name}")
    reference = with_artifact(reference, lake, "model", run.files["model"], f"{base}/model.ubj")
    reference = with_artifact(reference, lake, "report", run.files["report"], f"{base}/report.md")
    model = reference.model.model_copy(update={"name": "other"})
    reference = reference.model_copy(update={"model": model})

    checks = verify_contents(reference, lake, settings_for(tmp_path, crashed_model_name="other"))

    assert failures(checks) == {"model": "content"}
    assert problem(checks, "model") == "expected model 'other', the bundle is 'crashed'"


def test_checksum_missing_and_unreachable(
    run: PublishedRun, lake: FakeLake, settings: Settings
) -> None:
    reference = run.copy_to(lake)
    lake.put_bytes(reference.artifacts.report.uri, b"# edited after review\n")  # type: ignore[union-attr]
    checks = verify_contents(reference, lake, settings)
    assert failures(checks) == {"report": "checksum"}
    assert exit_code(checks) == 2

    del lake.objects[reference.artifacts.distributions.uri]
    checks = verify_contents(reference, lake, settings)
    assert failures(checks) == {"distributions": "missing", "report": "checksum"}
    assert exit_code(checks) == 4

    def unreachable(uri: str) -> bytes:
        raise ServiceError(f"lake unreachable reading {uri}")

    lake.get_bytes = unreachable  # type: ignore[method-assign]
    checks = verify_contents(reference, lake, settings)
    assert failures(checks) == dict.fromkeys(NAMES, "unreachable")
    assert exit_code(checks) == 3


def plain_booster() -> bytes:
    """A valid XGBoost UBJSON model that is not a crashed bundle (no encoder inside)."""
    rng = np.random.default_rng(0)
    matrix = xgb.DMatrix(rng.random((50, 3)), label=rng.integers(0, 2, 50))
    booster = xgb.train({"objective": "binary:logistic", "nthread": 1}, matrix, 2)
    return bytes(booster.save_raw(raw_format="ubj"))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x00\x01pickle?", "expected an XGBoost UBJSON model bundle: not an XGBoost"),
        (b'{"learner": {}}', "expected an XGBoost UBJSON model bundle: not a loadable"),
        (plain_booster(), "expected an XGBoost UBJSON model bundle: model has no crashed"),
    ],
)
def test_a_model_that_is_not_a_bundle(
    run: PublishedRun, lake: FakeLake, settings: Settings, data: bytes, expected: str
) -> None:
    reference = with_artifact(run.copy_to(lake), lake, "model", data)
    checks = verify_contents(reference, lake, settings)
    assert failures(checks) == {"model": "content"}
    assert problem(checks, "model").startswith(expected)


def edited_json(data: bytes, edit) -> bytes:  # type: ignore[no-untyped-def]
    document = json.loads(data)
    edit(document)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d.pop("categorical"), "categorical: Field required"),
        (lambda d: d.update(distributions_version=2), "distributions_version: Input should be 1"),
        (
            lambda d: d["categorical"]["speed_zone"]["counts"].update({"60 km/hr": "12"}),
            "categorical.speed_zone.counts.60 km/hr: Input should be a valid integer",
        ),
        (lambda d: d["time"].update(hour_mode=24), "time.hour_mode: Input should be less than"),
        (lambda d: d["categorical"].pop("light_condition"), "no summary of light_condition"),
    ],
)
def test_distributions_without_the_encoder_shape(
    run: PublishedRun,
    lake: FakeLake,
    settings: Settings,
    edit,
    expected: str,  # type: ignore[no-untyped-def]
) -> None:
    data = edited_json(run.files["distributions"], edit)
    reference = with_artifact(run.copy_to(lake), lake, "distributions", data)
    checks = verify_contents(reference, lake, settings)
    assert failures(checks) == {"distributions": "content"}
    assert problem(checks, "distributions").startswith(
        f"expected distributions.json (feature vocabularies and summaries): {expected}"
    )


def test_distributions_of_another_training_set(
    run: PublishedRun, lake: FakeLake, settings: Settings
) -> None:
    def add_value(document: dict) -> None:  # type: ignore[type-arg]
        document["categorical"]["day_of_week"]["counts"]["Someday"] = 3

    data = edited_json(run.files["distributions"], add_value)
    reference = with_artifact(run.copy_to(lake), lake, "distributions", data)
    checks = verify_contents(reference, lake, settings)
    assert failures(checks) == {"distributions": "content"}
    assert problem(checks, "distributions") == (
        "expected the distributions the model was trained on: day_of_week has 8 values here, "
        "7 in the model's encoder"
    )


def test_metrics_must_be_this_models_evaluation(
    run: PublishedRun, lake: FakeLake, settings: Settings
) -> None:
    reference = run.copy_to(lake)
    not_an_evaluation = with_artifact(reference, lake, "metrics", b'{"roc_auc": 0.87}')
    checks = verify_contents(not_an_evaluation, lake, settings)
    assert failures(checks) == {"metrics": "content"}
    assert (
        problem(checks, "metrics")
        == "expected metrics.json (an evaluation): candidate: Field required"
    )

    candidate = run.evaluation.candidate
    overall = candidate.overall.model_copy(update={"threshold": 0.999})
    other = run.evaluation.model_copy(
        update={"candidate": candidate.model_copy(update={"overall": overall})}
    )
    checks = verify_contents(
        with_artifact(reference, lake, "metrics", other.model_dump_json().encode()),
        lake,
        settings,
    )
    assert failures(checks) == {"metrics": "content"}
    assert problem(checks, "metrics").startswith(
        "expected the evaluation of this model: threshold 0.999 in metrics.json, "
    )


def test_the_reference_must_record_the_evaluated_metrics(
    run: PublishedRun, lake: FakeLake, settings: Settings
) -> None:
    reference = run.copy_to(lake)
    flattering = reference.metrics.model_copy(update={"roc_auc": 0.99})
    checks = verify_contents(reference.model_copy(update={"metrics": flattering}), lake, settings)
    assert failures(checks) == {"metrics": "content"}
    actual = run.evaluation.candidate.overall.roc_auc
    assert problem(checks, "metrics") == (
        f"expected the metrics the reference records: roc_auc 0.99 in the reference, "
        f"{actual} in metrics.json"
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"# Model update\n\xff\xfe", "expected UTF-8 Markdown text: byte 15 is not UTF-8"),
        (b"# Model\x00update", "expected UTF-8 Markdown text: a NUL character at 7"),
    ],
)
def test_report_is_utf8_text(
    run: PublishedRun, lake: FakeLake, settings: Settings, data: bytes, expected: str
) -> None:
    reference = with_artifact(run.copy_to(lake), lake, "report", data)
    checks = verify_contents(reference, lake, settings)
    assert failures(checks) == {"report": "content"}
    assert problem(checks, "report") == expected


def test_the_checksum_api_is_unchanged(run: PublishedRun, lake: FakeLake, tmp_path: Path) -> None:
    reference = run.copy_to(lake)
    assert [(c.name, c.ok) for c in verify_reference(reference, lake)] == [
        (name, True) for name in NAMES
    ]
    data = fetch_verified(reference.artifacts.model, "model", lake, tmp_path / "cache")
    assert data == run.files["model"]
    assert (tmp_path / "cache" / reference.artifacts.model.sha256).read_bytes() == data


def test_a_reference_without_a_report(
    run: PublishedRun, lake: FakeLake, settings: Settings
) -> None:
    reference = run.copy_to(lake)
    older = reference.model_copy(
        update={"artifacts": reference.artifacts.model_copy(update={"report": None})}
    )
    checks = verify_contents(older, lake, settings)
    assert [(c.name, c.ok) for c in checks] == [(name, True) for name in NAMES[:3]]
