"""Every course notebook, run the way a reader runs it: in JupyterLab, in a real (headless) Chromium.

For each `nbs/*.ipynb` not starting with `_`, the test opens the notebook in JupyterLab, clicks
Run → Run All Cells, waits until the kernel is idle and every non-empty code cell has an execution
count, and fails on
- an error output (a cell raised) or a traceback printed to stderr,
- a cell left unexecuted (Run All stopped, or the kernel died),
- a widget output (`application/vnd.jupyter.widget-view+json`) that JupyterLab did not turn into a live
  widget: "Error displaying widget", "Loading widget..." that never finishes, an ipywidgets error view,
  or a plain-text fallback such as `VBox(children=...)` because the widget extension is missing.

The notebooks run from a temporary copy of `nbs/` with outputs stripped, so the committed notebooks are
never touched. `#| slow` cells run too; the kernels inherit DDPM_NB_QUICK=1 so heavy cells use their
quick budget. A screenshot of each notebook after its run, a screenshot of each widget, the browser
console and the JupyterLab log go to `ci-artifacts/browser/`.

Needs Debian's `chromium` (/usr/bin/chromium, or DDPM_NB_CHROMIUM) and the Python package `playwright`
(its bundled browsers are never used: no `playwright install`). No display needed.
Knobs: DDPM_NB_BROWSER_TIMEOUT (seconds per notebook, default 600).
"""

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from browser_env import ARTIFACTS, CHROMIUM, ROOT, versions

NBS = sorted(p for p in (ROOT / 'nbs').glob('*.ipynb') if not p.name.startswith('_'))
TIMEOUT = float(os.environ.get('DDPM_NB_BROWSER_TIMEOUT', 600))
KERNEL_START_TIMEOUT = 180
WIDGET_SETTLE_TIMEOUT = 60
CHROMIUM_ARGS = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-quic',
    '--no-first-run',
    '--disable-component-update',
    '--disable-sync',
]
VIEWPORT = {'width': 1200, 'height': 900}
MAX_SHOT_BYTES = 400_000
WIDGET_MIME = 'application/vnd.jupyter.widget-view+json'
TRACEBACK_RE = re.compile(r'Traceback \(most recent call last\)|^\w*(Error|Exception): ', re.M)
BAD_WIDGET_TEXT = ('Error displaying widget', 'Loading widget', 'Failed to load', 'Failed to create view')

# Page-side helpers. Reached through `window.jupyterapp`, which JupyterLab exposes with
# --LabApp.expose_app_in_browser (as its own Galata UI tests do).
HELPERS_JS = r"""
window.__ddpm = {
  panel(path) {
    const app = window.jupyterapp;
    if (!app || !app.shell) return null;
    for (const w of app.shell.widgets('main'))
      if (w.context && w.context.path === path && w.content && w.content.widgets) return w;
    return null;
  },
  text(v) { return Array.isArray(v) ? v.join('') : (v == null ? '' : String(v)); },
  kernel(path) {
    const p = this.panel(path);
    if (!p) return 'no panel';
    const k = p.sessionContext.session && p.sessionContext.session.kernel;
    return k ? k.status : 'no kernel';
  },
  // what the notebook model says: execution counts, running cells, error and stderr outputs
  state(path) {
    const p = this.panel(path);
    if (!p) return null;
    const r = {kernel: this.kernel(path), total: 0, notRun: [], running: 0, errors: [], stderr: [], widgets: 0, busy: null};
    p.content.widgets.forEach((cell, i) => {
      const m = cell.model;
      if (m.type !== 'code' || !m.sharedModel.getSource().trim()) return;
      r.total++;
      if (m.executionState === 'running' && r.running++ === 0)  // the first running cell is the one executing
        r.busy = {cell: i, source: m.sharedModel.getSource().split('\n').slice(0, 3).join(' ⏎ ').slice(0, 200)};
      else if (m.executionCount == null) r.notRun.push(i);
      for (let j = 0; j < m.outputs.length; j++) {
        const o = m.outputs.get(j).toJSON();
        if (o.output_type === 'error')
          r.errors.push({cell: i, kind: 'error', text: o.ename + ': ' + o.evalue + '\n' + (o.traceback || []).join('\n')});
        else if (o.output_type === 'stream' && o.name === 'stderr')
          r.stderr.push({cell: i, text: this.text(o.text)});
        else if (o.data && o.data['__WIDGET_MIME__']) r.widgets++;
      }
    });
    return r;
  },
  // what the page shows: every widget output must hold a rendered ipywidgets view. JupyterLab marks
  // only text outputs with data-mime-type, so output j of the model is matched to child j of the output area.
  widgets(path) {
    const p = this.panel(path);
    if (!p) return null;
    const out = [];
    p.content.widgets.forEach((cell, i) => {
      const m = cell.model;
      if (m.type !== 'code' || !cell.outputArea) return;
      const views = [];
      for (let j = 0; j < m.outputs.length; j++) {
        const d = m.outputs.get(j).toJSON().data;
        if (!d || !d['__WIDGET_MIME__']) continue;
        const child = cell.outputArea.widgets[j];
        const el = child && child.node.querySelector('.jp-OutputArea-output');
        if (!el) { views.push({output: j, text: '(no output element)', rendered: false, errorView: false, height: 0}); continue; }
        el.dataset.ddpmWidget = i + '-' + j;  // a handle for the widget screenshot
        views.push({
          output: j,
          text: (el.innerText || '').slice(0, 300),
          rendered: !!el.querySelector('.jupyter-widgets'),  // a view inside; the error path marks the node itself
          errorView: !!el.querySelector('.jupyter-widgets-error-widget, .widget-error'),
          mime: el.getAttribute('data-mime-type'),  // set only when a text renderer (the fallback) drew it
          height: el.getBoundingClientRect().height,
        });
      }
      if (views.length) out.push({cell: i, views});
    });
    return out;
  },
  // DOM cross-check of the model: stderr-rendered outputs that look like a traceback
  domErrors(path) {
    const p = this.panel(path);
    if (!p) return [];
    return Array.from(p.content.node.querySelectorAll(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"], ' +
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]'))
      .map(el => (el.innerText || '').slice(0, 2000));
  },
};
""".replace('__WIDGET_MIME__', WIDGET_MIME)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _api(lab, path, method='GET', timeout=10):
    req = urllib.request.Request(f'{lab.url}{path}', method=method, headers={'Authorization': f'token {lab.token}'})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        body = r.read()
    return json.loads(body) if body else None


def _alive(p) -> bool:
    import psutil

    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _descendants(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _stop(proc: subprocess.Popen, lab=None):
    """Stop JupyterLab and everything it started. Kernels run in their own sessions (jupyter_client starts
    them with start_new_session), so killing the server's group alone would orphan them: ask the server
    to shut down (it stops its kernels), then kill its group and any descendant still alive, by pid."""
    import psutil

    kids = _descendants(proc.pid)
    if lab is not None and proc.poll() is None:
        try:
            _api(lab, '/api/shutdown', method='POST', timeout=5)
        except Exception:
            pass
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            pass
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
        alive = [k for k in kids if _alive(k)]
        for k in alive:
            try:
                if os.getpgid(k.pid) == k.pid:
                    os.killpg(k.pid, sig)  # a kernel's own group
                else:
                    k.send_signal(sig)
            except (ProcessLookupError, psutil.NoSuchProcess):
                pass
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            pass
        psutil.wait_procs(alive, timeout=wait)
    left = [k.pid for k in kids if _alive(k)]
    assert proc.poll() is not None and not left, f'JupyterLab processes left running: server {proc.pid}, {left}'


def _die_with_parent():  # runs in the child before exec (Linux): SIGTERM when pytest dies, even by SIGKILL;
    try:  # JupyterLab then stops its kernels itself
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path
    proc: subprocess.Popen = field(repr=False)


def _strip(src: Path, dst: Path):
    "Copy a notebook without outputs, execution counts or saved widget state: what we see comes from this run."
    nb = json.loads(src.read_text())
    for c in nb['cells']:
        if c['cell_type'] == 'code':
            c['outputs'], c['execution_count'] = [], None
    nb.get('metadata', {}).pop('widgets', None)
    dst.write_text(json.dumps(nb, indent=1))


@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('jlab')
    root = tmp / 'nbs'  # a temp copy of nbs/: running cells never touches the committed notebooks
    shutil.copytree(ROOT / 'nbs', root, ignore=shutil.ignore_patterns('.ipynb_checkpoints', '_tmp*', '_proc'))
    for nb in root.glob('*.ipynb'):
        _strip(ROOT / 'nbs' / nb.name, nb)
    shutil.copy(ROOT / 'settings.ini', tmp / 'settings.ini')  # nbdev calls in a notebook resolve to the copy
    settings = tmp / 'lab-settings'
    for plugin, value in {
        # render every cell (the default windowing detaches cells scrolled out of view)
        '@jupyterlab/notebook-extension/tracker': {'windowingMode': 'none'},
        # no news / update checks from an offline machine
        '@jupyterlab/apputils-extension/notification': {'fetchNews': 'false', 'checkForUpdates': False},
    }.items():
        f = settings / f'{plugin}.jupyterlab-settings'
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(value))
    env = {k: v for k, v in os.environ.items() if k not in ('MPLBACKEND', 'JUPYTER_TOKEN', 'JPY_SESSION_NAME')}
    env.update(
        DDPM_NB_QUICK='1',  # kernels inherit it: heavy cells take their quick budget
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get('PATH', '')]),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get('PYTHONPATH')])),
        JUPYTER_CONFIG_DIR=str(tmp / 'config'),
        JUPYTER_RUNTIME_DIR=str(tmp / 'runtime'),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp / 'workspaces'),
        IPYTHONDIR=str(tmp / 'ipython'),
        PYTHONUNBUFFERED='1',
    )
    token = secrets.token_hex(16)
    log = tmp / 'jupyterlab.log'
    for attempt in range(3):
        port = _free_port()
        cmd = [
            sys.executable,
            '-m',
            'jupyterlab',
            '--no-browser',
            '--ip=127.0.0.1',
            f'--port={port}',
            '--ServerApp.port_retries=0',
            f'--IdentityProvider.token={token}',
            f'--ServerApp.root_dir={root}',
            '--LabApp.expose_app_in_browser=True',
            '--LabApp.news_url=None',
            '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate',
        ]
        if hasattr(os, 'geteuid') and os.geteuid() == 0:
            cmd.append('--allow-root')  # CI containers run as root
        with open(log, 'ab') as f:
            proc = subprocess.Popen(
                cmd,
                cwd=root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=f,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == 'linux' else None,
            )
        server = Lab(f'http://127.0.0.1:{port}', token, root, log, proc)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                _api(server, '/api/status', timeout=2)
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.5)
        if proc.poll() is None and time.monotonic() < deadline:
            break
        _stop(proc)
    else:
        pytest.fail(f'JupyterLab did not start; its log:\n{log.read_text()[-5000:]}')
    # a CI timeout's SIGTERM becomes KeyboardInterrupt, so this finalizer still runs
    old_term = signal.getsignal(signal.SIGTERM)
    if old_term == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield server
    finally:
        if old_term == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _stop(proc, server)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, ARTIFACTS / 'jupyterlab.log')


@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f'{CHROMIUM} not found: `apt-get install -y chromium` (or set DDPM_NB_CHROMIUM)')
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail('the browser test needs `pip install playwright` (never `playwright install`)')
    pw = sync_playwright().start()
    ctx = None
    try:
        ctx = pw.chromium.launch_persistent_context(  # a fresh profile in a temp dir
            str(tmp_path_factory.mktemp('chromium-profile')),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=VIEWPORT,
            device_scale_factor=1,
        )
        ctx.add_init_script(HELPERS_JS)
        yield ctx
    finally:  # also after Ctrl-C, when the driver may already be gone: closing must not mask the real error
        for close in ([ctx.close] if ctx else []) + [pw.stop]:
            try:
                close()
            except Exception:
                pass


@dataclass
class Report:
    name: str
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    widgets_ok: int = 0
    seconds: float = 0.0
    shots: list = field(default_factory=list)


def _screenshot(page, stem: str, name: str) -> Path:
    """The whole notebook after its run in one JPEG of at most MAX_SHOT_BYTES: the page's top bars, then the
    notebook scrolled through in viewport-sized slices and stitched (any length; Chromium caps a viewport's
    height), shrunk until it fits the budget (long notebooks: the plots stay recognisable, small text does not;
    the widget screenshots are full size)."""
    from io import BytesIO
    from PIL import Image

    geo_js = """(path) => { const p = window.__ddpm.panel(path);
        const outer = p.content.node.querySelector('.jp-WindowedPanel-outer') || p.content.node;
        const r = outer.getBoundingClientRect();
        const cells = p.content.widgets, last = cells.length ? cells[cells.length - 1].node : null;
        // up to the last cell: the notebook pads its end with about a viewport of blank ("scroll past end")
        const total = last ? Math.round(last.getBoundingClientRect().bottom - r.top + outer.scrollTop + 30) : outer.scrollHeight;
        return {top: Math.round(r.top), height: outer.clientHeight, total: Math.min(total, outer.scrollHeight),
                below: window.innerHeight - Math.round(r.bottom)}; }"""
    g = page.evaluate(geo_js, name)
    page.set_viewport_size(
        {'width': VIEWPORT['width'], 'height': int(min(max(g['top'] + g['total'] + g['below'], VIEWPORT['height']), 6000))}
    )
    for _ in range(20):  # let JupyterLab lay itself out for the new height
        page.wait_for_timeout(250)
        g2 = page.evaluate(geo_js, name)
        if g2['below'] == g['below'] and g2['top'] == g['top']:
            break
    g = g2
    width, total = VIEWPORT['width'], min(g['total'], 60_000)
    sheet = Image.new('RGB', (width, g['top'] + total), 'white')
    off = 0
    while True:
        shown = page.evaluate(
            """([path, off]) => { const p = window.__ddpm.panel(path);
            const outer = p.content.node.querySelector('.jp-WindowedPanel-outer') || p.content.node;
            outer.scrollTop = off; return outer.scrollTop; }""",
            [name, off],
        )
        page.wait_for_timeout(300)
        if off == 0:
            sheet.paste(Image.open(BytesIO(page.screenshot(clip={'x': 0, 'y': 0, 'width': width, 'height': g['top']}))), (0, 0))
        shot = Image.open(BytesIO(page.screenshot(clip={'x': 0, 'y': g['top'], 'width': width, 'height': g['height']})))
        sheet.paste(shot, (0, g['top'] + shown))
        off = shown + g['height']
        if off >= total:
            break
    page.evaluate(
        """(path) => { const p = window.__ddpm.panel(path);
        (p.content.node.querySelector('.jp-WindowedPanel-outer') || p.content.node).scrollTop = 0; }""",
        name,
    )
    page.set_viewport_size(VIEWPORT)
    scale = 1.0
    while True:
        im = sheet if scale == 1.0 else sheet.resize((round(sheet.width * scale), round(sheet.height * scale)), Image.LANCZOS)
        buf = BytesIO()
        im.save(buf, 'JPEG', quality=60, optimize=True)
        if buf.tell() <= MAX_SHOT_BYTES or im.width < 300:
            break
        scale *= 0.95 * (MAX_SHOT_BYTES / buf.tell()) ** 0.5
    out = ARTIFACTS / f'{stem}.jpg'
    out.write_bytes(buf.getvalue())
    return out


def run_in_lab(context, lab: Lab, name: str, timeout: float = TIMEOUT, stem: str = None) -> Report:
    """Open `name` (relative to lab.root) in JupyterLab, Run All Cells from the menu, and report what went wrong.
    Always shuts the notebook's kernel down and closes the page."""
    stem = stem or Path(name).stem
    rep = Report(name)
    page = context.new_page()
    console = []
    page.on('console', lambda m: console.append(f'[{m.type}] {m.text}') if m.type in ('error', 'warning') else None)
    page.on('pageerror', lambda e: console.append(f'[pageerror] {e}'))
    t0 = time.monotonic()
    try:
        page.goto(f'{lab.url}/lab/workspaces/{stem}/tree/{name}?token={lab.token}', wait_until='domcontentloaded')
        page.wait_for_function('(p) => window.__ddpm && window.__ddpm.panel(p)', arg=name, timeout=120_000)
        phase = {'open': time.monotonic() - t0}
        # the kernel must be up before Run All (the notebook's own kernelspec, python3)
        deadline = time.monotonic() + KERNEL_START_TIMEOUT
        while (k := page.evaluate('(p) => window.__ddpm.kernel(p)', name)) != 'idle':
            if time.monotonic() > deadline:
                rep.problems.append(f'kernel not idle {KERNEL_START_TIMEOUT}s after opening (status: {k})')
                return rep
            page.wait_for_timeout(500)
        phase['kernel'] = time.monotonic() - t0
        page.evaluate(
            """(p) => { const panel = window.__ddpm.panel(p);
            window.jupyterapp.shell.activateById(panel.id); panel.content.activeCellIndex = 0; }""",
            name,
        )
        # Run → Run All Cells, as a reader would
        how = 'menu Run → Run All Cells'
        try:
            page.locator('#jp-MainMenu .lm-MenuBar-item').filter(has_text=re.compile(r'^\s*Run\s*$')).click(timeout=10_000)
            page.locator('.lm-Menu .lm-Menu-item[data-command="runmenu:run-all"]').click(timeout=10_000)
            page.wait_for_function(
                """(p) => { const s = window.__ddpm.state(p);
                return s && (s.running > 0 || s.notRun.length < s.total || s.errors.length > 0); }""",
                arg=name,
                timeout=15_000,
            )
        except Exception as e:  # the menu moved or did nothing: the same command, through the app
            page.keyboard.press('Escape')
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            how = f'command notebook:run-all-cells (the menu failed: {type(e).__name__}: {str(e).splitlines()[0][:200]})'
        rep.notes.append(f'ran via {how}')
        started, idle_since, state = time.monotonic(), None, None
        while True:
            page.wait_for_timeout(1000)
            state = page.evaluate('(p) => window.__ddpm.state(p)', name)
            if state is None:
                rep.problems.append('the notebook panel disappeared')
                break
            if state['kernel'] in ('dead', 'restarting', 'autorestarting', 'no kernel'):
                rep.problems.append(f"kernel {state['kernel']} (crashed or out of memory?)")
                break
            quiet = state['kernel'] == 'idle' and state['running'] == 0
            if quiet and (not state['notRun'] or state['errors']):
                break
            idle_since = (idle_since or time.monotonic()) if quiet else None
            if idle_since and time.monotonic() - idle_since > 30:  # Run All never started or stopped silently
                break
            if time.monotonic() - started > timeout:
                b = state['busy'] or {}
                rep.problems.append(
                    f"timeout: after {timeout:.0f}s (DDPM_NB_BROWSER_TIMEOUT) cell {b.get('cell')} still runs "
                    f"({b.get('source')!r}), {state['running'] - 1} queued behind it; kernel {state['kernel']}"
                )
                break
        rep.seconds = phase['run'] = time.monotonic() - t0
        if state:
            for e in state['errors']:
                rep.problems.append(f"cell {e['cell']} raised {_clip(_ansi(e['text']))}")
            for s in state['stderr']:
                if TRACEBACK_RE.search(_ansi(s['text'])):
                    rep.problems.append(f"cell {s['cell']} printed a traceback: {_clip(_ansi(s['text']))}")
                else:
                    rep.notes.append(f"cell {s['cell']} stderr (not an error): {_ansi(s['text'])[:300]!r}")
            if state['notRun'] and not any('timeout' in p or 'kernel' in p for p in rep.problems):
                rep.problems.append(f"{len(state['notRun'])} of {state['total']} code cells never ran (cells {state['notRun'][:20]})")
        if not rep.problems:  # the page, not just the model: nothing rendered as a traceback
            for t in page.evaluate('(p) => window.__ddpm.domErrors(p)', name):
                if TRACEBACK_RE.search(t):
                    rep.problems.append(f'an error is rendered on the page:\n{t[-2000:]}')
        # widgets: wait for "Loading widget..." to resolve, then every widget output must hold a live view
        deadline = time.monotonic() + WIDGET_SETTLE_TIMEOUT
        while True:
            ws = page.evaluate('(p) => window.__ddpm.widgets(p)', name) or []
            loading = any('Loading widget' in v['text'] for w in ws for v in w['views'])
            if not loading or time.monotonic() > deadline:
                break
            page.wait_for_timeout(1000)
        for w in ws:
            for v in w['views']:
                why = [b for b in BAD_WIDGET_TEXT if b in v['text']]
                if v.get('mime'):
                    why.append(f"drawn as {v['mime']}, i.e. the text fallback: is jupyterlab_widgets installed?")
                if v['errorView']:
                    why.append('ipywidgets error view')
                if not v['rendered'] and not why:
                    why.append('no widget view inside the output')
                if v['height'] < 5 and not why:
                    why.append('zero height')
                if why:
                    rep.problems.append(f"cell {w['cell']}: widget did not render ({'; '.join(why)}): {v['text'][:200]!r}")
                else:
                    rep.widgets_ok += 1
        phase['widgets'] = time.monotonic() - t0
        # screenshots: the notebook after its run, and each widget on its own
        page.evaluate('() => window.jupyterapp.shell.collapseLeft()')
        for w in ws:
            for v in w['views']:
                try:
                    el = page.locator(f"[data-ddpm-widget=\"{w['cell']}-{v['output']}\"]")
                    el.scroll_into_view_if_needed(timeout=5000)
                    p = ARTIFACTS / f"{stem}.cell{w['cell']}.widget.png"
                    el.screenshot(path=str(p), timeout=10_000)
                    rep.shots.append(p)
                except Exception as e:
                    rep.notes.append(f"widget screenshot (cell {w['cell']}) failed: {type(e).__name__}: {e}")
        page.evaluate("(p) => { window.__ddpm.panel(p).content.activeCellIndex = 0; }", name)
        rep.shots.insert(0, _screenshot(page, stem, name))
        phase['screenshots'] = time.monotonic() - t0
        rep.notes.append('timeline (s since open): ' + ', '.join(f'{k} {v:.1f}' for k, v in phase.items()))
        return rep
    except Exception as e:
        rep.problems.append(f'browser error: {type(e).__name__}: {e}')
        try:
            rep.shots.append(ARTIFACTS / f'{stem}.failed.jpg')
            page.screenshot(path=str(rep.shots[-1]), type='jpeg', quality=60)
        except Exception:
            pass
        return rep
    finally:
        rep.seconds = rep.seconds or time.monotonic() - t0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f'{stem}.log').write_text(
            f'{name}: {rep.seconds:.1f}s, {rep.widgets_ok} widget(s) rendered\n\nPROBLEMS\n'
            + '\n\n'.join(rep.problems)
            + '\n\nNOTES\n'
            + '\n'.join(rep.notes)
            + '\n\nBROWSER CONSOLE (errors and warnings)\n'
            + '\n'.join(console)
        )
        try:  # shut this notebook's kernel down now: the next notebook gets the CPU and memory
            for s in _api(lab, '/api/sessions'):
                if s.get('path', '').endswith(Path(name).name):
                    _api(lab, f"/api/sessions/{s['id']}", method='DELETE', timeout=30)
        except Exception as e:
            rep.notes.append(f'kernel shutdown via REST failed: {e}')
        page.close()


def _ansi(s: str) -> str:
    return re.sub(r'\x1b\[[0-9;]*[A-Za-z]', '', s)


def _clip(s: str, n: int = 3000) -> str:
    "The first line (the exception) and the end of a traceback."
    head, _, rest = s.strip().partition('\n')
    return head + '\n' + (rest if len(rest) <= n else '...\n' + rest[-n:])


@pytest.fixture(scope='module', autouse=True)
def _banner():
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # the folder holds the latest run only
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    v = versions()
    (ARTIFACTS / 'versions.txt').write_text(''.join(f'{k}: {val}\n' for k, val in v.items()))
    print(f"\nbrowser test: {', '.join(f'{k} {val}' for k, val in v.items())}\nartifacts: {ARTIFACTS}")
    yield


# --- the detector must catch what it claims to catch --------------------------------------------------
def _nb(*sources) -> str:
    return json.dumps(
        {
            'cells': [{'cell_type': 'code', 'execution_count': None, 'metadata': {}, 'outputs': [], 'source': s} for s in sources],
            'metadata': {'kernelspec': {'display_name': 'Python 3 (ipykernel)', 'language': 'python', 'name': 'python3'}},
            'nbformat': 4,
            'nbformat_minor': 5,
        }
    )


BROKEN = {
    # an exception in the middle: Run All stops there, the last cell never runs
    '_selftest_raises.ipynb': _nb('x = 1', "raise RuntimeError('deliberate failure')", "print('never reached')"),
    # a traceback printed to stderr, the cell itself "succeeds"
    '_selftest_stderr.ipynb': _nb('import traceback\ntry:\n    1/0\nexcept Exception:\n    traceback.print_exc()'),
    # widgets: one that renders (control), one pointing at a model the kernel never created,
    # one whose JavaScript module does not exist
    # (cell 0 checks what the kernels inherit: the quick setting, and the inline plots a reader sees)
    '_selftest_widgets.ipynb': _nb(
        "import os, matplotlib\nassert os.environ.get('DDPM_NB_QUICK') == '1', 'kernels must inherit DDPM_NB_QUICK=1'\n"
        "assert 'inline' in matplotlib.get_backend(), matplotlib.get_backend()",
        "import ipywidgets as w\nw.IntSlider(3, description='ok')",
        "from IPython.display import display\ndisplay({'" + WIDGET_MIME + "': {'model_id': 'no-such-model', "
        "'version_major': 2, 'version_minor': 0}, 'text/plain': 'ghost'}, raw=True)",
        "import ipywidgets as w\nfrom traitlets import Unicode\n"
        "class Ghost(w.DOMWidget):\n    _model_module = Unicode('ddpm-nb-no-such-module').tag(sync=True)\n"
        "    _view_module = Unicode('ddpm-nb-no-such-module').tag(sync=True)\n"
        "    _model_name = Unicode('GhostModel').tag(sync=True)\n    _view_name = Unicode('GhostView').tag(sync=True)\n"
        "Ghost()",
    ),
    # a cell that outlives the notebook's time budget (given 5 s below)
    '_selftest_timeout.ipynb': _nb('import time', 'time.sleep(120)', "print('after')"),
}


def test_detector_catches_broken_notebooks(lab, browser):
    for name, text in BROKEN.items():
        (lab.root / name).write_text(text)
    reps = {name: run_in_lab(browser, lab, name, timeout=5 if 'timeout' in name else 120) for name in BROKEN}
    for name, rep in reps.items():
        print(f'\n{name}: {rep.seconds:.1f}s, problems found:', *rep.problems, sep='\n  - ')
    r = reps['_selftest_raises.ipynb'].problems
    assert any('RuntimeError: deliberate failure' in p for p in r), r
    assert any('never ran' in p for p in r), r
    r = reps['_selftest_stderr.ipynb'].problems
    assert any('printed a traceback' in p and 'ZeroDivisionError' in p for p in r), r
    r, w = reps['_selftest_widgets.ipynb'].problems, reps['_selftest_widgets.ipynb'].widgets_ok
    assert w == 1, f'the plain IntSlider should count as rendered ({w}); problems: {r}'
    assert any(p.startswith('cell 2:') and 'model not found' in p for p in r), r
    assert any(p.startswith('cell 3:') and 'error view' in p for p in r), r
    assert len(r) == 2, r  # and nothing else: cell 0 (environment) passed, the good slider rendered
    r = reps['_selftest_timeout.ipynb'].problems
    assert len(r) == 1 and r[0].startswith('timeout') and "cell 1 still runs ('time.sleep(120)'), 1 queued" in r[0], r


# --- the course ------------------------------------------------------------------------------------
@pytest.mark.parametrize('nb', NBS, ids=[p.stem for p in NBS])
def test_notebook_runs_in_jupyterlab(nb, lab, browser):
    rep = run_in_lab(browser, lab, nb.name)
    print(
        f"\n{nb.name}: {rep.seconds:.1f}s in JupyterLab, {rep.widgets_ok} widget(s) rendered; "
        f"screenshots: {', '.join(str(p.relative_to(ROOT)) for p in rep.shots if p.exists())}"
    )
    for n in rep.notes:
        print('  note:', n)
    if rep.problems:
        pytest.fail(
            f'{nb.name} in JupyterLab:\n\n' + '\n\n'.join(rep.problems) + f'\n\n(screenshot, browser console and log in {ARTIFACTS})',
            pytrace=False,
        )
