"""Advice for an incident: similar past incidents and runbooks (the knowledge base), context, the incident chat port."""
