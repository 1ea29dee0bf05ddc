"""Remediation: typed actions, policy, the approval lifecycle and executors (see base.py)."""
