"""The six ops in spec order, in this process, over in-memory fakes of the ports.

The ML heart of the system without a process, a server, git or a file: seconds, not minutes.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from tests.factories import log_predictions
from tests.fakes import FakePorts

from crashed.core.bootstrap import Verdict
from crashed.core.charts import parse_mermaid
from crashed.core.crash_schema import normalise, read_crash_csv
from crashed.core.evaluation import Evaluation
from crashed.core.promotion import Outcome
from crashed.core.reference import PromotedReference, parse_reference
from crashed.errors import InputError
from crashed.pipeline.contracts import OUTPUTS, PublishOutput, ValidateOutput
from crashed.pipeline.ops import run_in_process
from crashed.pipeline.spec import CRASHED_PIPELINE
from crashed.settings import Settings
from crashed.synthetic import generate_crashes, write_csv

WINDOWS = {
    "train_start": "2018-01-01",
    "train_end": "2018-09-30",
    "validation_start": "2018-10-01",
    "validation_end": "2018-12-31",
}
RUN_DATE = "2019-01-01T00:00:00+00:00"


@pytest.fixture(scope="module")
def synthetic_crashes(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A year of synthetic crashes, normalised exactly as `crashed data load` does."""
    path = tmp_path_factory.mktemp("synthetic") / "crashes.csv"
    write_csv(generate_crashes(20_000, seed=7), path)
    return normalise(read_crash_csv(path), source=str(path))


def make_settings(home: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "crashed_home": home,
        "train_max_rounds": 80,  # fast; the quality test below uses the real defaults
        "gate_bootstrap_resamples": 200,
        "crashed_image": "crashed:test",
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def ports_with(frame) -> FakePorts:  # type: ignore[no-untyped-def]
    ports = FakePorts()
    ports.warehouse.load_frame("crashes_raw", frame)
    return ports


def run(settings: Settings, ports: FakePorts, run_id: str, **parameters: str):  # type: ignore[no-untyped-def]
    return run_in_process(
        CRASHED_PIPELINE, settings, ports, run_id, RUN_DATE, {**WINDOWS, **parameters}
    )


@pytest.fixture(autouse=True)
def fixed_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRASHED_GIT_COMMIT", "0" * 40)


def test_first_run_proposes_a_verified_reference(synthetic_crashes, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ports = ports_with(synthetic_crashes)
    outputs = run(make_settings(tmp_path), ports, "run-1")

    assert list(outputs) == [op.name for op in CRASHED_PIPELINE.ops]
    # Every manifest in the lake is its output model's JSON, and parses back to the same value.
    for name, output in outputs.items():
        uri = f"gs://crashed-lake/runs/run-1/{name}.json"
        assert OUTPUTS[name].model_validate_json(ports.lake.get_bytes(uri)) == output
        assert output.op == name and output.run_id == "run-1"
    extract = outputs["extract"]
    assert extract.train.rows + extract.validation.rows == len(synthetic_crashes)
    assert (extract.train.start, extract.validation.end) == ("2018-01-01", "2018-12-31")

    published = outputs["publish"]
    assert isinstance(published, PublishOutput)
    assert published.outcome is Outcome.GATE_PASSED and published.proposal is not None
    assert published.metrics.roc_auc is not None and published.metrics.roc_auc > 0.75
    (proposal,) = ports.git_host.proposals.values()
    assert proposal.branch == "model-update/crashed" and "forced" not in proposal.labels
    reference = parse_reference(proposal.changes[0].content, "proposal")
    assert isinstance(reference, PromotedReference)
    assert reference.model.run_id == "run-1"
    # The proposed reference names exactly the published artifacts, checksums included.
    for artifact in published.artifacts:
        stored = ports.lake.checksum(artifact.uri)
        assert (stored.sha256, stored.bytes) == (artifact.sha256, artifact.bytes)
        assert getattr(reference.artifacts, artifact.name).sha256 == artifact.sha256
    assert "### Gate rules" in proposal.description


def test_retraining_the_same_data_after_merge_proposes_nothing(
    synthetic_crashes,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    ports = ports_with(synthetic_crashes)
    settings = make_settings(tmp_path)
    run(settings, ports, "run-1")
    ports.git_host.merge("model-update/crashed")

    outputs = run(settings, ports, "run-2")

    assert outputs["evaluate"].production_run_id == "run-1"
    assert outputs["validate"].production_run_id == "run-1"
    assert {d.feature for d in outputs["validate"].drift} >= {"light_condition", "hour"}
    published = outputs["publish"]
    assert published.outcome is Outcome.IDENTICAL and published.identical_to_production
    assert published.proposal is None and ports.git_host.proposals == {}


def test_failing_gate_proposes_only_when_forced(synthetic_crashes, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ports = ports_with(synthetic_crashes)
    strict = make_settings(tmp_path, gate_min_roc_auc=0.999)

    refused = run(strict, ports, "run-1")["publish"]
    assert refused.outcome is Outcome.GATE_FAILED and refused.proposal is None
    assert [r.name for r in refused.gate.failures()] == ["ROC-AUC floor"]
    assert ports.git_host.proposals == {}

    forced = run(strict, ports, "run-2", force_promotion="yes")["publish"]
    assert forced.outcome is Outcome.FORCED and forced.forced
    (proposal,) = ports.git_host.proposals.values()
    assert proposal.labels == ("model-update", "forced")


def test_a_bad_parameter_names_the_field_and_runs_nothing(
    synthetic_crashes, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    ports = ports_with(synthetic_crashes)
    with pytest.raises(InputError, match="force_promotion"):
        run(make_settings(tmp_path), ports, "run-1", force_promotion="maybe")
    # publish validates its input before doing anything: no artifact, no proposal.
    assert not ports.lake.list("gs://crashed-lake/models/")
    assert ports.git_host.proposals == {}


def test_validation_violations_stop_the_run_with_a_report(
    synthetic_crashes, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    frame = synthetic_crashes.copy()
    frame["alcohol_related"] = False
    ports = ports_with(frame)
    with pytest.raises(InputError) as failure:
        run(make_settings(tmp_path), ports, "run-1")
    report = ValidateOutput.model_validate_json(
        ports.lake.get_bytes("gs://crashed-lake/runs/run-1/validation-report.json")
    )
    assert not report.passed
    assert report.violations == [
        "train: no positive (alcohol-related) crashes in the training window"
    ]
    assert failure.value.exit_code == 2
    assert not ports.lake.exists("gs://crashed-lake/runs/run-1/train.json")


def test_a_clearly_worse_candidate_fails_on_a_significant_drop(
    synthetic_crashes,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    ports = ports_with(synthetic_crashes)
    run(make_settings(tmp_path), ports, "run-1")
    ports.git_host.merge("model-update/crashed")

    weak = make_settings(tmp_path, train_max_rounds=1, train_max_depth=1)
    outputs = run(weak, ports, "run-2")

    evaluation = Evaluation.model_validate_json(
        ports.lake.get_bytes(outputs["evaluate"].metrics_uri)
    )
    verdicts = {check.metric: check.verdict for check in evaluation.regression_checks}
    assert verdicts["roc_auc"] is Verdict.SIGNIFICANTLY_WORSE
    assert outputs["publish"].outcome is Outcome.GATE_FAILED
    failed = [rule.name for rule in outputs["publish"].gate.failures()]
    assert "ROC-AUC no worse than production" in failed


def sections(report: str) -> dict[str, str]:
    """The report's ``### `` sections by title."""
    parts = re.split(r"^### (.+)$", report, flags=re.MULTILINE)
    return {title.strip(): body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


@pytest.mark.real_data
@pytest.mark.slow
def test_real_2018_split_review_report_with_intervals_shadow_and_charts(
    real_crashes_csv: Path, tmp_path: Path
) -> None:
    frame = normalise(read_crash_csv(real_crashes_csv), source=str(real_crashes_csv))
    ports = ports_with(frame)
    settings = make_settings(tmp_path, train_max_rounds=600, gate_bootstrap_resamples=1000)
    first = run(settings, ports, "real-1")
    metrics = first["publish"].metrics
    assert metrics.roc_auc is not None and metrics.roc_auc >= 0.85
    assert metrics.pr_auc is not None and metrics.pr_auc >= 0.19
    ports.git_host.merge("model-update/crashed")
    production = parse_reference(ports.git_host.files["model-reference.json"], "main")
    assert isinstance(production, PromotedReference)
    # Production served the validation months' crashes last week.
    served = frame[frame["accident_date"].astype(str) >= "2018-10-01"]
    log_predictions(ports.lake, settings, production, served, date(2018, 12, 31))

    # The same recipe with another seed: equal quality, so "not distinguishable", never a fail.
    reseeded = make_settings(
        tmp_path, train_max_rounds=600, gate_bootstrap_resamples=1000, train_seed=1
    )
    second = run(reseeded, ports, "real-2")

    published = second["publish"]
    assert published.outcome is Outcome.GATE_PASSED
    (proposal,) = ports.git_host.proposals.values()
    found = sections(proposal.description)
    intervals = found["Validation metrics with 95 % intervals"]
    rows = [line for line in intervals.splitlines() if line.startswith(("| ROC-AUC", "| PR-AUC"))]
    assert len(rows) == 2 and all("not distinguishable" in row for row in rows)
    assert re.search(r"\| ROC-AUC \| 0\.\d{3} \[0\.\d{3}, 0\.\d{3}\]", intervals)
    shadow = found["Shadow on live traffic"]
    assert f"{len(served):,} requests" in shadow and "decision agreement" in shadow
    agreement = float(re.search(r"decision agreement \| ([\d.]+) %", shadow)[1])  # type: ignore[index]
    assert 80 <= agreement <= 100
    assert "Brier" in found["Calibration"]
    blocks = re.findall(r"```mermaid\n.*?```", found["Charts"], flags=re.DOTALL)
    charts = [parse_mermaid(block) for block in blocks]
    assert [c.title for c in charts][:2] == ["ROC curve", "Precision-recall curve"]
    assert all(len(line.y) == len(c.x) for c in charts for line in c.lines)
    pngs = ports.lake.list("gs://crashed-lake/models/crashed/real-2/charts/")
    assert len(pngs) == len(charts)
    assert all(ports.lake.get_bytes(uri)[:8] == b"\x89PNG\r\n\x1a\n" for uri in pngs)
