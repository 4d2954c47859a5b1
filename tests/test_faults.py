"""Fault injection for `ddpm_nb train` (issue 13): `kill -9` at random moments, then `--resume`, against a run that never stopped.

What must hold after every kill: the checkpoint loads (checksum, finite weights), its step never goes back, and a second
writer started while a run lives is refused by the run folder's lock with exit code 2 and the holder's PID. At the end:
the resumed run's weights, EMA, optimizer state and loss history are bit-identical to the uninterrupted run's, and no
temporary file is left in the run folder.

Each command runs in a process forked from one server process that has imported torch and ddpm_nb once. A forked child
is a real, separate process (its own PID, exit code, stdout/stderr, file lock) and is killed with a real SIGKILL; only the
1.5 s of importing torch is saved, which is what lets more than 20 kills fit in well under a minute on 2 cores.
Randomness (which steps, which delays) is seeded; the timing of the processes themselves is not, so the kill points vary
from run to run while every assertion must hold for any of them.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ddpm_nb.runs import load_checkpoint

SERVER = r"""
import json, os, signal, sys, traceback
import torch, torch._dynamo, ddpm_nb.cli as cli, ddpm_nb.training, ddpm_nb.sampling, ddpm_nb.viz   # paid once, not per command
signal.signal(signal.SIGCHLD, signal.SIG_IGN)                          # the kernel reaps finished children
for line in sys.stdin:
    r = json.loads(line)
    pid = os.fork()
    if pid: print(pid, flush=True); continue
    code = 1                                                           # the child: run the command, never return to the loop
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.chdir(r['cwd'])
        for fd, name in ((1, 'out'), (2, 'err')): os.dup2(os.open(r[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
        sys.argv = ['ddpm_nb', *r['args']]
        cli._entry()
    except SystemExit as e: code = e.code if isinstance(e.code, int) else 1
    except BaseException: traceback.print_exc()
    finally:
        try:
            sys.stdout.flush(); sys.stderr.flush()
            with open(r['code'], 'w') as f: f.write(str(code))
        finally: os._exit(code)
"""

STEPS, KILLS, STARTUP_KILLS = 120, 22, 3
ARGS = ['train', '--data', 'moons', '--steps', str(STEPS), '--batch-size', '32', '--ckpt-every', '1', '--log-every', '5',
        '--dropout', '0.1', '--samples', '0', '--no-eval', '--quiet', '--threads', '1']  # fmt: skip


class Child:
    def __init__(self, pid, files):
        self.pid, self.files = pid, files

    def alive(self):
        try:
            os.kill(self.pid, 0)
            return True
        except ProcessLookupError:
            return False

    def text(self, k):
        p = Path(self.files[k])
        return p.read_text(errors='backslashreplace') if p.exists() else ''

    def kill(self):
        os.kill(self.pid, signal.SIGKILL)

    def wait(self, timeout=120):
        t0 = time.time()
        while self.alive():
            if time.time() - t0 > timeout:
                self.kill()
                raise TimeoutError(f'pid {self.pid} ran over {timeout} s')
            time.sleep(0.005)
        code = self.text('code')
        return (int(code) if code else None), self.text('out'), self.text('err')


class ForkServer:
    def __init__(self, cwd):
        self.cwd, self.n = Path(cwd), 0
        env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}
        self.proc = subprocess.Popen([sys.executable, '-c', SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def start(self, *args):
        self.n += 1
        files = {k: str(self.cwd / f'.cmd{self.n}.{k}') for k in ('out', 'err', 'code')}
        self.proc.stdin.write(json.dumps(dict(args=list(args), cwd=str(self.cwd), **files)) + '\n')
        self.proc.stdin.flush()
        return Child(int(self.proc.stdout.readline()), files)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def ckpt_step(path) -> int:
    "The step in a checkpoint's header (read without loading the tensors), or -1 if there is none yet."
    try:
        with open(path, 'rb') as f:
            n = int.from_bytes(f.read(8), 'little')
            return json.loads(json.loads(f.read(n))['__metadata__']['meta'])['step']
    except (OSError, ValueError, KeyError):
        return -1


def wait_until(cond, timeout=60, poll=0.005):
    t0 = time.time()
    while not cond():
        if time.time() - t0 > timeout:
            return False
        time.sleep(poll)
    return True


def temp_files(folder: Path) -> list:
    return sorted(p.name for p in folder.glob('*') if '.tmp' in p.name)


@pytest.mark.skipif(not hasattr(os, 'fork') or sys.platform != 'linux', reason='forks and SIGKILL: Linux only')
def test_kill9_resume_is_bit_identical(tmp_path):
    rng = random.Random(13)
    fs = ForkServer(tmp_path)
    t_start = time.time()
    try:
        ref = fs.start(*ARGS, '--out', 'ref')  # the run that is never interrupted
        run = tmp_path / 'run'
        ck = run / 'checkpoint.safetensors'
        for _ in range(STARTUP_KILLS):  # killed while it starts: before the lock or any checkpoint
            c = fs.start(*ARGS, '--out', 'run', '--resume')
            time.sleep(rng.uniform(0, 0.05))
            c.kill()
            assert c.wait()[0] is None
        targets = sorted(rng.sample(range(2, STEPS - 50), KILLS))
        last, mid_write, refused = max(ckpt_step(ck), 0), 0, 0
        for i, target in enumerate(targets):
            c = fs.start(*ARGS, '--out', 'run', '--resume')
            assert wait_until(lambda: ckpt_step(ck) > last or not c.alive()), 'the resumed run made no progress'
            assert c.alive(), f'the resumed run ended early: {c.wait()}'
            code, _, err = fs.start(*ARGS, '--out', 'run', '--resume').wait()  # a second writer while the first lives
            assert code == 2 and f'PID {c.pid}' in err and 'Traceback' not in err, (code, err)
            assert c.alive(), 'the second writer must not disturb the first'
            refused += 1
            wait_until(lambda: ckpt_step(ck) >= target or not c.alive())
            if i % 4 == 0:  # during a checkpoint write: as soon as its temp file exists
                wait_until(lambda: bool(temp_files(run)) or not c.alive(), timeout=5, poll=0.0005)
            else:
                time.sleep(rng.uniform(0, 0.03))  # anywhere in a step or a write
            c.kill()
            assert c.wait()[0] is None, 'the run finished before it could be killed'
            mid_write += bool(temp_files(run))
            tensors, meta = load_checkpoint(ck)  # loads: checksum and finite weights checked
            assert meta['step'] >= last, f'the checkpoint went back from step {last} to {meta["step"]}'
            last = meta['step']
        code, out, err = fs.start(*ARGS, '--out', 'run', '--resume').wait()
        assert code == 0, err[-2000:]
        assert ref.wait()[0] == 0
    finally:
        fs.close()
    a, ma = load_checkpoint(tmp_path / 'ref' / 'checkpoint.safetensors')
    b, mb = load_checkpoint(ck)
    assert ma['step'] == mb['step'] == STEPS
    assert sorted(a) == sorted(b)
    for k in a:
        if k.startswith(('model.', 'ema.', 'optim.', 'rng.')):
            assert torch.equal(a[k], b[k]), f'{k} differs from the uninterrupted run'
    assert ma['history'] == mb['history'], 'the loss history differs from the uninterrupted run'
    csv = [[r.split(',')[:2] for r in (p / 'metrics.csv').read_text().splitlines()] for p in (tmp_path / 'ref', run)]
    assert csv[0] == csv[1], 'metrics.csv (step, loss) differs from the uninterrupted run'
    assert temp_files(run) == [], temp_files(run)
    assert STARTUP_KILLS + KILLS >= 20 and refused == KILLS and mid_write >= 1, (refused, mid_write)
    print(f'{STARTUP_KILLS + KILLS} kill -9 ({mid_write} during a checkpoint write), {refused} second writers refused, '
          f'resumed to step {STEPS} bit-identical, in {time.time() - t_start:.1f} s')  # fmt: skip
