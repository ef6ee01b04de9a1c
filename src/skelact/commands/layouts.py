"""``skelact layouts``: the built-in joint layouts, one line each."""

from __future__ import annotations

import argparse

NAME = "layouts"
HELP = "list the built-in joint layouts"
DESCRIPTION = None


def add_arguments(p: argparse.ArgumentParser) -> None:
    """No arguments."""


def run(args: argparse.Namespace) -> int:
    from skelact.skeleton.layout import available_layouts, get_layout

    for name in available_layouts():
        layout = get_layout(name)
        # the first sentence only: the YAML descriptions go on to justify bones and centre at length
        summary = layout.description.strip().split(". ")[0].split(":")[0]
        print(f"{name:<14} {layout.num_joints:>3} joints  centre {layout.joints[layout.center]:<16} {summary}")
    return 0

