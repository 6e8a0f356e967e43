"""`python -m bench`: see bench/cli.py."""

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
sys.exit(code)
