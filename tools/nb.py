"""Read and edit notebook cells from the shell, by index or cell id (for people and scripts without a notebook UI).

  python tools/nb.py show NB [SEL ...]          print cells (SEL: index, id, or a:b index range; default all), with index and id
  python tools/nb.py set NB SEL [FILE]          replace the source of one cell with FILE (or stdin); outputs are cleared
  python tools/nb.py insert NB SEL [FILE] [--md] [--before]   insert a new cell after (or before) SEL from FILE or stdin
  python tools/nb.py delete NB SEL [SEL ...]    delete cells
  python tools/nb.py grep NB PATTERN            cells whose source matches the regular expression

A cell's source that starts with the line `%%md` is written as a Markdown cell (the line is dropped), with `set` too.
"""

import json, re, sys, uuid
from pathlib import Path


def _load(p):
    return json.loads(Path(p).read_text(encoding='utf-8'))


def _save(p, nb):
    Path(p).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')


def _index(nb, sel):
    cells = nb['cells']
    if re.fullmatch(r'-?\d+', sel):
        return [int(sel) % len(cells)]
    if re.fullmatch(r'\d*:\d*', sel):
        a, b = sel.split(':')
        return list(range(int(a or 0), int(b or len(cells))))
    hits = [i for i, c in enumerate(cells) if c.get('id') == sel]
    if not hits:
        sys.exit(f'no cell {sel!r}')
    return hits


def _cell(src, md=False):
    if src.startswith('%%md\n'):
        md, src = True, src[5:]
    lines = src.splitlines(keepends=True)
    if lines and lines[-1].endswith('\n'):
        lines[-1] = lines[-1][:-1]
    c = {'cell_type': 'markdown' if md else 'code', 'id': uuid.uuid4().hex[:8], 'metadata': {}, 'source': lines}
    if not md:
        c.update(execution_count=None, outputs=[])
    return c


def _read(args):
    return Path(args[0]).read_text(encoding='utf-8') if args else sys.stdin.read()


def main(argv):
    cmd, p, *rest = argv
    nb = _load(p)
    cells = nb['cells']
    if cmd == 'show':
        idx = [i for s in rest for i in _index(nb, s)] if rest else range(len(cells))
        for i in idx:
            c = cells[i]
            print(f'--- [{i}] {c["cell_type"]} id={c.get("id")} outputs={len(c.get("outputs", []))}')
            print(''.join(c['source']))
    elif cmd == 'grep':
        for i, c in enumerate(cells):
            if re.search(rest[0], ''.join(c['source'])):
                print(f'[{i}] {c["cell_type"]} id={c.get("id")}')
    elif cmd == 'set':
        (i,) = _index(nb, rest[0])
        new = _cell(_read(rest[1:]))
        new['id'] = cells[i].get('id', new['id'])
        cells[i] = new
        _save(p, nb)
    elif cmd == 'insert':
        flags = {a for a in rest if a.startswith('--')}
        args = [a for a in rest if not a.startswith('--')]
        (i,) = _index(nb, args[0])
        new = _cell(_read(args[1:]), md='--md' in flags)
        cells.insert(i if '--before' in flags else i + 1, new)
        _save(p, nb)
        print(new['id'])
    elif cmd == 'delete':
        drop = {i for s in rest for i in _index(nb, s)}
        nb['cells'] = [c for i, c in enumerate(cells) if i not in drop]
        _save(p, nb)
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main(sys.argv[1:]) if len(sys.argv) > 2 else sys.exit(__doc__)
