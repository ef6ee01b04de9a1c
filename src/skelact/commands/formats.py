"""``skelact formats [FORMAT]``: the dataset formats ``skelact prepare`` reads, and one format's full description.

The description of a format is its reader module's docstring (``skelact/data/sources/<reader>.py``), the one source
of truth: this command prints it as a Markdown page, and ``docs/formats/<format>.md`` is the same page
(``tests/test_formats_docs.py`` fails when they differ; ``skelact formats FORMAT > docs/formats/FORMAT.md`` renews
it). Sphinx cross-references (``:func:`x.y```) are printed as plain code names.
"""

from __future__ import annotations

import argparse
import re
import sys

NAME = "formats"
HELP = "list the dataset formats prepare reads, or describe one (files, columns, shapes, units, missing joints)"
DESCRIPTION = ("Without FORMAT, one line per format of `skelact prepare`; with FORMAT, its description (the page "
               "docs/formats/FORMAT.md holds the same text).")

#: a Sphinx role such as :func:`skelact.data.splits.read_split_file` or :data:`~skelact.x.NAME`
_ROLE = re.compile(r":(?:func|class|meth|data|mod|attr|exc):`(~?)([^`]+)`")
_LITERAL_BLOCK = re.compile(r"(?<=\S)::$", re.MULTILINE)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("format", nargs="?", metavar="FORMAT", help="a format key (default: list them all)")


def _plain_role(match: re.Match) -> str:
    short, name = match.group(1), match.group(2)
    return f"``{name.rsplit('.', 1)[-1] if short else name}``"


def format_description(fmt: str) -> str:
    """The reader module's docstring of ``fmt``, cross-references made plain (a one-line error for an unknown
    format lists the known ones)."""
    from skelact.data.sources import source_class

    cls = source_class(fmt)
    doc = sys.modules[cls.__module__].__doc__ or ""
    # reST's "text::" before a literal block reads as "text:" in Markdown, where the indented block is code too
    return _LITERAL_BLOCK.sub(":", _ROLE.sub(_plain_role, doc.strip()))


def format_page(fmt: str) -> str:
    """The Markdown page of ``fmt``: what ``skelact formats FORMAT`` prints and ``docs/formats/FORMAT.md`` holds."""
    from skelact.data.sources import FORMATS

    description = format_description(fmt)  # first: an unknown format is one error line naming the known ones
    same = sorted(k for k, target in FORMATS.items() if target == FORMATS[fmt] and k != fmt)
    alias = f" (the same reader as {', '.join(f'`{k}`' for k in same)})" if same else ""
    return (f"# Format `{fmt}`\n\n"
            f"`skelact prepare {fmt} SRC OUT` reads this format{alias}. This page is printed by "
            f"`skelact formats {fmt}`; both come from the reader's own description.\n\n"
            f"{description}\n")


def run(args: argparse.Namespace) -> int:
    from skelact.data.sources import FORMATS

    if args.format is not None:
        sys.stdout.write(format_page(args.format))
        return 0
    for fmt in FORMATS:
        description = format_description(fmt)
        summary = description.splitlines()[0] if description else ""
        print(f"{fmt:<21} {summary}")
    print("\nskelact formats FORMAT describes one (also docs/formats/FORMAT.md)")
    return 0
