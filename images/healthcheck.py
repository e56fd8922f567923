"""Docker HEALTHCHECK for lens images: GET a local URL, healthy on HTTP < 400.

Default: the single-user server's unauthenticated ``<prefix>api`` endpoint on
port 8888 (kubespawner's port). Kubernetes ignores HEALTHCHECK (it uses
probes); this serves `docker run` and other runtimes.
"""

import os
import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/")
    url = argv[1] if len(argv) > 1 else f"http://127.0.0.1:8888{prefix}api"
    try:
        with urllib.request.urlopen(url, timeout=4) as resp:
            return 0 if resp.status < 400 else 1
    except (OSError, urllib.error.URLError) as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
