"""Execute notebooks in place like `nbdev_test` does — cells flagged `#| slow` are skipped, not run — and keep the
outputs. For notebooks whose heavy cells have not had a full run yet; `tools/run_nb.sh` runs everything.
Usage: python tools/run_nb_fast.py nbs/10_reproduction.ipynb [...]"""

import sys
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
from fastcore.xtras import working_directory


def _skip(cell):
    return cell.cell_type != 'code' or cell.source.lstrip().startswith('#| slow')


for fn in map(Path, sys.argv[1:]):
    nb = read_nb(fn)
    with working_directory(fn.parent):
        CaptureShell(fn).run_all(nb, exc_stop=True, preproc=_skip)
    write_nb(nb, fn)
    print(f'executed {fn} (slow cells skipped)')
