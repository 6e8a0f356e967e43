"""`python -m bench`: see bench/cli.py."""

import gc
import sys

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
