"""The training pipeline: ops, DAG, kfp compilation, local runner and deployment."""
