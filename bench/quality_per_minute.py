"""Benchmark 2 — CPU, quality per minute: the digits Fréchet distance each library reaches in the same training time.

Both sides train the *same* U-Net (ddpm_nb's 'digits' preset and its diffusers UNet2DModel twin, identical parameter
count) on the bundled digits for `--minutes` of training time each:

  * ddpm_nb: `Trainer` with the course's CPU recipe for the digits — the command line's `DIGITS_DEFAULTS` (batch 32,
    AdamW lr 4e-4, 100 warm-up steps) on top of `TrainConfig()` (grad clip 1, EMA 0.9999 with warm-up, dropout 0.1
    from the preset); `--nb-recipe paper` uses plain `TrainConfig()` (batch 64, lr 2e-4, 200 warm-up steps) instead;
  * diffusers: its train_unconditional example's recipe (AdamW lr 1e-4, betas (0.95, 0.999), weight decay 1e-6,
    500 warm-up steps then cosine decay — here over the time budget, since the step count is not known in advance —,
    grad clip 1, EMAModel(inv_gamma=1, power=3/4, max 0.9999), batch 16, DDPMScheduler 1000 linear, epsilon, MSE).

The two trainings are interleaved in chunks of `--chunk-seconds` (A B, B A, ...) so both see the same machine load; each
side's budget counts only the time spent in its own training steps. Afterwards each side's EMA model is sampled with the
*same* sampler and seed (ddpm_nb's `sample`, DDIM 50 steps by default; the diffusers model is wrapped as
`model(x_t, t)` — both use ε-prediction on the same 1000-step linear schedule), and notebook 09's
`sample_quality` gives the Fréchet distance to the digits test split (lower is better; the floor is the FD of
as many real training digits, printed alongside).

    python bench/quality_per_minute.py                 # 5 minutes each (about 12 minutes in all with sampling)
    python bench/quality_per_minute.py --minutes 1     # a quick check
"""

from __future__ import annotations
import argparse, json, sys, time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PRESETS, DiffusersAsModel, DiffusersRecipe, check_same_architecture, loadavg, print_hardware  # noqa: E402
from ddpm_nb.data import get_dataset  # noqa: E402
from ddpm_nb.evaluation import sample_quality  # noqa: E402
from ddpm_nb.sampling import sample  # noqa: E402
from ddpm_nb.cli import DIGITS_DEFAULTS  # noqa: E402
from ddpm_nb.training import TrainConfig, Trainer, dataset_tensor  # noqa: E402


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--minutes', type=float, default=5.0, help='training time budget per library, in minutes (default 5)')
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (default: torch default = cores)')
    p.add_argument('--chunk-seconds', type=float, default=10.0, help='alternate the libraries every this many seconds')
    p.add_argument('--n-samples', type=int, default=512, help='samples per model for the Fréchet distance')
    p.add_argument('--sampler', choices=('ddim', 'ancestral'), default='ddim')
    p.add_argument('--sample-steps', type=int, default=50, help='sampling steps (ancestral: 1000 is the paper)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument(
        '--nb-variant',
        action='append',
        default=[],
        metavar='NAME:KEY=VAL,...',
        help="also train ddpm_nb with these TrainConfig overrides, e.g. 'b16:batch_size=16,lr=4e-4,warmup_steps=50' "
        '(repeatable; every variant gets the same budget and is interleaved with the others)',
    )
    p.add_argument(
        '--nb-recipe',
        choices=('course', 'paper'),
        default='course',
        help="ddpm_nb's main side: the course's digits recipe (the CLI's defaults) or plain TrainConfig() (default course)",
    )
    p.add_argument('--json', type=Path, default=None)
    return p.parse_args(argv)


def _value(v: str):
    "'true'/'false'/'none' → True/False/None, then int, float, or the string itself."
    low = v.lower()
    if low in ('true', 'false', 'none'):
        return {'true': True, 'false': False, 'none': None}[low]
    for typ in (int, float):
        try:
            return typ(v)
        except ValueError:
            pass
    return v


def main(argv=None):
    a = parse(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    print('command: python bench/quality_per_minute.py ' + ' '.join(sys.argv[1:] if argv is None else argv))
    hw = print_hardware('cpu')
    budget = a.minutes * 60
    data = dataset_tensor(get_dataset('digits'))

    recipe = dict(DIGITS_DEFAULTS) if a.nb_recipe == 'course' else {}
    nb = Trainer(TrainConfig(steps=10**9, log_every=10**9, ckpt_every=10**9, seed=a.seed, **recipe), data=data)
    nb_name = f'ddpm_nb {a.nb_recipe} recipe'
    df = DiffusersRecipe(PRESETS['digits'], data, batch_size=16, time_budget=budget, seed=a.seed)
    n_nb, n_df = check_same_architecture(nb.model, df.model)
    print(f'parameters: ddpm_nb {n_nb:,}  diffusers {n_df:,}; budget {budget:.0f} s of training each', flush=True)

    sides = {
        nb_name: dict(step=nb.step, batch=nb.cfg.batch_size, used=0.0, steps=0, losses=[], model=nb.ema, over=recipe),
        'diffusers recipe': dict(step=df.step, batch=df.batch_size, used=0.0, steps=0, losses=[], model=None),
    }
    for spec in a.nb_variant:
        name, _, kv = spec.partition(':')
        over = {}
        for item in filter(None, kv.split(',')):
            k, _, v = item.partition('=')
            over[k] = _value(v)
        tr = Trainer(TrainConfig(**{**dict(steps=10**9, log_every=10**9, ckpt_every=10**9, seed=a.seed), **over}), data=data)
        sides[f'ddpm_nb {name}'] = dict(step=tr.step, batch=tr.cfg.batch_size, used=0.0, steps=0, losses=[], model=tr.ema, over=over)
    names, r, t_all = list(sides), 0, time.perf_counter()
    while any(s['used'] < budget for s in sides.values()):
        for k in names if r % 2 == 0 else names[::-1]:
            s = sides[k]
            chunk_end = min(budget, s['used'] + a.chunk_seconds)
            while s['used'] < chunk_end:
                t0 = time.perf_counter()
                loss = s['step']()
                s['losses'].append(float(loss))
                s['used'] += time.perf_counter() - t0
                s['steps'] += 1
        r += 1
        print(
            f'  after {r} rounds: '
            + '; '.join(
                f"{k} {s['used']:.0f} s, {s['steps']} steps, loss(last 50) {sum(s['losses'][-50:]) / len(s['losses'][-50:]):.4f}"
                for k, s in sides.items()
            )
            + f'   (load {loadavg()})',
            flush=True,
        )
    train_wall = time.perf_counter() - t_all

    sides['diffusers recipe']['model'] = DiffusersAsModel(df.ema_model())
    rows = []
    for k, s in sides.items():
        m = s['model']
        t0 = time.perf_counter()
        x = sample(m, nb.diffusion, (a.n_samples, 1, 16, 16), sampler=a.sampler, steps=a.sample_steps, seed=a.seed, progress=False)
        q = sample_quality(x)
        rows.append(
            dict(
                what=k,
                overrides=s.get('over', {}),
                train_seconds=round(s['used'], 1),
                steps=s['steps'],
                batch=s['batch'],
                images_seen=s['steps'] * s['batch'],
                final_loss=round(sum(s['losses'][-50:]) / len(s['losses'][-50:]), 4),
                fd=round(q['fd'], 2),
                is_score=round(q['is_score'], 2),
                class_hist=q['class_hist'],
                sample_seconds=round(time.perf_counter() - t0, 1),
            )
        )
        print(
            f"  {k}: FD {q['fd']:.2f}, IS {q['is_score']:.2f}, classes {q['class_hist']}  (sampling {rows[-1]['sample_seconds']} s)",
            flush=True,
        )
    g = torch.Generator().manual_seed(a.seed)
    real = data[torch.randperm(len(data), generator=g)[: min(a.n_samples, len(data))]]
    floor = sample_quality(real)['fd']

    nbr, dfr = rows[:2]
    print(
        f'\nresults after {a.minutes:g} min of training each ({train_wall:.0f} s wall for both, load average now {loadavg()}); '
        f'sampler {a.sampler} {a.sample_steps} steps, {a.n_samples} samples, FD to the test split (floor: {len(real)} real training digits = {floor:.2f})'
    )
    for row in rows:
        print(
            f"  {row['what']:<24s} steps {row['steps']:>6d} × batch {row['batch']:>3d} = {row['images_seen']:>8,d} images   "
            f"loss {row['final_loss']:.4f}   FD {row['fd']:8.2f}   IS {row['is_score']:.2f}"
        )
    ratio = nbr['fd'] / dfr['fd']
    ex = lambda r: max(r['fd'] - floor, 1e-9)
    print(
        f'  FD ratio {nb_name} / diffusers = {ratio:.3f}  (target: at most 1/3 = 0.333 at 5 minutes); '
        f'ratio of FD above the floor = {ex(nbr) / ex(dfr):.3f}'
    )
    for row in rows[2:]:
        print(
            f"  FD ratio {row['what']} / diffusers = {row['fd'] / dfr['fd']:.3f}, above the floor "
            f"{ex(row) / ex(dfr):.3f}   ({row['overrides']})"
        )
    if dfr['fd'] / 3 < floor:
        print(
            f"  note: a third of diffusers' FD ({dfr['fd'] / 3:.1f}) is below the floor of {a.n_samples} real digits ({floor:.1f}), "
            'which no model can reach reliably at this sample size: compare the FD above the floor'
        )
    hw['loadavg_end'] = loadavg()
    if a.json:
        a.json.write_text(
            json.dumps(
                dict(
                    hardware=hw,
                    args=vars(a) | {'json': str(a.json)},
                    rows=rows,
                    fd_floor=round(floor, 2),
                    fd_ratio=round(ratio, 3),
                    fd_above_floor_ratio=round(ex(nbr) / ex(dfr), 3),
                    train_wall_s=round(train_wall, 1),
                ),
                indent=2,
            )
        )
    return rows


if __name__ == '__main__':
    main()
