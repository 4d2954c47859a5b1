"""Shared pieces of the ddpm_nb-vs-diffusers benchmarks: hardware report, the diffusers twin of a ddpm_nb U-Net,
diffusers' train_unconditional recipe, the alternating timer, and medians/ratios.

Benchmarks are scripts, not tests: nothing here is collected by pytest (only tests/ is).
"""

from __future__ import annotations
import math, os, platform, statistics, sys, time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from ddpm_nb.models import PRESETS  # noqa: F401  (re-exported: the benchmarks read the presets from here)
from ddpm_nb.models import UNetConfig, count_parameters  # noqa: E402


# -- hardware --------------------------------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> str:
    "PyTorch's CPU kernel level, and whether the CPU has native bf16 (AVX512-BF16 or AMX), from /proc/cpuinfo."
    try:
        flags = next(l for l in Path('/proc/cpuinfo').read_text().splitlines() if l.startswith('flags')).split()
    except (OSError, StopIteration):
        flags = []
    bf16 = [f for f in ('avx512_bf16', 'amx_bf16') if f in flags]
    return f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {'/'.join(bf16) if bf16 else 'no'}"


def loadavg() -> str:
    try:
        return ' '.join(f'{v:.2f}' for v in os.getloadavg())
    except OSError:
        return 'n/a'


def hardware(device: str = 'cpu') -> dict:
    import diffusers

    d = dict(
        cpu=cpu_model(),
        isa=cpu_flags(),
        cores=os.cpu_count(),
        torch=torch.__version__,
        diffusers=diffusers.__version__,
        threads=torch.get_num_threads(),
        interop_threads=torch.get_num_interop_threads(),
        python=platform.python_version(),
        loadavg_1_5_15=loadavg(),
    )
    if device == 'cuda' and torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        d.update(gpu=p.name, gpu_mem_gib=round(p.total_memory / 2**30, 1), cuda=torch.version.cuda)
    return d


def print_hardware(device: str = 'cpu', file=None):
    h = hardware(device)
    print('hardware: ' + '; '.join(f'{k}={v}' for k, v in h.items()), file=file, flush=True)
    return h


# -- the same architecture on both sides ---------------------------------------------------------------------------
def diffusers_twin(cfg: UNetConfig):
    """diffusers' UNet2DModel with the hyper-parameters of a ddpm_nb `UNetConfig` (the settings of diffusers' port of the
    paper's checkpoint, google/ddpm-cifar10-32). Notebook 05 checks that this twin has the same parameters, weight for
    weight (`load_diffusers_unet_weights` loads it strictly), and computes the same function to 1e-4."""
    from diffusers import UNet2DModel

    res = cfg.resolutions
    down = tuple('AttnDownBlock2D' if r in cfg.attention_resolutions else 'DownBlock2D' for r in res)
    up = tuple('AttnUpBlock2D' if r in cfg.attention_resolutions else 'UpBlock2D' for r in reversed(res))
    return UNet2DModel(
        sample_size=cfg.image_size,
        in_channels=cfg.in_channels,
        out_channels=cfg.out_channels,
        block_out_channels=tuple(cfg.model_channels * m for m in cfg.channel_mult),
        down_block_types=down,
        up_block_types=up,
        layers_per_block=cfg.num_res_blocks,
        attention_head_dim=None,
        downsample_padding=0,
        flip_sin_to_cos=False,
        freq_shift=1,
        norm_eps=1e-6,
        norm_num_groups=cfg.num_groups,
        dropout=cfg.dropout,
    )


def check_same_architecture(ours: nn.Module, twin: nn.Module, tol: float = 0.02) -> tuple[int, int]:
    "Parameter counts of both; raise if they differ by more than `tol` (the issue asks for 2%)."
    a, b = count_parameters(ours), count_parameters(twin)
    if abs(a - b) > tol * max(a, b):
        raise RuntimeError(f'parameter counts differ by more than {tol:.0%}: ddpm_nb {a:,} vs diffusers {b:,}')
    return a, b


class DiffusersAsModel(nn.Module):
    "Wrap a UNet2DModel as ddpm_nb's `model(x_t, t)` (so one sampler and one FD pipeline can judge both)."

    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, x, t):
        return self.unet(x, t).sample


# -- diffusers' train_unconditional recipe ---------------------------------------------------------------------------
class DiffusersRecipe:
    """One training step of diffusers' examples/unconditional_image_generation/train_unconditional.py (epsilon, MSE):
    AdamW(lr 1e-4, betas (0.95, 0.999), weight decay 1e-6, eps 1e-8), `get_scheduler('cosine', 500 warm-up steps)`,
    grad-norm clipping at 1.0, EMAModel(inv_gamma=1, power=3/4, max decay 0.9999, use_ema_warmup=True),
    DDPMScheduler(1000 steps, linear betas). Random batches drawn from an in-memory tensor (as ddpm_nb's Trainer does).
    `total_steps` sets the cosine length; `time_budget` (seconds) makes the cosine run over this trainer's own accumulated
    step time instead (`self.elapsed`), for a time budget whose number of steps is not known in advance."""

    def __init__(
        self,
        cfg: UNetConfig,
        data: torch.Tensor,
        batch_size: int = 16,
        lr: float = 1e-4,
        warmup: int = 500,
        total_steps: int | None = None,
        time_budget: float | None = None,
        seed: int = 0,
        device='cpu',
        amp: bool = False,
        channels_last: bool = False,
        compile: bool = False,
        ema: bool = True,
        fused: bool = False,
        ema_foreach: bool = False,
    ):
        from diffusers import DDPMScheduler
        from diffusers.training_utils import EMAModel

        torch.manual_seed(seed)
        self.device = torch.device(device)
        self.model = diffusers_twin(cfg).to(self.device).train()
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.channels_last, self.amp = channels_last, amp
        self.net = torch.compile(self.model) if compile else self.model
        self.data, self.batch_size = data.to(self.device), batch_size
        self.scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule='linear')
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=lr, betas=(0.95, 0.999), weight_decay=1e-6, eps=1e-8, fused=fused or None)
        self.warmup, self.total_steps, self.time_budget = warmup, total_steps, time_budget
        self.elapsed = 0.0  # seconds spent inside step()
        self._t_warm = None  # self.elapsed when the warm-up ended
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, self._lr_factor)
        self.ema = (
            EMAModel(
                self.model.parameters(),
                decay=0.9999,
                use_ema_warmup=True,
                inv_gamma=1.0,
                power=3 / 4,
                foreach=ema_foreach,
                model_cls=type(self.model),
                model_config=self.model.config,
            )
            if ema
            else None
        )
        self.gen = torch.Generator(device=self.device).manual_seed(seed + 1)
        self.step_count = 0

    def _lr_factor(self, step: int) -> float:
        "diffusers.optimization.get_cosine_schedule_with_warmup (num_cycles 0.5), over steps or over the time budget."
        if step < self.warmup:
            return step / max(1, self.warmup)
        if self.time_budget is not None:  # cosine over the time left after the warm-up
            if self._t_warm is None:
                self._t_warm = self.elapsed
            progress = min(1.0, (self.elapsed - self._t_warm) / max(1e-9, self.time_budget - self._t_warm))
        elif self.total_steps is not None:
            progress = (step - self.warmup) / max(1, self.total_steps - self.warmup)
        else:
            return 1.0
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))

    def step(self) -> torch.Tensor:
        t0 = time.perf_counter()
        g, B = self.gen, self.batch_size
        idx = torch.randint(len(self.data), (B,), generator=g, device=self.device)  # drawn on the device, as the example does
        clean = self.data[idx]
        noise = torch.randn(clean.shape, generator=g, device=self.device)
        t = torch.randint(0, self.scheduler.config.num_train_timesteps, (B,), generator=g, device=self.device)
        noisy = self.scheduler.add_noise(clean, noise, t)
        if self.channels_last:
            noisy = noisy.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            pred = self.net(noisy, t).sample
        loss = F.mse_loss(pred.float(), noise.float())
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.sched.step()
        self.opt.zero_grad()
        if self.ema is not None:
            self.ema.step(self.model.parameters())
        self.step_count += 1
        self.elapsed += time.perf_counter() - t0
        return loss.detach()

    def ema_model(self) -> nn.Module:
        "A copy of the model holding the EMA weights, in eval mode."
        import copy

        m = copy.deepcopy(self.model).eval()
        if self.ema is not None:
            self.ema.copy_to(m.parameters())
        return m


# -- timing ----------------------------------------------------------------------------------------------------------
def sync(device):
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize()


def timed(fn, device='cpu') -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def alternate(fns: dict, repeats: int, device='cpu', log=True) -> dict:
    """Time each callable `repeats` times, interleaved A B, B A, A B, ... so that all see the same machine load
    (the order flips each round so that neither always runs right after the other). Returns name -> list of seconds."""
    names, out = list(fns), {k: [] for k in fns}
    for r in range(repeats):
        for k in names if r % 2 == 0 else names[::-1]:
            s = timed(fns[k], device)
            out[k].append(s)
            if log:
                print(f'  round {r + 1}/{repeats}  {k:<34s} {s:8.3f} s   (load {loadavg()})', flush=True)
    return out


def median(v):
    return statistics.median(v)


def spread(v) -> str:
    "min–max of a list of numbers, for the noise column."
    return f'{min(v):.3g}–{max(v):.3g}'
