"""The image's HEALTHCHECK (and compose's): GET /readyz on the port the bot serves on, $PORT (default 3000).

Healthy only on 200: /readyz answers 503 while the database, the migrations or the model are not ready, so
nginx (compose: depends_on ... service_healthy) starts only once the replicas can take traffic. Standard
library only, so it runs in the image's venv without anything else installed.
"""

import os
import sys
import urllib.error
import urllib.request

port = os.environ.get("PORT") or "3000"
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as resp:  # noqa: S310 (fixed http URL)
        sys.exit(0 if resp.status == 200 else 1)
except (urllib.error.URLError, OSError) as exc:
    print(f"readyz on port {port}: {exc}", file=sys.stderr)
    sys.exit(1)
