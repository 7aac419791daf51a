"""Cluster resources: the cluster's shape, model sizes, and where a job's engines and
stage actors go."""
