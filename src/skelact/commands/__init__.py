"""The ``skelact`` commands, one module per command.

Each module holds ``NAME`` (the sub-command), ``HELP`` and ``DESCRIPTION`` (its help texts), ``add_arguments(parser)``
(its argparse arguments) and ``run(args) -> int`` (its exit status); optionally ``INTERRUPTED`` (the line Ctrl-C
prints) and ``OVERRIDES_FIELD`` (the argument that collects ``key=value`` items given after options).
:mod:`skelact.cli` lists the modules, parses and maps errors to exit codes. Modules here that are not commands
(``arguments``, ``report_lines``, ``protocol_config``) hold what several commands share.
"""
