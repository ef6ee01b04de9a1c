"""The ``skelact`` command: lists the commands, parses, and maps errors to exit codes. No logic lives here.

Each command is a module of :mod:`skelact.commands` (its arguments and its run function). Every
:class:`~skelact.errors.SkelactError` is printed as one line ``skelact: error: ...`` and exits with status 2
(argparse's own usage errors use the same status). ``skelact prepare`` exits 0 when some input files were rejected
but at least one sample was written: it lists them and prints a ``skelact: warning:`` line on stderr. Ctrl-C exits
with status 130 and one line saying what state it left: ``prepare`` wrote nothing, an interrupted ``train`` names
the run and the ``skelact train --resume RUN`` that continues it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from skelact import __version__
from skelact.commands import (ensemble, evaluate, export, export_pyskl, extract_poses, formats, info, layouts,
                              plot_features, predict, prepare, pretrain, test, train)
from skelact.errors import SkelactError, disk_full_error, is_disk_full

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
#: the commands, in the order ``skelact --help`` lists them
COMMANDS = (prepare, formats, info, layouts, export_pyskl, train, pretrain, evaluate, test, ensemble, export, predict,
            plot_features, extract_poses)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skelact", description="Human action recognition from skeletons.")
    parser.add_argument("--version", action="version", version=f"skelact {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        p = sub.add_parser(command.NAME, help=command.HELP, description=command.DESCRIPTION)
        command.add_arguments(p)
        p.set_defaults(func=command.run, interrupted=getattr(command, "INTERRUPTED", None),
                       overrides_field=getattr(command, "OVERRIDES_FIELD", None))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``skelact`` console script; returns the exit status."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    # key=value overrides may come after options (`evaluate linear RUN --k=5 epochs=2`); argparse stops collecting
    # a positional list at the first option, so gather the stragglers here for the commands that take overrides
    override_field = args.overrides_field
    stray = [u for u in unknown if "=" in u and not u.startswith("-")]
    if override_field and len(stray) == len(unknown):
        getattr(args, override_field).extend(stray)
    elif unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        return int(args.func(args))
    except SkelactError as e:
        print(f"skelact: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"skelact: {getattr(args, 'interrupted', None) or 'interrupted'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # output piped into `head` and closed early: not an error; keep Python from complaining at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:
        # the last line of defence: the commands turn a full disk into a DiskFullError where they write, with what
        # they cleaned up; one that still escapes is said in one line, never as a traceback
        if not is_disk_full(e):
            raise
        print(f"skelact: error: {disk_full_error(e.filename or '.')}", file=sys.stderr)
        return EXIT_USER_ERROR
    except MemoryError:
        print("skelact: error: out of memory: the input asks for more memory than this machine has (a file claiming "
              "absurd sizes?); nothing was written", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
