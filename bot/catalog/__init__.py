"""The service catalog: services, owners, tiers and the dependency graph (Backstage or plain YAML), what it
derives (the probable origin across services, the priority of an incident) and its reload on change."""
