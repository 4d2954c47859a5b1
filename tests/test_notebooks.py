"""Run every course notebook as one pytest case, the way `nbdev_test` does.

nbdev_test prints only "Success."; running each notebook through `nbdev.test.test_nb` here gives one
test case per notebook and pytest's closing count. Heavy cells carry a flag from `tst_flags` in
settings.ini (`#| slow`) and are skipped unless named in DDPM_NB_TEST_FLAGS, e.g.
`DDPM_NB_TEST_FLAGS=slow python -m pytest tests` runs the full course.
"""

import os
from pathlib import Path

import pytest
from nbdev.config import get_config
from nbdev.test import test_nb as run_notebook

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted(p for p in (ROOT / 'nbs').glob('*.ipynb') if not p.name.startswith('_'))


@pytest.mark.parametrize('nb', NBS, ids=[p.stem for p in NBS])
def test_notebook(nb):
    skip = get_config(path=ROOT).tst_flags.split()
    force = os.environ.get('DDPM_NB_TEST_FLAGS', '').split()
    ok, secs = run_notebook(nb, skip_flags=skip, force_flags=force, basepath=ROOT)
    print(f'{nb.name}: {secs:.1f}s')
    assert ok, f'{nb.name} failed; the traceback is above (stderr)'
