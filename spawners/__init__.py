"""Profile catalog and the lens spawners (local and Kubernetes)."""
