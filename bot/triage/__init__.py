"""Triage: dedup, flapping, grouping into incidents, content templates, model/infra correlation, noise."""
