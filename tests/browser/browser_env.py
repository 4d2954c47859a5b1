"Paths and versions shared by the browser test and its conftest."

import importlib.metadata as md
import os
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ARTIFACTS = ROOT / 'ci-artifacts' / 'browser'  # git-ignored; CI keeps it as an artifact
CHROMIUM = os.environ.get('DDPM_NB_CHROMIUM', '/usr/bin/chromium')


def versions() -> dict:
    "The versions that decide what a reader sees in JupyterLab."
    out = {}
    for pkg in ('jupyterlab', 'jupyter_server', 'ipykernel', 'ipywidgets', 'jupyterlab_widgets', 'playwright'):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = 'not installed'
    try:
        out['chromium'] = subprocess.run([CHROMIUM, '--version'], capture_output=True, text=True, timeout=30).stdout.strip() or '?'
    except (OSError, subprocess.SubprocessError):
        out['chromium'] = f'not found at {CHROMIUM}'
    return out
