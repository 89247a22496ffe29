"""Deploying the inference service to Kubernetes: manifests, the rollout, its status."""
