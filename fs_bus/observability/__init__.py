"""What a node tells operators: Prometheus metrics and function log lines on the logs topic."""
