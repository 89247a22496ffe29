"""model-reference.json: both states validated, canonical rendering, errors naming fields."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from crashed.core.reference import (
    EmptyReference,
    InvalidReference,
    PromotedReference,
    artifact_items,
    as_dict,
    empty_reference,
    parse_reference,
    read_reference,
    render_reference,
    require_promoted,
)
from crashed.errors import InputError, NotFoundError


def artifact(name: str) -> dict[str, Any]:
    data = f"{name} bytes".encode()
    return {
        "uri": f"gs://crashed-lake/models/crashed/run-7/{name}",
        "sha256": hashlib.sha256(data).hexdigest(),
        "md5": hashlib.md5(data).hexdigest(),
        "bytes": len(data),
    }


def promoted() -> dict[str, Any]:
    return {
        "schema_version": 1,
        "status": "promoted",
        "model": {"name": "crashed", "run_id": "run-7", "created_at": "2026-11-22T03:00:00Z"},
        "artifacts": {
            "model": artifact("model.ubj"),
            "distributions": artifact("distributions.json"),
            "metrics": artifact("metrics.json"),
        },
        "metrics": {
            "roc_auc": 0.861,
            "pr_auc": 0.204,
            "log_loss": 0.12,
            "brier": 0.03,
            "precision": 0.25,
            "recall": 0.4,
            "threshold": 0.31,
            "validation_rows": 2683,
            "validation_positives": 88,
        },
        "lineage": {
            "pipeline": "crashed_pipeline",
            "pipeline_version": "abc123",
            "run_id": "run-7",
            "image": "registry.example/crashed:1",
            "git_commit": "0123456789abcdef",
            "train_window": {
                "start": "2018-01-01",
                "end": "2018-09-30",
                "rows": 8480,
                "positives": 269,
            },
            "validation_window": {
                "start": "2018-10-01",
                "end": "2018-12-31",
                "rows": 2683,
                "positives": 88,
            },
            "platform": "local",
        },
    }


def invalid(data: Any) -> InvalidReference:
    """The error parsing ``data`` raises: an InputError (exit 2) of one line naming the file."""
    text = data if isinstance(data, str) else json.dumps(data)
    with pytest.raises(InvalidReference) as caught:
        parse_reference(text, "ref.json")
    error = caught.value
    assert isinstance(error, InputError) and error.exit_code == 2
    assert error.message.startswith("ref.json: ")
    assert "\n" not in error.message
    return error


def error_of(data: Any) -> str:
    return invalid(data).message


def test_valid_promoted_reference() -> None:
    reference = parse_reference(json.dumps(promoted()))

    assert isinstance(reference, PromotedReference)
    assert reference.model.run_id == "run-7"
    assert reference.metrics.validation_positives == 88
    assert reference.lineage.validation_window.rows == 2683
    assert reference.artifacts.report is None
    assert require_promoted(reference) is reference


def test_no_model_state() -> None:
    reference = empty_reference()
    assert isinstance(reference, EmptyReference)
    text = render_reference(reference)
    assert json.loads(text) == {
        "schema_version": 1,
        "status": "no-model-promoted",
        "message": "No model has been promoted yet: run the pipeline and merge its proposal.",
    }
    assert parse_reference(text) == reference
    with pytest.raises(NotFoundError, match="no model has been promoted yet"):
        require_promoted(reference, "ref.json")


def test_repository_reference_file_is_valid() -> None:
    path = Path(__file__).resolve().parents[3] / "model-reference.json"
    if not path.exists():
        pytest.skip("no model-reference.json at the repository root")
    assert read_reference(path).status in {"promoted", "no-model-promoted"}


@pytest.mark.parametrize("with_report", [False, True])
def test_render_round_trip(with_report: bool) -> None:
    data = promoted()
    if with_report:
        data["artifacts"]["report"] = artifact("report.md")
    reference = parse_reference(json.dumps(data))

    text = render_reference(reference)
    assert text.endswith("}\n")
    assert json.loads(text) == data
    assert parse_reference(text) == reference
    assert render_reference(parse_reference(text)) == text  # canonical: stable
    assert as_dict(reference) == data
    if not with_report:
        assert "report" not in text  # None fields are omitted, not null


def test_render_is_independent_of_input_key_order() -> None:
    data = promoted()
    shuffled = dict(reversed(list(data.items())))
    assert render_reference(parse_reference(json.dumps(shuffled))) == render_reference(
        parse_reference(json.dumps(data))
    )


def test_null_auc_is_allowed() -> None:
    data = promoted()
    data["metrics"]["roc_auc"] = None
    data["metrics"]["pr_auc"] = None
    assert parse_reference(json.dumps(data)).metrics.roc_auc is None


def test_artifact_items_order() -> None:
    data = promoted()
    assert [n for n, _ in artifact_items(parse_reference(json.dumps(data)))] == [
        "model",
        "distributions",
        "metrics",
    ]
    data["artifacts"]["report"] = artifact("report.md")
    items = artifact_items(parse_reference(json.dumps(data)))
    assert [n for n, _ in items] == ["model", "distributions", "metrics", "report"]
    assert items[3][1].uri.endswith("/report.md")


def set_path(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("artifacts.model.sha256", "0" * 63),
        ("artifacts.model.sha256", "A" * 64),
        ("artifacts.metrics.md5", "xyz"),
        ("artifacts.distributions.uri", "/tmp/distributions.json"),
        ("artifacts.model.uri", "gs://Bad_Bucket/x"),
        ("artifacts.model.bytes", -1),
        ("model.name", "Crashed Model"),
        ("model.run_id", ""),
        ("metrics.roc_auc", 1.5),
        ("metrics.threshold", -0.1),
        ("metrics.validation_rows", -3),
        ("lineage.train_window.start", "2018/01/01"),
        ("lineage.git_commit", KeyError),
        ("artifacts.model", KeyError),
    ],
)
def test_invalid_field_is_named(path: str, value: Any) -> None:
    error = invalid(set_path(promoted(), path, value))
    assert error.field == path
    assert error.message == f"ref.json: invalid reference: {path}: {error.problems[0][1]}"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("artifacts.model.bytes", "100"),  # a string is not a count
        ("artifacts.model.bytes", 100.0),
        ("metrics.validation_rows", True),
        ("metrics.roc_auc", "0.86"),
        ("model.run_id", 7),
        ("lineage.train_window.rows", "8480"),
    ],
)
def test_types_are_strict(path: str, value: Any) -> None:
    assert invalid(set_path(promoted(), path, value)).field == path


def test_integer_is_a_valid_number() -> None:
    data = set_path(promoted(), "metrics.recall", 1)
    assert parse_reference(json.dumps(data)).metrics.recall == 1.0


def test_unknown_field_is_rejected() -> None:
    error = invalid(set_path(promoted(), "metrics.accuracy", 0.97))
    assert error.problems == [("metrics.accuracy", "Extra inputs are not permitted")]


def test_several_problems_are_listed() -> None:
    data = set_path(promoted(), "artifacts.model.md5", "bad")
    data = set_path(data, "lineage.platform", KeyError)
    error = invalid(data)
    assert {field for field, _ in error.problems} == {"artifacts.model.md5", "lineage.platform"}
    assert "artifacts.model.md5" in error.message and "lineage.platform" in error.message


def test_field_names_in_messages_stay_on_one_line() -> None:
    error = invalid(set_path(promoted(), "metrics.a\nb", 1))
    assert error.field == json.dumps("metrics.a\nb")  # escaped, in quotes
    assert "\n" not in error.message


@pytest.mark.parametrize("status", ["promoted", "no-model-promoted"])
@pytest.mark.parametrize(
    ("version", "shown"),
    [
        ("1", 'got the string "1"'),
        (1.0, "got the number 1.0"),
        (True, "got the boolean true"),
        (None, "got null"),
        (KeyError, "it is missing"),
    ],
)
def test_schema_version_must_be_the_integer_1(status: str, version: Any, shown: str) -> None:
    data = set_path(promoted(), "status", status)
    error = invalid(set_path(data, "schema_version", version))
    assert (error.field, len(error.problems)) == ("schema_version", 1)
    assert error.message == f"ref.json: schema_version: expected the integer 1, {shown}"


@pytest.mark.parametrize("version", [2, 0, -1])
def test_unsupported_schema_version(version: int) -> None:
    error = invalid({"schema_version": version, "status": "promoted"})
    assert error.field == "schema_version"
    assert error.message == f"ref.json: schema_version {version} is not supported (expected 1)"


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        ("promotd", 'got the string "promotd"'),
        ("Promoted", 'got the string "Promoted"'),
        ("retired", 'got the string "retired"'),
        (1, "got the integer 1"),
        (["promoted"], 'got the array ["promoted"]'),
        (None, "got null"),
        (KeyError, "it is missing"),
    ],
)
def test_mistyped_status_is_one_line(status: Any, shown: str) -> None:
    """A typo in ``status`` of a promoted reference: one problem, not a list of extra fields."""
    error = invalid(set_path(promoted(), "status", status))
    assert (error.field, len(error.problems)) == ("status", 1)
    assert error.message == (
        f"ref.json: status: expected 'promoted' or 'no-model-promoted', {shown}"
    )


def test_not_json_and_not_an_object() -> None:
    error = invalid('{"schema_version": 1,')
    assert error.field == "(root)"
    assert error.message.startswith("ref.json: not valid JSON (") and "line 1" in error.message
    assert invalid("[1, 2]").message == "ref.json: expected a JSON object"


def test_read_reference(tmp_path: Path) -> None:
    path = tmp_path / "model-reference.json"
    path.write_text(render_reference(parse_reference(json.dumps(promoted()))), encoding="utf-8")
    assert read_reference(path).model.name == "crashed"

    with pytest.raises(NotFoundError, match="no such model reference"):
        read_reference(tmp_path / "absent.json")

    path.write_text("{}", encoding="utf-8")
    with pytest.raises(InvalidReference) as caught:
        read_reference(path)
    assert caught.value.source == str(path) and caught.value.field == "schema_version"

    latin1 = b'{"schema_version": 1, "status": "\xff"}'
    path.write_bytes(latin1)
    with pytest.raises(InvalidReference) as caught:
        read_reference(path)
    assert caught.value.field == "(root)"
    assert caught.value.message == f"{path}: not UTF-8 text (byte {latin1.index(0xFF)})"

    with pytest.raises(InputError) as directory:
        read_reference(tmp_path)
    assert directory.value.exit_code == 2
    assert directory.value.message.startswith(f"{tmp_path}: cannot read the model reference")


def test_references_are_immutable() -> None:
    reference = parse_reference(json.dumps(promoted()))
    with pytest.raises(ValueError, match="frozen"):
        reference.model.run_id = "other"  # type: ignore[misc]
