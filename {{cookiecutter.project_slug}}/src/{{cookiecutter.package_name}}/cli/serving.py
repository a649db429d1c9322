"""The commands the serving image runs: they import the serving runtime only (no pandas, scikit-learn or MLflow)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from {{ cookiecutter.package_name }}.cli.registry import arg, command
from {{ cookiecutter.package_name }}.contracts.errors import DONE, NO, ProjectError


@command("serve", arg("--model-dir", help="directory with model.onnx and metadata.json (default: MODEL_DIR)"))
def serve(args: argparse.Namespace) -> int:
    """Serve the exported ONNX model over HTTP (settings from the environment: see serving.settings)."""
    from {{ cookiecutter.package_name }}.serving.server import run
    from {{ cookiecutter.package_name }}.serving.settings import Settings

    settings = Settings.from_env(model_dir=Path(args.model_dir) if args.model_dir else None)
    if run(settings) != DONE:
        raise ProjectError(f"cannot listen on {settings.host}:{settings.port} (the log above says why)")
    return DONE


@command("healthcheck", arg("--timeout", type=float, default=2.0, help="seconds to wait for /readyz"))
def healthcheck(args: argparse.Namespace) -> int:
    """Exit 0 if the server on HOST:PORT is ready (the image's HEALTHCHECK; no HTTP client in the image)."""
    import urllib.request

    from {{ cookiecutter.package_name }}.serving.settings import Settings

    settings = Settings.from_env()
    host = "127.0.0.1" if settings.host in ("", "0.0.0.0", "::") else settings.host
    if ":" in host:  # an IPv6 address
        host = "[" + host + "]"
    url = f"http://{host}:{settings.port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as response:
            return DONE if response.status == 200 else NO
    except OSError as exc:  # refused, timed out, or an HTTP error status such as 503: the answer is "not ready"
        print(f"not ready: {url}: {exc}", file=sys.stderr)
        return NO
