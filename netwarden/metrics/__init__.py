"""Prometheus metrics: the exposition format, what is counted, the standalone exporter."""
