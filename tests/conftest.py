import os

# Plots render off-screen under pytest.
os.environ.setdefault('MPLBACKEND', 'Agg')
# The plain suite's models are tiny: on a 2-core machine, torch's intra-op threads cost more in synchronisation than
# they gain (07_training: 194 s with 2 threads, 44 s with 1). The full run (DDPM_NB_TEST_FLAGS=slow) trains real
# models and keeps torch's default. Subprocesses started by the notebooks inherit the setting through the environment.
if 'slow' not in os.environ.get('DDPM_NB_TEST_FLAGS', '').split():
    os.environ.setdefault('OMP_NUM_THREADS', '1')
