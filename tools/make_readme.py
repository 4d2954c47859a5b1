"""Write README.md from nbs/index.ipynb (quarto, and so `nbdev_readme`, cannot be installed offline).

Markdown cells are copied as they are; code cells become ```python blocks; cells whose first line is
`#| hide` are left out. Run `python tools/make_readme.py`; `--check` exits 1 if README.md is stale.
"""

import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render() -> str:
    nb = json.loads((ROOT / 'nbs' / 'index.ipynb').read_text(encoding='utf-8'))
    parts = ['<!-- generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file -->']
    for c in nb['cells']:
        src = ''.join(c['source']).strip()
        if not src or src.startswith('#| hide'):
            continue
        # links to notebooks and images are relative to nbs/; from the README they go through nbs/
        if c['cell_type'] == 'markdown':
            parts.append(re.sub(r'\]\(((?:\w+\.ipynb)|(?:images/[\w./-]+))\)', r'](nbs/\1)', src))
        elif c['cell_type'] == 'code':
            lines = [l for l in src.splitlines() if not l.startswith('#|')]
            parts.append('```python\n' + '\n'.join(lines) + '\n```')
    return '\n\n'.join(parts) + '\n'


if __name__ == '__main__':
    text, out = render(), ROOT / 'README.md'
    if '--check' in sys.argv:
        if out.read_text(encoding='utf-8') != text:
            sys.exit('README.md is out of step with nbs/index.ipynb: run `python tools/make_readme.py` and commit')
        print('README.md is in step with nbs/index.ipynb')
    else:
        out.write_text(text, encoding='utf-8')
        print(f'wrote {out}')
