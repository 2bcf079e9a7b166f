"""The documentation holds together: every relative link in README.md, docs/*.md and benchmarks/README.md points
to a file of this repository (and, for ``#anchor`` links into a Markdown file, to one of its headings, by GitHub's
slug rule); the README stays short; no page sends a reader outside the repository (``../shared``) or to a design
document it does not hold (``DESIGN.md``); the pages the code cites exist, with the sections it cites.

Each check is a function returning what it found wrong, so that the tests at the bottom can show that it does
find a broken link, a missing heading, a long README and a forbidden mention.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOC_PAGES = ("index", "commands", "cohorts", "preprocessing", "dicom", "synthetic", "formats")
README_MAX_LINES = 320
FORBIDDEN = ("../shared", "DESIGN.md")


def doc_files() -> list[Path]:
    """README.md, every docs/*.md and benchmarks/README.md."""
    return [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]


def _prose_lines(text: str) -> list[str]:
    """The lines of ``text`` outside fenced code blocks (a fenced block's lines become empty)."""
    lines, fence = [], ""
    for line in text.splitlines():
        stripped = line.lstrip()
        marker = re.match(r"(`{3,}|~{3,})", stripped)
        if fence:
            if marker and marker.group(1)[0] == fence[0] and len(marker.group(1)) >= len(fence):
                fence = ""
            lines.append("")
        elif marker:
            fence = marker.group(1)
            lines.append("")
        else:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text (links as their text, no code or emphasis marks),
    lower-cased, every character but letters, digits, ``_``, ``-`` and spaces dropped, spaces as ``-``."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of a Markdown text's ATX headings (a repeated slug gets ``-1``, ``-2``, ... as on GitHub)."""
    seen: dict[str, int] = {}
    found = set()
    for line in _prose_lines(text):
        match = re.match(r" {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", line)
        if not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(text: str) -> list[str]:
    """The targets of the inline links and images of a Markdown text, outside code."""
    prose = "\n".join(_prose_lines(text))
    prose = re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", prose, flags=re.DOTALL)  # code spans
    return re.findall(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", prose)


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """The relative links of the Markdown file ``path`` that do not resolve, each with why."""
    problems = []
    for target in links(path.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target, flags=re.IGNORECASE):  # https:, mailto:, ...
            continue
        file_part, _, anchor = target.partition("#")
        linked = (
            path
            if not file_part
            else (root / file_part.lstrip("/") if file_part.startswith("/") else path.parent / file_part)
        )
        linked = linked.resolve()
        if not linked.is_relative_to(root.resolve()):
            problems.append(f"{target}: outside the repository")
        elif not linked.exists():
            problems.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked.read_text(encoding="utf-8")):
            problems.append(f"{target}: no heading #{anchor} in {linked.name}")
    return problems


def too_long(text: str, limit: int = README_MAX_LINES) -> str | None:
    """Why ``text`` is too long for the README, or None."""
    count = len(text.splitlines())
    return f"{count} lines, more than {limit}: move the detail into docs/" if count > limit else None


def forbidden_mentions(text: str) -> list[str]:
    """The forbidden strings ``text`` holds."""
    return [word for word in FORBIDDEN if word in text]


def cited_sections(text: str) -> list[tuple[str, str | None]]:
    """``(page, section)`` for each ``docs/PAGE.md`` a source text cites, with the section named right after it
    in quotes (``docs/synthetic.md, "Outcome model"``), or None."""
    return [
        (page, section or None)
        for page, section in re.findall(r"docs/([\w-]+\.md)(?:,? *[\"'\u201c]([^\"'\u201d\n]+)[\"'\u201d])?", text)
    ]


def missing_citations(text: str, docs: Path = ROOT / "docs") -> list[str]:
    """The pages, and the sections (a heading, or a paragraph led by the name in bold), that ``text`` cites in
    docs/ and that do not exist."""
    problems = []
    for page, section in cited_sections(text):
        file = docs / page
        if not file.is_file():
            problems.append(f"docs/{page}: no such page")
        elif section:
            body = file.read_text(encoding="utf-8")
            if slug(section) not in anchors(body) and f"**{section}" not in body:
                problems.append(f'docs/{page}, "{section}": no such section')
    return problems


# --- the documentation as it is -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    assert path.is_file()
    assert broken_links(path) == []


def test_the_readme_is_short() -> None:
    assert too_long(README.read_text(encoding="utf-8")) is None


@pytest.mark.parametrize("path", doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_page_mentions_shared_or_design(path: Path) -> None:
    assert forbidden_mentions(path.read_text(encoding="utf-8")) == []


def test_the_readme_links_every_docs_page_and_the_benchmarks() -> None:
    linked = {target.partition("#")[0] for target in links(README.read_text(encoding="utf-8"))}
    pages = {f"docs/{page}.md" for page in DOC_PAGES} | {str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")}
    assert pages | {"benchmarks/README.md"} <= linked


def test_the_readme_keeps_the_commands_ci_runs() -> None:
    """The two one-command sections, with the commands CI (`.ci/run`) and a new reader run, unchanged."""
    text = README.read_text(encoding="utf-8")
    assert "## Install and run the demo (one command)" in text and "## Run the tests (one command)" in text
    tests = 'python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 -e ".[test]" && .venv/bin/python -m pytest'
    assert tests in text
    assert "python3 -m venv .venv && .venv/bin/pip install torch==2.13.0 -e . && .venv/bin/lgerisk demo" in text


def test_the_pages_and_sections_the_code_cites_exist() -> None:
    problems = []
    for source in sorted((ROOT / "lgerisk").rglob("*")):
        if source.suffix in (".py", ".yaml") and source.is_file():
            problems += [
                f"{source.relative_to(ROOT)}: {p}" for p in missing_citations(source.read_text(encoding="utf-8"))
            ]
    assert problems == []


def test_the_synthetic_page_has_the_generators_sections() -> None:
    """The ``lgerisk/synth`` package cites docs/synthetic.md for the generator's design and its outcome model."""
    found = anchors((ROOT / "docs" / "synthetic.md").read_text(encoding="utf-8"))
    for section in (
        "Reproducibility",
        "Acquisition (drawn per case)",
        "Anatomy",
        "Image formation",
        "Scar patterns",
        "Labels (mask) and ground truth",
        "Clinical covariates",
        "Outcome model",
        "Files written",
        "sample_data",
    ):
        assert slug(section) in found, section


# --- the checks find what they look for ---------------------------------------------------------------------


def test_the_slug_rule_is_githubs() -> None:
    assert slug("`lgerisk pretrain`") == "lgerisk-pretrain"
    assert slug("Stopping a run: Ctrl-C, SIGTERM, a killed job") == "stopping-a-run-ctrl-c-sigterm-a-killed-job"
    assert slug("Ablation: what scar % misses (SYNTHETIC)") == "ablation-what-scar--misses-synthetic"
    assert slug("Labels (mask) and ground truth") == "labels-mask-and-ground-truth"
    assert slug("sample_data") == "sample_data"
    assert slug("See [the page](x.md) here") == "see-the-page-here"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n### A b ##\n") == {"a", "a-1", "a-b"}


def test_a_broken_link_or_a_missing_heading_is_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Title\n\n## A section\n", encoding="utf-8")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/other.md) [ok](docs/other.md#a-section) [ok](#top) [web](https://example.org/x)\n"
        "[gone](docs/missing.md) [nohead](docs/other.md#no-such) [here](#nowhere) [up](../shared/x)\n"
        "`[code](not/a/link.md)`\n```\n[fenced](not/a/link.md)\n```\n\n# Top\n",
        encoding="utf-8",
    )
    assert broken_links(page, root=tmp_path) == [
        "docs/missing.md: no such file",
        "docs/other.md#no-such: no heading #no-such in other.md",
        "#nowhere: no heading #nowhere in README.md",
        "../shared/x: outside the repository",
    ]


def test_a_long_readme_is_found() -> None:
    assert too_long("line\n" * README_MAX_LINES) is None
    assert too_long("line\n" * (README_MAX_LINES + 1)) is not None


def test_forbidden_mentions_are_found() -> None:
    assert forbidden_mentions("data in ../shared/data") == ["../shared"]
    assert forbidden_mentions("as DESIGN.md planned") == ["DESIGN.md"]
    assert forbidden_mentions("docs/design.md and shared folders") == []


def test_a_missing_cited_page_or_section_is_found(tmp_path: Path) -> None:
    (tmp_path / "page.md").write_text("# Page\n\n## Outcome model\n\n**Feature table.** columns\n", encoding="utf-8")
    cited = (
        'see docs/page.md, "Outcome model"; docs/page.md "Feature table"; docs/page.md; '
        'docs/page.md, "Gone"; docs/none.md'
    )
    assert missing_citations(cited, docs=tmp_path) == [
        'docs/page.md, "Gone": no such section',
        "docs/none.md: no such page",
    ]
