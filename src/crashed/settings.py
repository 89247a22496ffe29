"""One typed settings object, read from environment variables and an optional ``.env`` file."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from crashed.core.names import validate_namespace
from crashed.errors import ConfigError, InputError

Platform = Literal["local", "gcp"]
WarehouseKind = Literal["duckdb", "bigquery"]
LakeKind = Literal["local", "gcs"]
GitHostKind = Literal["local", "gitlab"]

_PLATFORM_DEFAULTS: dict[str, dict[str, str]] = {
    "local": {"warehouse": "duckdb", "lake": "local", "git_host": "local"},
    "gcp": {"warehouse": "bigquery", "lake": "gcs", "git_host": "gitlab"},
}


class Settings(BaseSettings):
    """Configuration of every command. Field ``x`` is read from env var ``X`` (case-insensitive)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    crashed_platform: Platform = "local"
    crashed_warehouse: WarehouseKind | None = None
    crashed_lake: LakeKind | None = None
    crashed_git_host: GitHostKind | None = None
    crashed_home: Path = Path(".crashed")
    crashed_repo: Path | None = None
    crashed_model_name: str = Field(default="crashed", pattern=r"^[a-z][a-z0-9_-]{0,62}$")
    crashed_model_reference: Path = Path("model-reference.json")
    crashed_image: str = "registry.gitlab.com/crashed/crashed:latest"

    gcp_project: str = "crashed-local"
    warehouse_dataset: str = Field(default="crashed", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$")
    warehouse_location: str = "australia-southeast1"
    bigquery_api_endpoint: str | None = None
    warehouse_lock_timeout: float = Field(default=30.0, ge=0, le=3600)
    """Seconds a command waits for the DuckDB file another process holds, then exit 3."""
    lake_bucket: str = Field(
        default="crashed-lake", pattern=r"^[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]$"
    )
    lake_path: str = ""

    gitlab_url: str = "https://gitlab.com"
    gitlab_project: str | None = None
    gitlab_token: SecretStr | None = None
    gitlab_target_branch: str = "main"

    train_max_depth: int = Field(default=3, ge=1, le=12)
    train_learning_rate: float = Field(default=0.03, gt=0, le=1)
    train_max_rounds: int = Field(default=600, ge=1, le=10_000)
    train_min_child_weight: float = Field(default=5.0, ge=0)
    train_scale_pos_weight: float | None = Field(default=None, gt=0)
    train_min_category_count: int = Field(default=5, ge=1)
    train_seed: int = Field(default=0, ge=0)

    gate_min_roc_auc: float = Field(default=0.70, ge=0, le=1)
    gate_max_roc_auc_drop: float = Field(default=0.01, ge=0, le=1)
    gate_max_pr_auc_drop: float = Field(default=0.03, ge=0, le=1)
    gate_min_validation_positives: int = Field(default=10, ge=0)
    gate_regression_rule: Literal["significant", "point"] = "significant"
    """``significant``: a regression rule fails only when the paired-bootstrap interval of the
    drop lies wholly beyond the allowed drop; ``point``: on the point estimates."""
    gate_confidence_level: float = Field(default=0.95, gt=0.5, lt=1)
    gate_bootstrap_resamples: int = Field(default=1000, ge=100, le=100_000)
    gate_bootstrap_seed: int = Field(default=0, ge=0)
    report_min_segment_positives: int = Field(default=10, ge=0)
    shadow_window_days: int = Field(default=7, ge=1, le=366)
    crashed_serving_forest: bool = True
    """Serve single rows through the compiled forest (``crashed.serving.forest``) when the
    model is one it covers and it agrees with XGBoost at load; off: XGBoost's own call."""

    # The closed loop: prediction log, monitor thresholds, triggered retraining (DESIGN §8).
    crashed_prediction_log: bool = True
    prediction_log_flush_rows: int = Field(default=5000, ge=1)
    prediction_log_flush_seconds: float = Field(default=10.0, gt=0)
    prediction_log_queue_size: int = Field(default=20_000, ge=1)
    monitor_window_days: int = Field(default=7, ge=1, le=366)
    monitor_min_rows: int = Field(default=200, ge=1)
    monitor_feature_psi: float = Field(default=0.25, gt=0)
    monitor_score_psi: float = Field(default=0.25, gt=0)
    monitor_unseen_rate: float = Field(default=0.05, gt=0, le=1)
    monitor_min_labelled_positives: int = Field(default=20, ge=1)
    monitor_max_roc_auc_drop: float = Field(default=0.05, ge=0, le=1)
    monitor_cooldown_hours: float = Field(default=24.0, ge=0)

    k8s_namespace: str = "crashed"
    kfp_host: str | None = None
    kfp_client_id: str | None = None

    @field_validator("k8s_namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        try:
            return validate_namespace(value, "K8S_NAMESPACE")
        except InputError as error:
            raise ValueError(error.message) from None

    @field_validator("lake_path")
    @classmethod
    def _strip_lake_path(cls, value: str) -> str:
        return value.strip("/")

    @field_validator("gitlab_url", "kfp_host", "bigquery_api_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _fill_platform_defaults(self) -> Settings:
        defaults = _PLATFORM_DEFAULTS[self.crashed_platform]
        for kind, value in defaults.items():
            name = f"crashed_{kind}"
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        return self

    @property
    def warehouse_kind(self) -> WarehouseKind:
        return self.crashed_warehouse  # type: ignore[return-value]

    @property
    def lake_kind(self) -> LakeKind:
        return self.crashed_lake  # type: ignore[return-value]

    @property
    def git_host_kind(self) -> GitHostKind:
        return self.crashed_git_host  # type: ignore[return-value]

    @cached_property
    def home(self) -> Path:
        return self.crashed_home.expanduser().resolve()

    def lake_uri(self, *parts: str) -> str:
        """``gs://<bucket>/<lake_path>/<parts…>``."""
        path = "/".join(p.strip("/") for p in (self.lake_path, *parts) if p.strip("/"))
        return f"gs://{self.lake_bucket}/{path}"

    def pod_env(self) -> dict[str, str]:
        """Non-secret settings a pipeline step's container needs (secrets come from Secrets)."""
        env = {
            "CRASHED_PLATFORM": self.crashed_platform,
            "CRASHED_WAREHOUSE": self.warehouse_kind,
            "CRASHED_LAKE": self.lake_kind,
            "CRASHED_GIT_HOST": self.git_host_kind,
            "CRASHED_MODEL_NAME": self.crashed_model_name,
            "CRASHED_IMAGE": self.crashed_image,
            "GCP_PROJECT": self.gcp_project,
            "WAREHOUSE_DATASET": self.warehouse_dataset,
            "WAREHOUSE_LOCATION": self.warehouse_location,
            "LAKE_BUCKET": self.lake_bucket,
            "LAKE_PATH": self.lake_path,
            "GITLAB_URL": self.gitlab_url,
            "GITLAB_TARGET_BRANCH": self.gitlab_target_branch,
            "K8S_NAMESPACE": self.k8s_namespace,
        }
        for name in type(self).model_fields:
            prefixes = ("train_", "gate_", "monitor_", "shadow_", "report_")
            if name.startswith(prefixes) and getattr(self, name) is not None:
                env[name.upper()] = str(getattr(self, name))
        if self.gitlab_project:
            env["GITLAB_PROJECT"] = self.gitlab_project
        if self.bigquery_api_endpoint:
            env["BIGQUERY_API_ENDPOINT"] = self.bigquery_api_endpoint
        # The monitor step starts training runs through KFP (in-cluster: the ml-pipeline service).
        if self.kfp_host:
            env["KFP_HOST"] = self.kfp_host
        if self.kfp_client_id:
            env["KFP_CLIENT_ID"] = self.kfp_client_id
        return env


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        variable = str(item["loc"][0]).upper() if item["loc"] else "settings"
        value = item.get("input")
        shown = "" if "token" in variable.lower() else f" (got {value!r})"
        problems.append(f"{variable}: {item['msg']}{shown}")
    return "invalid configuration: " + "; ".join(problems)


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; invalid values raise :class:`ConfigError`."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise ConfigError(_describe(error)) from None
