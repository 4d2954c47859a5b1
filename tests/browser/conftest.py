"""Keep the JupyterLab browser test out of the plain notebook suite.

`python -m pytest tests` (the nbdev-style suite) collects this folder but skips its tests: the browser
test needs Chromium, Playwright and several minutes. Ask for it by path, `python -m pytest tests/browser`
(or `tools/browser_test.sh`), or set DDPM_NB_BROWSER=1.
"""

import os
from pathlib import Path

import pytest

from browser_env import ARTIFACTS, HERE, versions


def _targeted(config) -> bool:
    if os.environ.get('DDPM_NB_BROWSER') == '1':
        return True
    for arg in config.args:
        p = Path(str(arg).split('::')[0]).resolve()
        if p == HERE or HERE in p.parents:
            return True
    return False


def pytest_collection_modifyitems(config, items):
    if _targeted(config):
        return
    skip = pytest.mark.skip(reason='browser test: run `python -m pytest tests/browser` (or tools/browser_test.sh)')
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


def pytest_report_header(config):
    if not _targeted(config):
        return None
    return [
        'browser test versions: ' + ', '.join(f'{k} {v}' for k, v in versions().items()),
        f'browser test artifacts (screenshots, logs): {ARTIFACTS}',
    ]
