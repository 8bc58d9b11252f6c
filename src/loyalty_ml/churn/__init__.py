"""churn.

LightGBM runs its trees with OpenMP. With libgomp's default (active) wait policy, idle threads
spin at every barrier; on a machine whose cores are shared with other jobs this made training
~10x slower (27k rows x 86 features, 300 rounds, 2 threads: 72 s wall vs 6.3 s with the passive
policy, measured 2026-11-25 at load ~6). The policy is read when libgomp is loaded, so it is set
here, before any churn module imports LightGBM; an explicit ``OMP_WAIT_POLICY`` wins.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
