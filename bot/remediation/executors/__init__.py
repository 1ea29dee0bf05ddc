"""One module per action type (webhook, mlflow, kubernetes); each is registered with one line in the
composition root, ``incident_bot/runtime.py::build_executors``, and only when its settings are present."""
