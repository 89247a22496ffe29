"""Build adapters once from settings; everything below the CLI receives them ready-made."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from crashed.ports import Cluster, GitHost, Lake, Orchestrator, Warehouse
from crashed.settings import Settings


@dataclass
class Adapters:
    """The adapters selected by ``settings``, each created on first use and then reused."""

    settings: Settings
    _overrides: dict[str, object] = field(default_factory=dict)

    @cached_property
    def lake(self) -> Lake:
        if "lake" in self._overrides:
            return self._overrides["lake"]  # type: ignore[return-value]
        s = self.settings
        if s.lake_kind == "gcs":
            from crashed.adapters.gcs_lake import GCSLake

            return GCSLake(project=s.gcp_project)
        from crashed.adapters.local_lake import LocalLake

        return LocalLake(s.home / "lake")

    @cached_property
    def warehouse(self) -> Warehouse:
        if "warehouse" in self._overrides:
            return self._overrides["warehouse"]  # type: ignore[return-value]
        s = self.settings
        if s.warehouse_kind == "bigquery":
            from crashed.adapters.bigquery_warehouse import BigQueryWarehouse

            return BigQueryWarehouse(
                project=s.gcp_project,
                dataset=s.warehouse_dataset,
                location=s.warehouse_location,
                lake=self.lake,
                api_endpoint=s.bigquery_api_endpoint,
            )
        from crashed.adapters.duckdb_warehouse import DuckDBWarehouse

        return DuckDBWarehouse(
            s.home / "warehouse.duckdb", lake=self.lake, lock_timeout=s.warehouse_lock_timeout
        )

    @cached_property
    def git_host(self) -> GitHost:
        if "git_host" in self._overrides:
            return self._overrides["git_host"]  # type: ignore[return-value]
        s = self.settings
        if s.git_host_kind == "gitlab":
            from crashed.adapters.gitlab_githost import GitLabHost

            return GitLabHost.from_settings(s)
        from crashed.adapters.local_githost import LocalGitHost

        return LocalGitHost.from_settings(s)

    def cluster(self, context: str | None = None) -> Cluster:
        """The Kubernetes cluster of kubeconfig ``context`` (default: current, or in-cluster)."""
        if "cluster" in self._overrides:
            return self._overrides["cluster"]  # type: ignore[return-value]
        from crashed.adapters.k8s_cluster import KubernetesCluster

        return KubernetesCluster.from_environment(context)

    def orchestrator(
        self,
        kind: str | None = None,
        *,
        host: str | None = None,
        client_id: str | None = None,
        namespace: str | None = None,
    ) -> Orchestrator:
        """Kubeflow Pipelines when ``kind`` is ``kfp`` (by default: when a KFP host is given or
        configured, or the platform is gcp); else this machine (detached ``run-local`` runs)."""
        if "orchestrator" in self._overrides:
            return self._overrides["orchestrator"]  # type: ignore[return-value]
        s = self.settings
        if kind is None:
            kind = "kfp" if host or s.kfp_host or s.crashed_platform == "gcp" else "local"
        if kind == "kfp":
            from crashed.adapters.kfp_orchestrator import KfpOrchestrator

            return KfpOrchestrator(
                host or s.kfp_host, client_id or s.kfp_client_id, namespace or s.k8s_namespace
            )
        from crashed.adapters.local_orchestrator import LocalOrchestrator

        return LocalOrchestrator(s.home)


def build_adapters(settings: Settings, **overrides: object) -> Adapters:
    """Adapters for ``settings``; ``overrides`` (lake=…, warehouse=…, git_host=…) win."""
    return Adapters(settings, dict(overrides))
