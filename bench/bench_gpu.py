"""Benchmark 3 — GPU, the paper's CIFAR-10 model (35.7M parameters, 32×32×3, batch 128): ddpm_nb against 🤗 diffusers.

Training rows (steps/s, median of --repeats timed blocks of --steps steps, after warm-up/compilation, timed separately):
  1. diffusers eager fp32           UNet2DModel + DDPMScheduler, train_unconditional recipe (AdamW, cosine, clip, EMAModel)
  2. diffusers fastest              the same + bf16 autocast + channels_last + torch.compile (+ fused AdamW, foreach EMA)
  3. ddpm_nb default fast path      Trainer(TrainConfig(preset='cifar10', batch_size=128)): bf16 autocast, channels_last,
                                    fused AdamW (its CUDA defaults), eager
  4. ddpm_nb fast path + compile    the same with compile=True
Sampling rows (seconds for 256 samples × 1000 ancestral steps, batch 256):
  5. diffusers eager fp32           the DDPMPipeline loop (DDPMScheduler.step)
  6. diffusers fastest              the same loop, bf16 autocast + channels_last + compiled UNet
  7. ddpm_nb default                `sample(model, diffusion, 256)` (fp32, eager)
  8. ddpm_nb fast + compile         `sample(FastDenoiser(model, compile=True), ...)`: bf16 autocast, channels_last, compiled
Checks (no timing):
  9. host syncs                     20 training steps (between log points) and 20 sampling steps of ddpm_nb under
                                    torch.cuda.set_sync_debug_mode('error') (CPU dry run: ddpm_nb.accel.count_syncs), and
                                    max |Δ| of the bf16 fast path against fp32 on the same inputs
 10. digits main job on the GPU     `ddpm_nb train --data digits --device cuda` (the README's main job, 1500 steps): its
                                    training steps/s, then 64 DDIM-50 samples timed
(Session 3 removed the CUDA-graph row: on an H200 it gave no gain over eager — 7.10 s vs 6.75–7.01 s, issue 16 — and
FastDenoiser no longer has that path.)

The paper (Ho et al. 2020) reports 21 steps/s at batch 128 on a TPU v3-8 and 17 s for 256 samples.
Data are random images in [-1, 1] already on the GPU (speed does not depend on their content; no downloads).

A time guard (--guard-seconds, default 390) skips the rows that remain once it trips and says so; the whole run is meant to
stay under 8 minutes. Without a CUDA device the script prints "no CUDA device" and exits 0, unless --dry-run-cpu, which
runs every row end to end on the CPU with a tiny model, batch and step counts (compile rows are skipped on the CPU unless
--compile-on-cpu: inductor takes minutes there), to prove the script works.

    python bench/bench_gpu.py                 # on a CUDA machine
    python bench/bench_gpu.py --dry-run-cpu   # anywhere: tiny sizes, about a minute
"""

from __future__ import annotations
import argparse, json, sys, time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    PRESETS,
    DiffusersRecipe,
    check_same_architecture,
    diffusers_twin,
    loadavg,
    median,
    print_hardware,  # noqa: E402
    spread,
    sync,
)
from ddpm_nb.diffusion import GaussianDiffusion  # noqa: E402
from ddpm_nb.models import UNet, UNetConfig, count_parameters  # noqa: E402
from ddpm_nb.interop import load_diffusers_unet_weights  # noqa: E402
from ddpm_nb.accel import FastDenoiser, count_syncs  # noqa: E402
from ddpm_nb.sampling import p_sample_loop_progressive, sample  # noqa: E402
from ddpm_nb.respace import respace  # noqa: E402
from ddpm_nb.training import TrainConfig, Trainer  # noqa: E402

PAPER = dict(train_steps_per_s=21.0, sample_256_s=17.0)  # TPU v3-8, Ho et al. 2020, appendix B


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--dry-run-cpu', action='store_true', help='no GPU needed: tiny model and sizes on the CPU, every row end to end')
    p.add_argument('--compile-on-cpu', action='store_true', help='with --dry-run-cpu, run the torch.compile rows too (slow)')
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--steps', type=int, default=50, help='training steps per timed repeat')
    p.add_argument('--repeats', type=int, default=3, help='timed repeats per training row')
    p.add_argument('--warmup', type=int, default=10, help='untimed steps first (compilation happens here)')
    p.add_argument('--n-samples', type=int, default=256)
    p.add_argument('--sample-steps', type=int, default=1000)
    p.add_argument('--sample-repeats', type=int, default=1)
    p.add_argument('--guard-seconds', type=float, default=390.0, help='start no new row after this many seconds')
    p.add_argument('--rows', default='all', help="comma-separated row numbers (1-10) to run, or 'all'")
    p.add_argument('--json', type=Path, default=None)
    return p.parse_args(argv)


class Guard:
    def __init__(self, seconds):
        self.t0, self.seconds, self.skipped = time.perf_counter(), seconds, []

    def elapsed(self):
        return time.perf_counter() - self.t0

    def ok(self, name) -> bool:
        if self.elapsed() > self.seconds:
            self.skipped.append(name)
            print(f'  TIME GUARD: {self.elapsed():.0f} s > {self.seconds:.0f} s — skipping {name}', flush=True)
            return False
        return True


def time_steps(step, n, repeats, device) -> list:
    out = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        sync(device)
        out.append(time.perf_counter() - t0)
    return out


def diffusers_sample(unet, n, steps, device, amp=False, channels_last=False, seed=0):
    "DDPMPipeline's loop: DDPMScheduler (1000 linear betas, fixed_small variance, clip_sample) over `steps` timesteps."
    from diffusers import DDPMScheduler

    sch = DDPMScheduler(num_train_timesteps=1000, beta_schedule='linear')
    sch.set_timesteps(1000)
    g = torch.Generator(device=device).manual_seed(seed)
    c = unet.config if hasattr(unet, 'config') else unet._orig_mod.config
    x = torch.randn((n, c.in_channels, c.sample_size, c.sample_size), generator=g, device=device)
    with torch.no_grad(), torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=amp):
        for t in sch.timesteps[:steps]:
            xin = x.contiguous(memory_format=torch.channels_last) if channels_last else x
            x = sch.step(unet(xin, t).sample.float(), t, x, generator=g).prev_sample
    return x


def sync_check(num, cfg, data, ours, diffusion, device, a) -> dict:
    "Row 9: no host sync inside a training or a sampling step; max |Δ| of the bf16 fast path against fp32."
    tc = TrainConfig(
        preset='cifar10' if device == 'cuda' else 'digits',
        batch_size=min(a.batch, 32),
        device=device,
        log_every=10**9,
        ckpt_every=10**9,
        steps=10**9,
    )
    tr = Trainer(tc, data=data if device == 'cuda' else None)
    for _ in range(3):
        tr.step()
    x = torch.randn((8, cfg.in_channels, cfg.image_size, cfg.image_size), device=device)
    out = {}
    steps = p_sample_loop_progressive(ours, respace(diffusion, 40), x.shape, noise=x)  # the loop, step by step
    next(steps)  # its entry checks happen here, once
    for what, fn in (
        ('train', lambda: [tr.step() for _ in range(20)]),
        ('sample', lambda: [next(steps) for _ in range(20)]),
    ):
        if device == 'cuda':
            sync(device)
            torch.cuda.set_sync_debug_mode('error')
            try:
                fn()
                out[what] = 'no sync'
            except RuntimeError as e:
                out[what] = f'SYNC: {str(e).splitlines()[0][:160]}'
            finally:
                torch.cuda.set_sync_debug_mode('default')
        else:
            with count_syncs() as c:
                fn()
            out[what] = f'{c.count} syncs ({dict(c.ops)})' if c.count else 'no sync'
    t = torch.randint(0, 1000, (8,), device=device)
    with torch.no_grad():
        ref = ours(x, t).float()
        fast = FastDenoiser(ours, amp='bf16', channels_last=True)(x, t).float()
    out['bf16_max_abs_diff'] = float((fast - ref).abs().max())
    out['fp32_max_abs'] = float(ref.abs().max())
    print(
        f'  row {num}: host syncs — train: {out["train"]}; sample: {out["sample"]}; bf16 fast path max |Δ| '
        f'{out["bf16_max_abs_diff"]:.3g} (outputs up to {out["fp32_max_abs"]:.3g})',
        flush=True,
    )
    return dict(row=num, kind='check', what='host syncs and bf16 numerics', **out)


def digits_job(num, device, a) -> dict:
    "Row 10: the README's main job on this device, through the command line (training steps/s, then 64 DDIM-50 samples)."
    import subprocess, tempfile

    steps = 1500 if device == 'cuda' else 20
    with tempfile.TemporaryDirectory() as d:
        cmd = [
            sys.executable,
            '-m',
            'ddpm_nb',
            'train',
            '--data',
            'digits',
            '--device',
            device,
            '--steps',
            str(steps),
            '--out',
            f'{d}/run',
            '--samples',
            '0',
            '--no-eval',
            '--quiet',
        ]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        train_s = time.perf_counter() - t0
        if r.returncode:
            print(f'  row {num}: train failed: {r.stderr.strip()[-300:]}')
            return dict(row=num, kind='check', what='digits job', error=r.stderr[-300:])
        scmd = [
            sys.executable,
            '-m',
            'ddpm_nb',
            'sample',
            f'{d}/run',
            '-n',
            '64',
            '--sampler',
            'ddim',
            '--steps',
            '50',
            '--device',
            device,
            '--out',
            f'{d}/s.npy',
        ]
        t0 = time.perf_counter()
        r2 = subprocess.run(scmd, capture_output=True, text=True)
        sample_s = time.perf_counter() - t0
    sps = steps / train_s
    print(
        f'  row {num}: digits main job: {steps} steps in {train_s:.1f} s wall incl. start-up ({sps:.1f} steps/s); '
        f'64 DDIM-50 samples {sample_s:.1f} s wall incl. start-up{"" if not r2.returncode else " (FAILED: " + r2.stderr.strip()[-200:] + ")"}',
        flush=True,
    )
    return dict(
        row=num,
        kind='check',
        what='digits main job (CLI)',
        steps=steps,
        train_wall_s=round(train_s, 1),
        steps_per_s_incl_startup=round(sps, 1),
        sample64_ddim50_wall_s=round(sample_s, 1),
    )


def main(argv=None):
    a = parse(argv)
    print('command: python bench/bench_gpu.py ' + ' '.join(sys.argv[1:] if argv is None else argv), flush=True)
    if not a.dry_run_cpu and not torch.cuda.is_available():
        print(
            'no CUDA device: this benchmark needs a GPU (run it on a CUDA machine, or use --dry-run-cpu to check the script '
            'end to end with tiny sizes). Nothing measured.'
        )
        return 0
    device = 'cpu' if a.dry_run_cpu else 'cuda'
    if a.dry_run_cpu:  # tiny everything: the point is that every row runs
        cfg = UNetConfig(
            in_channels=3, model_channels=16, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(8,), image_size=16, num_groups=4
        )
        a.batch, a.steps, a.repeats, a.warmup = min(a.batch, 4), min(a.steps, 2), min(a.repeats, 2), min(a.warmup, 1)
        a.n_samples, a.sample_steps = min(a.n_samples, 4), min(a.sample_steps, 3)
        can_compile = a.compile_on_cpu
    else:
        cfg = PRESETS['cifar10']
        can_compile = True
        torch.backends.cudnn.benchmark = True
    notes = []
    if not can_compile:
        notes.append(
            'torch.compile skipped in the CPU dry run (inductor takes minutes there; --compile-on-cpu to include it): '
            'the "compile" rows ran eager'
        )
    rows_wanted = set(range(1, 11)) if a.rows == 'all' else {int(r) for r in a.rows.split(',')}
    hw = print_hardware(device)
    guard = Guard(a.guard_seconds)
    torch.manual_seed(0)
    data = torch.rand((2048 if device == 'cuda' else 64, cfg.in_channels, cfg.image_size, cfg.image_size), device=device) * 2 - 1
    results = []

    # ---- training ------------------------------------------------------------------------------------------------------
    def run_train(num, name, make):
        if num not in rows_wanted:
            return
        if not guard.ok(f'row {num} ({name})'):
            return
        t0 = time.perf_counter()
        obj, step, params = make()
        for _ in range(a.warmup):
            step()
        sync(device)
        warm = time.perf_counter() - t0
        v = time_steps(step, a.steps, a.repeats, device)
        sps = a.steps / median(v)
        results.append(
            dict(
                row=num,
                kind='train',
                what=name,
                steps_per_s=round(sps, 2),
                images_per_s=round(sps * a.batch, 1),
                spread_s=spread(v),
                warmup_s=round(warm, 1),
                params=params,
                batch=a.batch,
            )
        )
        print(
            f'  row {num}: {name:<34s} {sps:8.2f} steps/s  ({sps * a.batch:,.0f} img/s; setup+warm-up {warm:.0f} s; '
            f'spread {spread(v)} s per {a.steps} steps)',
            flush=True,
        )
        del obj
        if device == 'cuda':
            torch.cuda.empty_cache()

    def diffusers_trainer(fast):
        r = DiffusersRecipe(
            cfg,
            data,
            batch_size=a.batch,
            device=device,
            amp=fast,
            channels_last=fast,
            compile=fast and can_compile,
            fused=fast and device == 'cuda',
            ema_foreach=fast,
        )
        return r, r.step, count_parameters(r.model)

    def nb_trainer(compile_):
        tc = TrainConfig(
            preset='cifar10',
            batch_size=a.batch,
            device=device,
            compile='default' if (compile_ and can_compile) else 'none',
            log_every=10**9,
            ckpt_every=10**9,
            steps=10**9,
            **({'amp': 'bf16', 'channels_last': True} if device == 'cpu' else {}),
        )
        if device == 'cpu':  # the dry run: the tiny config instead of the 35.7M preset
            import ddpm_nb.models as T

            old = T.PRESETS['cifar10']
            T.PRESETS['cifar10'] = cfg
            try:
                tr = Trainer(tc, data=data)
            finally:
                T.PRESETS['cifar10'] = old
        else:
            tr = Trainer(tc, data=data)
        return tr, tr.step, count_parameters(tr.model)

    # same architecture check (and the parameter count the paper quotes)
    twin, ours = diffusers_twin(cfg), UNet(cfg)
    n_nb, n_df = check_same_architecture(ours, twin)
    print(
        f'parameters: ddpm_nb {n_nb:,}  diffusers {n_df:,}  (batch {a.batch}, {cfg.image_size}×{cfg.image_size}×{cfg.in_channels})',
        flush=True,
    )
    del twin, ours

    print('training:', flush=True)
    run_train(1, 'diffusers eager fp32', lambda: diffusers_trainer(False))
    run_train(3, 'ddpm_nb default fast path', lambda: nb_trainer(False))
    run_train(2, 'diffusers fastest (bf16+CL+compile)', lambda: diffusers_trainer(True))
    run_train(4, 'ddpm_nb fast path + compile', lambda: nb_trainer(True))

    # ---- sampling ------------------------------------------------------------------------------------------------------
    print(f'sampling {a.n_samples} images × {a.sample_steps} ancestral steps:', flush=True)
    torch.manual_seed(0)
    unet = diffusers_twin(cfg).to(device).eval()
    ours = load_diffusers_unet_weights(UNet(cfg), diffusers_twin(cfg).state_dict()).to(device).eval()
    diffusion = GaussianDiffusion('linear', 1000)
    amp_ok = True

    def run_sample(num, name, make):
        if num not in rows_wanted:
            return
        if not guard.ok(f'row {num} ({name})'):
            return
        t0 = time.perf_counter()
        fn, warm_fn = make()
        warm_fn()
        sync(device)
        warm = time.perf_counter() - t0
        v = []
        for _ in range(a.sample_repeats):
            sync(device)
            t1 = time.perf_counter()
            fn()
            sync(device)
            v.append(time.perf_counter() - t1)
        s = median(v) * 1000 / a.sample_steps if a.dry_run_cpu else median(v)
        results.append(
            dict(
                row=num,
                kind='sample',
                what=name,
                seconds=round(s, 2),
                spread_s=spread(v),
                warmup_s=round(warm, 1),
                n=a.n_samples,
                steps=a.sample_steps,
            )
        )
        print(f'  row {num}: {name:<40s} {median(v):8.2f} s  (warm-up {warm:.0f} s)', flush=True)

    def d_rows(fast):
        net = unet
        if fast:
            net = unet.to(memory_format=torch.channels_last)
            net = torch.compile(net) if can_compile else net
        run = lambda steps: diffusers_sample(net, a.n_samples, steps, device, amp=fast and amp_ok, channels_last=fast)
        return (lambda: run(a.sample_steps)), (lambda: run(3))

    def n_rows(fast):
        model = ours
        if fast:  # the library's own wrapper (notebook 08); bf16 forced so the CPU dry run takes the same path
            model = FastDenoiser(ours, amp='bf16', channels_last=True, compile=can_compile)
        shape = (a.n_samples, cfg.in_channels, cfg.image_size, cfg.image_size)
        run = lambda steps: sample(
            model, diffusion, shape, sampler='ancestral', steps=steps, batch_size=a.n_samples, device=device, progress=False
        )  # steps < 1000: respaced, same cost per step
        return (lambda: run(a.sample_steps)), (lambda: run(3))

    run_sample(5, 'diffusers eager fp32', lambda: d_rows(False))
    run_sample(7, 'ddpm_nb default (fp32, eager)', lambda: n_rows(False))
    run_sample(6, 'diffusers fastest (bf16+CL+compile)', lambda: d_rows(True))
    run_sample(8, 'ddpm_nb fast (bf16+CL+compile)', lambda: n_rows(True))
    if 9 in rows_wanted and guard.ok('row 9 (host syncs)'):
        results.append(sync_check(9, cfg, data, ours, diffusion, device, a))
    if 10 in rows_wanted and guard.ok('row 10 (digits main job)'):
        results.append(digits_job(10, device, a))

    # ---- summary -------------------------------------------------------------------------------------------------------
    by = {r['row']: r for r in results}
    print(f'\nsummary ({hw.get("gpu", "CPU dry run — numbers mean nothing")}; {guard.elapsed():.0f} s in all; load {loadavg()}):')
    print(f'  paper (TPU v3-8): {PAPER["train_steps_per_s"]} steps/s at batch 128; {PAPER["sample_256_s"]} s for 256 samples')
    for r in results:
        if r['kind'] == 'check':
            print(
                f'  row {r["row"]} check  {r["what"]}: ' + ', '.join(f'{k}={v}' for k, v in r.items() if k not in ('row', 'kind', 'what'))
            )
        elif r['kind'] == 'train':
            ref = by.get(1)
            ref2 = by.get(2)
            extra = ''.join(f'  ×{r["steps_per_s"] / x["steps_per_s"]:.2f} vs row {x["row"]}' for x in (ref, ref2) if x and x is not r)
            print(f'  row {r["row"]} train  {r["what"]:<38s} {r["steps_per_s"]:8.2f} steps/s{extra}')
        else:
            ref = by.get(5)
            ref2 = by.get(6)
            extra = ''.join(f'  ×{x["seconds"] / r["seconds"]:.2f} vs row {x["row"]}' for x in (ref, ref2) if x and x is not r)
            print(
                f'  row {r["row"]} sample {r["what"]:<38s} {r["seconds"]:8.2f} s{extra}'
                + ('  (scaled to 1000 steps)' if a.dry_run_cpu else '')
            )
    if guard.skipped:
        print(f'  TIME GUARD tripped: skipped {", ".join(guard.skipped)}')
    for n in notes:
        print('  note: ' + n)
    if a.json:
        a.json.write_text(
            json.dumps(
                dict(
                    hardware=hw, args={k: str(v) for k, v in vars(a).items()}, rows=results, skipped=guard.skipped, notes=notes, paper=PAPER
                ),
                indent=2,
            )
        )
    return 0


if __name__ == '__main__':
    sys.exit(main())
