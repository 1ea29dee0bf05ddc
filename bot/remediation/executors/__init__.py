"""One module per action type (webhook, mlflow, kubernetes). Each declares the settings it reads and a
``from_settings`` factory, listed with one line in ``bot/remediation/registry.py::EXECUTOR_FACTORIES``."""
