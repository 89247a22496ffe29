"""Install the ``crashed`` package from ``src/`` with the ``crashed`` console command."""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent

setup(
    name="crashed",
    version="0.1.0",
    description="Git-reviewed MLOps for the VicRoads alcohol-related crash classifier",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8")
    if (ROOT / "README.md").exists()
    else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    package_dir={"": "src"},
    packages=find_packages("src"),
    package_data={"crashed": ["py.typed", "deploy_assets/*", "serving/*.json", "synthetic/*.json"]},
    include_package_data=True,
    install_requires=[
        "click>=8.1",
        "pydantic>=2.7",
        "pydantic-settings>=2.3",
        "numpy>=1.26",
        "pandas>=2.2",
        "pyarrow>=15",
        "duckdb>=1.1",
        "xgboost-cpu>=2.1",
        "scikit-learn>=1.5",
        "google-cloud-bigquery>=3.25",
        "google-cloud-storage>=2.18",
        "db-dtypes>=1.2",
        "kfp>=2.8,<3",
        "kfp-kubernetes>=1.2",
        "kubernetes>=28",
        "python-gitlab>=4.10",
        "flask>=3.0",
        "gunicorn>=22",
        "prometheus-client>=0.20",
        "python-json-logger>=3.1",
        "requests>=2.31",
        "PyYAML>=6",
        "tenacity>=8.2",
        "matplotlib>=3.8",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "pytest-xdist>=3.5",
            "hypothesis>=6.100",
            "gcp-storage-emulator>=2024.8",
            "kubernetes-validate>=1.30",
            "werkzeug>=3",
            "openapi-spec-validator>=0.7",
        ],
        "dev": ["ruff>=0.6", "pytest>=8", "pyinstrument>=4.6"],
    },
    entry_points={"console_scripts": ["crashed=crashed.cli:main"]},
)
