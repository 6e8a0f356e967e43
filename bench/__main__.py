"""`python -m bench`: see bench/cli.py."""

import gc
import os
import sys

# Torch's OpenMP threads wait for work by spinning. On 2 cores shared with other work (load 7-9), a step of
# the default `make train` network took 1.3-3.5 s at torch's default 2 threads against 0.10-0.16 s at one
# (the first epoch of issue 25 was 35x slower); waiting passively, 2 threads took 0.06-0.09 s there. Beside
# one other training an epoch took 1.1x its idle time, against 2.5x spinning; idle, spinning is faster
# (5.9 s against 7.7 s). `make bench-threads` measures it. Set before torch loads its OpenMP runtime; a
# value the user exported wins (OMP_WAIT_POLICY=ACTIVE for a machine of one's own).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from bench import interrupts

try:
    from bench.cli import TRAINING_COMMANDS, main

    if sys.argv[1:2] and sys.argv[1] in TRAINING_COMMANDS:
        interrupts.install()  # kept until the process ends: a second Ctrl-C while it shuts down ends it at once
    code = main()
except KeyboardInterrupt:  # Ctrl-C before a command began: one line, not a traceback
    print("interrupted by SIGINT", file=sys.stderr)
    code = 130
# The garbage collector's last passes over torch's, Lightning's and MLflow's objects took 2.3 s of a 2.4 s
# exit after a training (measured after Ctrl-C, idle machine): skip them; atexit handlers and flushes still run.
gc.freeze()
sys.exit(code)
