"""Settings: platform defaults, overrides, validation naming the variable, secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from crashed.errors import ConfigError
from crashed.settings import Settings, load_settings

TOKEN = "glpat-settings-test-Secret-987654321"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ambient configuration: every test starts from the defaults, in an empty folder."""
    for name in list(Settings.model_fields):
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)


def test_local_platform_is_the_default_and_picks_embedded_adapters() -> None:
    settings = load_settings()
    assert settings.crashed_platform == "local"
    assert (settings.warehouse_kind, settings.lake_kind, settings.git_host_kind) == (
        "duckdb",
        "local",
        "local",
    )
    assert settings.home == (Path.cwd() / ".crashed").resolve()


def test_gcp_platform_picks_cloud_adapters_and_each_can_be_overridden(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRASHED_PLATFORM", "gcp")
    assert (
        load_settings().warehouse_kind,
        load_settings().lake_kind,
        load_settings().git_host_kind,
    ) == ("bigquery", "gcs", "gitlab")
    monkeypatch.setenv("CRASHED_LAKE", "local")
    monkeypatch.setenv("CRASHED_GIT_HOST", "local")
    settings = load_settings()
    assert (settings.warehouse_kind, settings.lake_kind, settings.git_host_kind) == (
        "bigquery",
        "local",
        "local",
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CRASHED_PLATFORM", "azure"),
        ("CRASHED_WAREHOUSE", "postgres"),
        ("LAKE_BUCKET", "Not A Bucket!"),
        ("GITLAB_URL", "gitlab.com"),
        ("K8S_NAMESPACE", "Bad_Namespace"),
        ("TRAIN_MAX_DEPTH", "0"),
        ("GATE_MIN_ROC_AUC", "1.5"),
    ],
)
def test_invalid_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert variable in caught.value.message
    assert caught.value.exit_code == 2


def test_token_is_masked_in_repr_errors_and_pod_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITLAB_TOKEN", TOKEN)
    settings = load_settings()
    assert settings.gitlab_token is not None
    assert settings.gitlab_token.get_secret_value() == TOKEN
    assert TOKEN not in repr(settings) and TOKEN not in str(settings)
    assert TOKEN not in str(settings.pod_env())
    assert "GITLAB_TOKEN" not in settings.pod_env()
    monkeypatch.setenv("CRASHED_PLATFORM", "nope")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert TOKEN not in caught.value.message


def test_dotenv_file_is_read_and_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("LAKE_BUCKET=from-dotenv\nWAREHOUSE_DATASET=from_dotenv\n")
    monkeypatch.setenv("WAREHOUSE_DATASET", "from_env")
    settings = load_settings()
    assert settings.lake_bucket == "from-dotenv"
    assert settings.warehouse_dataset == "from_env"


def test_lake_uri_and_pod_env_carry_non_default_training_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LAKE_PATH", "/team/crashes/")
    monkeypatch.setenv("TRAIN_MAX_DEPTH", "5")
    settings = load_settings()
    assert settings.lake_uri("models", "crashed") == "gs://crashed-lake/team/crashes/models/crashed"
    assert settings.pod_env()["TRAIN_MAX_DEPTH"] == "5"
    assert settings.pod_env()["CRASHED_WAREHOUSE"] == "duckdb"
