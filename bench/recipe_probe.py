"""Recipe probe (issue 15, item 7): can a cheaper digits recipe keep the main job's sample quality?

Trains the 'digits' U-Net with the main job's recipe (`TrainConfig.recipe('digits')`: 2000 steps, batch 32, lr 4e-4,
100 warm-up steps) changed by key=value overrides, then scores its EMA model as notebook 09 does: the digits Fréchet
distance of DDIM-50 samples against the test split, with the floor (mean ± sd over subsets of real digits) at each n.
One JSON line per run is printed and appended to --out.

    python bench/recipe_probe.py base
    python bench/recipe_probe.py s1000_lr8e-4 steps=1000 lr=8e-4
    python bench/recipe_probe.py b16 batch_size=16 --out bench/results/recipes_s4.jsonl
"""

from __future__ import annotations
import argparse, dataclasses, json, time
from pathlib import Path

from ddpm_nb.config import TrainConfig
from ddpm_nb.evaluation import evaluate
from ddpm_nb.training import train

TYPES = {'steps': int, 'batch_size': int, 'lr': float, 'warmup_steps': int, 'dropout': float, 'seed': int}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('name')
    p.add_argument('overrides', nargs='*', help='key=value, keys: ' + ', '.join(TYPES))
    p.add_argument('--n', default='200,500', help='sample sizes for the FD (comma-separated)')
    p.add_argument('--out', type=Path, default=None)
    a = p.parse_args(argv)
    cfg = TrainConfig.recipe('digits')
    kw = {k: TYPES[k](v) for k, v in (o.split('=', 1) for o in a.overrides)}
    cfg = dataclasses.replace(cfg, **kw)
    t0 = time.time()
    tr = train(cfg, progress=False)
    secs = time.time() - t0
    row = dict(name=a.name, overrides=kw, train_s=round(secs, 1), steps_per_s=round(cfg.steps / secs, 2), loss=round(tr.history[-1][1], 4))
    for n in (int(x) for x in a.n.split(',')):
        r = evaluate(tr.ema, tr.diffusion, data='digits', bpd=False, n_samples=n, sampler='ddim', steps=50, progress=False, device='cpu')
        row[f'fd{n}'], row[f'floor{n}'] = round(r['fd'], 1), f'{r["fd_floor"]:.1f} ± {r["fd_floor_sd"]:.1f}'
    print(json.dumps(row, ensure_ascii=False), flush=True)
    if a.out:
        with a.out.open('a') as f:
            f.write(json.dumps(row, ensure_ascii=False) + '\n')


if __name__ == '__main__':
    main()
