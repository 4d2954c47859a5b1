"""Benchmark 1 — CPU, digits-sized model: ddpm_nb against 🤗 diffusers, same architecture, same batch, one process.

Rows (each library timed alternately, A B / B A / ..., medians of --repeats):
  * training images/s at batch --batch (ddpm_nb: `Trainer.step` with its CPU defaults; diffusers: UNet2DModel +
    DDPMScheduler with the train_unconditional recipe — AdamW, cosine warm-up schedule, grad clipping, EMAModel);
    --variants adds ddpm_nb with channels_last=True and diffusers with channels_last (same change on both sides);
  * time to sample 64 images with 1000 ancestral steps (ddpm_nb `sample(FastDenoiser(model), ..., 'ancestral')`, i.e. its
    CPU default of a channels-last model, which is what `load_run` returns — vs the DDPMPipeline loop:
    DDPMScheduler.step over its 1000 timesteps);
  * time to sample 64 images with 50 DDIM steps (ddpm_nb `sample(..., 'ddim', steps=50)` vs DDIMScheduler, 50 steps).

Both samplers run the same weights (the diffusers twin's random init, copied into ddpm_nb's UNet with
`load_diffusers_unet_weights`), so they compute the same network.

    python bench/bench_cpu.py                          # the full benchmark (1000-step sampling rows take minutes)
    python bench/bench_cpu.py --threads 1 --ancestral-steps 200   # a loaded machine: 1 thread, time 200 of the 1000
                                                       # ancestral steps and scale ×5 (reported as extrapolated)
"""

from __future__ import annotations
import argparse, dataclasses, json, sys, time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    PRESETS,
    DiffusersRecipe,
    alternate,
    check_same_architecture,
    diffusers_twin,
    loadavg,
    median,  # noqa: E402
    print_hardware,
    spread,
)
from ddpm_nb.data import get_dataset  # noqa: E402
from ddpm_nb.diffusion import GaussianDiffusion  # noqa: E402
from ddpm_nb.models import UNet  # noqa: E402
from ddpm_nb.interop import load_diffusers_unet_weights  # noqa: E402
from ddpm_nb.sampling import FastDenoiser, p_sample_loop_progressive, sample  # noqa: E402
from ddpm_nb.training import TrainConfig, Trainer, dataset_tensor  # noqa: E402


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (default: torch default = cores)')
    p.add_argument('--batch', type=int, default=64, help='training batch, both libraries (default 64, ddpm_nb default)')
    p.add_argument('--train-steps', type=int, default=5, help='optimizer steps per timed training repeat')
    p.add_argument('--repeats', type=int, default=5, help='timed repeats per library for training')
    p.add_argument('--sample-repeats', type=int, default=3, help='timed repeats per library for sampling')
    p.add_argument('--n', type=int, default=64, help='images to sample')
    p.add_argument(
        '--ancestral-steps', type=int, default=1000, help='time this many of the 1000 ancestral steps and scale to 1000 (default: all 1000)'
    )
    p.add_argument('--ddim-steps', type=int, default=50)
    p.add_argument('--variants', action='store_true', help='also time channels_last on both sides')
    p.add_argument('--skip-train', action='store_true')
    p.add_argument('--skip-sample', action='store_true')
    p.add_argument('--json', type=Path, default=None, help='write the results here as JSON')
    return p.parse_args(argv)


# -- training ----------------------------------------------------------------------------------------------------------
def bench_train(a, data, rows):
    cfg = PRESETS['digits']
    base = TrainConfig(batch_size=a.batch, log_every=10**9, ckpt_every=10**9)
    runners = {'ddpm_nb (CPU defaults)': Trainer(base, data=data)}
    diff = {'diffusers (train_unconditional recipe)': DiffusersRecipe(cfg, data, batch_size=a.batch)}
    if a.variants:
        runners['ddpm_nb channels_last'] = Trainer(dataclasses.replace(base, channels_last=True), data=data)
        diff['diffusers channels_last'] = DiffusersRecipe(cfg, data, batch_size=a.batch, channels_last=True)
    nb0, df0 = next(iter(runners.values())), next(iter(diff.values()))
    n_nb, n_df = check_same_architecture(nb0.model, df0.model)
    print(f'parameters: ddpm_nb {n_nb:,}  diffusers {n_df:,}', flush=True)
    objs = {**runners, **diff}
    fns = {k: (lambda o=o: [o.step() for _ in range(a.train_steps)]) for k, o in objs.items()}
    for f in fns.values():
        f()  # warm-up (allocator, oneDNN primitives)
    times = alternate(fns, a.repeats)
    ref = median(times['diffusers (train_unconditional recipe)'])
    for k, v in times.items():
        ips = a.batch * a.train_steps / median(v)
        rows.append(
            dict(
                bench='train',
                what=k,
                batch=a.batch,
                images_per_s=round(ips, 1),
                median_s=round(median(v), 4),
                spread_s=spread(v),
                ratio_vs_diffusers=round(ref / median(v), 3),
                params=n_nb if k.startswith('ddpm') else n_df,
            )
        )


# -- sampling ----------------------------------------------------------------------------------------------------------
def diffusers_ancestral(unet, n, steps_run, seed=0):
    "DDPMPipeline's loop: DDPMScheduler (1000 linear betas, fixed_small variance, clip_sample) over its 1000 timesteps."
    from diffusers import DDPMScheduler

    sch = DDPMScheduler(num_train_timesteps=1000, beta_schedule='linear')
    sch.set_timesteps(1000)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, unet.config.in_channels, unet.config.sample_size, unet.config.sample_size), generator=g)
    with torch.no_grad():
        for t in sch.timesteps[:steps_run]:
            x = sch.step(unet(x, t).sample, t, x, generator=g).prev_sample
    return x


def diffusers_ddim(unet, n, steps, seed=0):
    "DDIMPipeline's loop: DDIMScheduler (1000 linear betas), `steps` timesteps, eta 0."
    from diffusers import DDIMScheduler

    sch = DDIMScheduler(num_train_timesteps=1000, beta_schedule='linear')
    sch.set_timesteps(steps)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, unet.config.in_channels, unet.config.sample_size, unet.config.sample_size), generator=g)
    with torch.no_grad():
        for t in sch.timesteps:
            x = sch.step(unet(x, t).sample, t, x, eta=0.0, generator=g).prev_sample
    return x


def nb_ancestral(model, diffusion, n, steps_run, seed=0):
    "ddpm_nb.sampling.sample(..., 'ancestral'); with steps_run < 1000, the same loop (p_sample_loop_progressive) cut short."
    if steps_run >= diffusion.num_timesteps:
        return sample(model, diffusion, n, sampler='ancestral', seed=seed, progress=False)
    g = torch.Generator().manual_seed(seed)
    x = None
    for i, out in enumerate(p_sample_loop_progressive(model, diffusion, (n, 1, 16, 16), generator=g)):
        x = out['sample']
        if i + 1 == steps_run:
            break
    return x


def bench_sample(a, rows):
    cfg = PRESETS['digits']
    torch.manual_seed(0)
    unet = diffusers_twin(cfg).eval()
    # ddpm_nb as a user samples it: `load_run` hands back a channels-last model on CPU, the same as FastDenoiser's CPU defaults
    ours = FastDenoiser(load_diffusers_unet_weights(UNet(cfg), unet.state_dict())).eval()
    diffusion = GaussianDiffusion('linear', 1000)
    k = min(a.ancestral_steps, 1000)
    scale = 1000 / k
    label = '1000 ancestral steps' + ('' if k == 1000 else f' (timed {k} of 1000, ×{scale:g})')
    with torch.no_grad():  # warm-up: a few steps on each side
        nb_ancestral(ours, diffusion, a.n, 3)
        diffusers_ancestral(unet, a.n, 3)
    times = alternate(
        {
            'ddpm_nb ancestral': lambda: nb_ancestral(ours, diffusion, a.n, k),
            'diffusers DDPMScheduler': lambda: diffusers_ancestral(unet, a.n, k),
        },
        a.sample_repeats,
    )
    ref = median(times['diffusers DDPMScheduler'])
    for name, v in times.items():
        rows.append(
            dict(
                bench='sample',
                what=f'{name}: {a.n} images, {label}',
                seconds=round(median(v) * scale, 2),
                spread_s=spread([s * scale for s in v]),
                ratio_vs_diffusers=round(ref / median(v), 3),
                extrapolated=k != 1000,
            )
        )
    times = alternate(
        {
            'ddpm_nb ddim': lambda: sample(ours, diffusion, a.n, sampler='ddim', steps=a.ddim_steps, eta=0.0, progress=False),
            'diffusers DDIMScheduler': lambda: diffusers_ddim(unet, a.n, a.ddim_steps),
        },
        a.sample_repeats,
    )
    ref = median(times['diffusers DDIMScheduler'])
    for name, v in times.items():
        rows.append(
            dict(
                bench='sample',
                what=f'{name}: {a.n} images, {a.ddim_steps} DDIM steps',
                seconds=round(median(v), 2),
                spread_s=spread(v),
                ratio_vs_diffusers=round(ref / median(v), 3),
                extrapolated=False,
            )
        )


def main(argv=None):
    a = parse(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    print('command: python bench/bench_cpu.py ' + ' '.join(sys.argv[1:] if argv is None else argv))
    hw = print_hardware('cpu')
    t0 = time.perf_counter()
    rows = []
    if not a.skip_train:
        bench_train(a, dataset_tensor(get_dataset('digits')), rows)
    if not a.skip_sample:
        bench_sample(a, rows)
    print(
        f'\nresults (ratio = diffusers time / ddpm_nb time: > 1 means ddpm_nb is faster); load average now {loadavg()}; '
        f'{time.perf_counter() - t0:.0f} s in all'
    )
    for r in rows:
        if r['bench'] == 'train':
            print(
                f"  train  batch {r['batch']:>3}  {r['what']:<40s} {r['images_per_s']:8.1f} img/s   ratio {r['ratio_vs_diffusers']:.2f}   (spread {r['spread_s']} s per {a.train_steps} steps)"
            )
        else:
            print(f"  sample {r['what']:<70s} {r['seconds']:8.2f} s   ratio {r['ratio_vs_diffusers']:.2f}   (spread {r['spread_s']} s)")
    hw['loadavg_end'] = loadavg()
    if a.json:
        a.json.write_text(json.dumps(dict(hardware=hw, args=vars(a) | {'json': str(a.json)}, rows=rows), indent=2))
    return rows


if __name__ == '__main__':
    main()
