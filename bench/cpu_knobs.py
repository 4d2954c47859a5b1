"""CPU knobs for ddpm_nb training speed: which settings make `Trainer.step` faster on a CPU, measured against the
diffusers recipe in the same process (all alternated, medians of --repeats).

Knobs (each its own Trainer with the same seed, 'digits' preset, batch --batch):
  default            TrainConfig() on CPU: what the library does now (since session 2: fp32, channels-last, fused AdamW,
                     one foreach EMA lerp)
  nchw               TrainConfig(channels_last=False): the plain NCHW layout (compare under AVX2-only kernels:
                     ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2)
  channels_last      TrainConfig(channels_last=True)
  fused_adamw        torch.optim.AdamW(fused=True) (CPU fused kernel, torch >= 2.4)
  foreach_ema        EMA update with one torch._foreach_lerp_ call instead of a Python loop
  all3               channels_last + fused AdamW + foreach EMA
  bf16               TrainConfig(amp='bf16') (bf16 autocast on the CPU)
  flush_denormal     torch.set_flush_denormal(True) around the step (matters only if denormals appear)
  2threads / 1thread torch.set_num_threads(2 / 1) around the step (compare under the machine's current load)
  diffusers          the train_unconditional recipe on the diffusers twin (the reference)

    python bench/cpu_knobs.py --threads 1 --knobs default,channels_last,fused_adamw,foreach_ema,all3,diffusers
    python bench/cpu_knobs.py --knobs default,2threads,1thread,diffusers
"""

from __future__ import annotations
import argparse, dataclasses, json, sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PRESETS, DiffusersRecipe, alternate, loadavg, median, print_hardware, spread  # noqa: E402
import ddpm_nb.training as T  # noqa: E402
from ddpm_nb.data import get_dataset  # noqa: E402
from ddpm_nb.training import TrainConfig, Trainer, dataset_tensor  # noqa: E402

ALL = 'default,nchw,channels_last,fused_adamw,foreach_ema,all3,bf16,flush_denormal,2threads,1thread,diffusers'


@torch.no_grad()
def ema_foreach(ema, model, decay):
    "The same update as ddpm_nb.training.ema_update, with one foreach call for all parameters."
    torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


class Knob:
    def __init__(self, name, data, base, n_steps, pretrain):
        self.name, self.n = name, n_steps
        cfg = base
        if name in ('channels_last', 'all3'):
            cfg = dataclasses.replace(cfg, channels_last=True)
        if name == 'nchw':
            cfg = dataclasses.replace(cfg, channels_last=False)
        if name == 'bf16':
            cfg = dataclasses.replace(cfg, amp='bf16')
        self.tr = Trainer(cfg, data=data)
        if name in ('fused_adamw', 'all3'):
            self.tr.opt = torch.optim.AdamW(self.tr.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
            w = cfg.warmup_steps
            self.tr.sched = torch.optim.lr_scheduler.LambdaLR(self.tr.opt, lambda s: min(1.0, (s + 1) / w) if w else 1.0)
        self.threads = {'2threads': 2, '1thread': 1}.get(name)
        for _ in range(pretrain):
            self.tr.step()

    def __call__(self):
        old_ema, old_thr = T.ema_update, torch.get_num_threads()
        if self.name in ('foreach_ema', 'all3'):
            T.ema_update = ema_foreach
        if self.name == 'flush_denormal':
            torch.set_flush_denormal(True)
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            for _ in range(self.n):
                self.tr.step()
        finally:
            T.ema_update = old_ema
            torch.set_flush_denormal(False)
            torch.set_num_threads(old_thr)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--threads', type=int, default=None)
    p.add_argument('--batch', type=int, default=64)
    p.add_argument('--steps', type=int, default=4, help='steps per timed repeat')
    p.add_argument('--repeats', type=int, default=5)
    p.add_argument('--pretrain', type=int, default=0, help='untimed steps per knob first (lets denormals, if any, appear)')
    p.add_argument('--knobs', default=ALL)
    p.add_argument(
        '--sampling',
        action='store_true',
        help='instead: time sample(..., "ddim", steps=50) of 64 images, NCHW model vs channels_last model',
    )
    p.add_argument('--json', type=Path, default=None)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    print('command: python bench/cpu_knobs.py ' + ' '.join(sys.argv[1:] if argv is None else argv))
    hw = print_hardware('cpu')
    if a.sampling:
        return sampling_knobs(a, hw)
    data = dataset_tensor(get_dataset('digits'))
    base = TrainConfig(batch_size=a.batch, log_every=10**9, ckpt_every=10**9, steps=10**9)
    fns = {}
    for k in a.knobs.split(','):
        if k == 'diffusers':
            r = DiffusersRecipe(PRESETS['digits'], data, batch_size=a.batch)
            for _ in range(a.pretrain):
                r.step()
            fns[k] = lambda r=r: [r.step() for _ in range(a.steps)]
        else:
            fns[k] = Knob(k, data, base, a.steps, a.pretrain)
    for f in fns.values():
        f()  # warm-up
    times = alternate(fns, a.repeats)
    ref = median(times['default']) if 'default' in times else None
    dref = median(times['diffusers']) if 'diffusers' in times else None
    print(f'\nbatch {a.batch}, {a.steps} steps per repeat, median of {a.repeats}; load average now {loadavg()}')
    rows = []
    for k, v in times.items():
        m = median(v)
        row = dict(
            knob=k,
            images_per_s=round(a.batch * a.steps / m, 1),
            spread_s=spread(v),
            speedup_vs_default=round(ref / m, 3) if ref else None,
            ratio_vs_diffusers=round(dref / m, 3) if dref else None,
        )
        rows.append(row)
        print(
            f"  {k:<16s} {row['images_per_s']:8.1f} img/s   ×{row['speedup_vs_default'] or float('nan'):.2f} vs default   "
            f"×{row['ratio_vs_diffusers'] or float('nan'):.2f} vs diffusers   (spread {spread(v)} s)"
        )
    hw['loadavg_end'] = loadavg()
    if a.json:
        a.json.write_text(json.dumps(dict(hardware=hw, args={k: str(v) for k, v in vars(a).items()}, rows=rows), indent=2))


def sampling_knobs(a, hw):
    import copy
    from ddpm_nb.diffusion import GaussianDiffusion
    from ddpm_nb.models import make_model
    from ddpm_nb.sampling import sample

    torch.manual_seed(0)
    m = make_model('digits').eval()
    for mod in m.modules():  # live weights (the zero-initialised layers too), as after training
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
            mod.reset_parameters()
    cl = copy.deepcopy(m).to(memory_format=torch.channels_last)
    d = GaussianDiffusion('linear', 1000)
    run = lambda model: sample(model, d, 64, sampler='ddim', steps=50, progress=False)
    test = (run(m) - run(cl)).abs().max()
    print(f'max |NCHW - channels_last| over the 64 samples: {float(test):.2e}')
    fns = {'sample NCHW (default)': lambda: run(m), 'sample channels_last': lambda: run(cl)}
    for f in fns.values():
        f()
    times = alternate(fns, a.repeats)
    ref = median(times['sample NCHW (default)'])
    print(f'\n64 images, 50 DDIM steps, median of {a.repeats}; load average now {loadavg()}')
    rows = []
    for k, v in times.items():
        rows.append(dict(knob=k, seconds=round(median(v), 3), spread_s=spread(v), speedup_vs_default=round(ref / median(v), 3)))
        print(f"  {k:<24s} {median(v):7.2f} s   ×{ref / median(v):.2f} vs default   (spread {spread(v)} s)")
    hw['loadavg_end'] = loadavg()
    if a.json:
        a.json.write_text(json.dumps(dict(hardware=hw, args={k: str(v) for k, v in vars(a).items()}, rows=rows), indent=2))


if __name__ == '__main__':
    main()
