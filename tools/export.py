"""`nbdev_export` for a project whose notebooks also export into modules that no notebook owns with `#| default_exp`
(e.g. `#| export respace` from 08). nbdev 2 asserts such a file exists and then only ever appends to it, so a bare
`nbdev_export` either fails (file missing) or adds another copy on every run. Here the first notebook (in name order) that
exports into an unowned module writes it fresh and later ones append, so the result is the same on every run.
Always exports every notebook (a single-notebook export would drop the other notebooks' part of a shared module).
Also ends every module with a newline (nbdev's appends do not). Usage: python tools/export.py (from the project root; `nbdev_export` in this project means this)"""

from pathlib import Path
import nbdev.maker as mk
from nbdev.doclinks import nbdev_export

_made, _init = set(), mk.ModuleMaker.__init__


def _init_once(self, dest, name, nb_path, is_new=True, parse=True, solo_nb=False):
    fname = (Path(dest) / (name.replace('.', '/') + '.py')).resolve()
    if not is_new and fname not in _made:
        is_new = True  # the first writer this run creates the module
    _made.add(fname)
    _init(self, dest, name, nb_path, is_new=is_new, parse=parse, solo_nb=solo_nb)


mk.ModuleMaker.__init__ = _init_once


def main():
    nbdev_export.__wrapped__() if hasattr(nbdev_export, '__wrapped__') else nbdev_export(path=None, procs=None)
    for f in _made:  # nbdev's appends leave a module without its final newline (ruff W292)
        if f.exists() and not f.read_text(encoding='utf-8').endswith('\n'):
            with f.open('a', encoding='utf-8') as fh:
                fh.write('\n')


if __name__ == '__main__':
    main()
