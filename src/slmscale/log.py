"""Logging and progress bars, configured once by the CLI."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def setup_logging(verbosity: int = 0) -> None:
    """slmscale's own messages at INFO (`-q`: WARNING, `-v`: DEBUG); other libraries' only from
    WARNING unless `-v` (faiss alone printed 8 INFO lines, a ModuleNotFoundError among them, in
    every stage that loads it)."""
    ours = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0 else logging.INFO
    logging.basicConfig(level=ours if verbosity > 0 else max(ours, logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", stream=sys.stderr, force=True)
    logging.getLogger("slmscale").setLevel(ours)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def progress(iterable: Iterable[T], desc: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """A tqdm bar on stderr that stays quiet when stderr is not a terminal and the loop is short."""
    return iter(tqdm(iterable, desc=desc, total=total, unit=unit, dynamic_ncols=True,
                     mininterval=1.0, disable=None, file=sys.stderr))
