"""What the command-line programs share: one-line failures and the common argument checks."""
import sys


def fail(message):
    """Ends the program with exit code 2 and one line naming what is wrong."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def check_args(argv, logdir):
    """No stray positional arguments, and a --logdir."""
    if len(argv) > 1:
        fail(f"unexpected arguments {argv[1:]} (flags are --name=value)")
    if not logdir:
        fail("--logdir is required")
