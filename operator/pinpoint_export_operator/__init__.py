"""Kubernetes operator that runs Amazon Pinpoint endpoint exports and copies them to a volume."""

__version__ = "0.1.0"
