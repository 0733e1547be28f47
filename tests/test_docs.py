"""The repository stands alone: every Markdown file it names is in it, no file points at the
developers' folder beside the checkout, and every section of docs/PAPER.md or docs/DESIGN.md that
a file cites is a heading of that document."""

from __future__ import annotations

import ast
import os
import re
import subprocess
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("src", "tests", "benchmarks", "configs", "scripts", "docs", "Makefile", "README.md")
"""What is checked: the package, its tests, benchmarks, configs, scripts, docs and the README."""
SECTIONED = ("docs/PAPER.md", "docs/DESIGN.md")
"""The documents that code cites by section (`docs/PAPER.md §2.3`)."""
HISTORY = {"docs/LOG.md"}
"""Dated records: their entries describe the project as it was then and are not rewritten, so the
documents they name are not checked (the pointer check still applies)."""
ELSEWHERE = {"LICENSE.md": "the licence file of the datablations repository, named in its data's README"}
"""Markdown names that belong to another repository."""
OUTSIDE = "../" + "shared"  # split so that this file does not contain what it looks for
SKIPPED_DIRS = {".git", ".venv", "__pycache__", ".pytest_cache", "out", "build"}

MD_NAME = re.compile(r"(?<![\w./-])((?:[\w.-]+/)*[\w.-]+\.md)\b")
BARE_CITATION = re.compile(r"(?<![\w./-])([A-Z][A-Z0-9_]{2,})(?:\.md)?`?\s*§\s*\d")
SECTION_CITATION = re.compile(r"(docs/(?:PAPER|DESIGN)\.md)`?((?:\s*(?:,|;|and|\()?\s*§\s*\d+(?:\.\d+)*)+)")
SECTION_NUMBER = re.compile(r"§\s*(\d+(?:\.\d+)*)")
HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s", re.MULTILINE)


def _walk() -> list[str]:
    """Every file under ROOT but version control, environments, caches and build outputs."""
    found = []
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not d.endswith(".egg-info")]
        found += [str(Path(top, f).relative_to(ROOT)) for f in files]
    return found


@lru_cache(maxsize=1)
def repo_files() -> tuple[str, ...]:
    """The repository's files (tracked, or untracked and not ignored), relative to ROOT."""
    try:
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                                cwd=ROOT, capture_output=True, check=True, timeout=60).stdout
        names = [n for n in listed.decode().split("\0") if n and (ROOT / n).is_file()]
    except (OSError, subprocess.SubprocessError):
        names = _walk()
    return tuple(sorted(set(names)))


@lru_cache(maxsize=1)
def scanned_texts() -> dict[str, str]:
    """Path -> text of every scanned file that is text."""
    texts = {}
    for name in repo_files():
        if not any(name == s or name.startswith(s + "/") for s in SCANNED):
            continue
        data = (ROOT / name).read_bytes()
        if b"\0" in data:
            continue
        try:
            texts[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return texts


def file_names_in_code() -> set[str]:
    """Markdown names the package itself uses as file names (string constants such as
    "report.md", which `slmscale report` writes): outputs, not documents of the repository."""
    names = set()
    for name, text in scanned_texts().items():
        if name.startswith("src/") and name.endswith(".py"):
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                        and re.fullmatch(r"[\w.-]+\.md", node.value):
                    names.add(node.value)
    return names


def _line(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def test_every_named_markdown_file_is_in_the_repository():
    files = set(repo_files())
    basenames = {Path(f).name for f in files}
    outputs = file_names_in_code()
    missing = []
    for name, text in scanned_texts().items():
        if name in HISTORY:
            continue
        for match in MD_NAME.finditer(text):
            cited = match.group(1)
            base = Path(cited).name
            if base in outputs or base in ELSEWHERE:
                continue
            if "/" in cited:
                own_dir = os.path.normpath(str(Path(name).parent / cited))
                found = cited in files or own_dir in files
            else:
                found = base in basenames
            if not found:
                missing.append(f"{name}:{_line(text, match.start())}: {cited}")
    assert not missing, "Markdown files named but not in the repository:\n" + "\n".join(missing)


def test_documents_are_cited_by_their_path():
    """A section sign after a bare upper-case document name (with or without ".md") names no file
    of the repository: a section is cited after the document's path, docs/PAPER.md or
    docs/DESIGN.md."""
    bare = [f"{name}:{_line(text, m.start())}: {m.group(0).strip()}"
            for name, text in scanned_texts().items() if name not in HISTORY
            for m in BARE_CITATION.finditer(text)]
    assert not bare, "section citations without the document's path:\n" + "\n".join(bare)


def test_nothing_points_outside_the_repository():
    pointing = [f"{name}:{_line(text, text.index(OUTSIDE))}"
                for name, text in scanned_texts().items() if OUTSIDE in text]
    assert not pointing, f"files that mention {OUTSIDE}:\n" + "\n".join(pointing)


def _sections(document: str) -> set[str]:
    return set(HEADING.findall((ROOT / document).read_text(encoding="utf-8")))


def test_cited_sections_exist():
    sections = {doc: _sections(doc) for doc in SECTIONED}
    assert all(sections.values()), f"no numbered headings in {[d for d, s in sections.items() if not s]}"
    wrong = []
    for name, text in scanned_texts().items():
        for match in SECTION_CITATION.finditer(text):
            document = match.group(1)
            for number in SECTION_NUMBER.findall(match.group(2)):
                if number not in sections[document]:
                    wrong.append(f"{name}:{_line(text, match.start())}: {document} §{number}")
        if name in SECTIONED:  # a § not after a document's path refers to this document
            spans = [m.span(2) for m in SECTION_CITATION.finditer(text)]
            for match in SECTION_NUMBER.finditer(text):
                cited = any(start <= match.start() < end for start, end in spans)
                if not cited and match.group(1) not in sections[name]:
                    wrong.append(f"{name}:{_line(text, match.start())}: §{match.group(1)}")
    assert not wrong, "cited sections that are not headings:\n" + "\n".join(wrong)
