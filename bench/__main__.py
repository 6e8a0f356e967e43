"""`python -m bench`: see bench/cli.py."""

from bench import interrupts

interrupts.install()  # first: a Ctrl-C while the CLI is still importing ends in one line, not a traceback

from bench.cli import main  # noqa: E402

interrupts.exit_process(main())
