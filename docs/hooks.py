"""mkdocs hook: the Benchmarks pages come from whatever ``benchmarks/results/`` holds at build time.

Every ``benchmarks/results/*.md`` becomes a page ``benchmarks/results/<name>.md`` (its images beside
it), and the marker ``<!-- benchmark results -->`` in ``docs/benchmarks.md`` becomes a list of links
to them, so a results file that is added, renamed or removed never breaks ``mkdocs build --strict``.
A link inside a results file (or the Benchmarks page) whose target is not part of the site is shown
as plain text.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File, Files

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
PREFIX = "benchmarks/results/"
MARKER = "<!-- benchmark results -->"
LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def _results() -> list[Path]:
    return sorted(RESULTS.glob("*.md")) if RESULTS.is_dir() else []


def on_files(files: Files, config) -> Files:  # noqa: ANN001 - mkdocs hook signature
    for path in _results() + sorted(RESULTS.rglob("*.png")):
        files.append(File.generated(config, PREFIX + path.relative_to(RESULTS).as_posix(), abs_src_path=str(path)))
    return files


def _title(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return path.stem


def on_page_markdown(markdown: str, page, config, files: Files) -> str:  # noqa: ANN001
    if MARKER in markdown:
        rows = [f"- [`{p.name}`]({PREFIX}{p.name}): {_title(p)}" for p in _results()]
        markdown = markdown.replace(MARKER, "\n".join(rows) or "*(no results files in this checkout)*")
    if page.file.src_uri.startswith(PREFIX) or page.file.src_uri == "benchmarks.md":
        here = Path(page.file.src_uri).parent

        def keep_or_unlink(match: re.Match[str]) -> str:
            bang, text, target = match.groups()
            if "://" in target or target.startswith("#"):
                return match.group(0)
            resolved = (here / target.split("#")[0]).as_posix()
            parts: list[str] = []
            for part in resolved.split("/"):
                if part == "..":
                    parts = parts[:-1]
                elif part != ".":
                    parts.append(part)
            if files.get_file_from_path("/".join(parts)) is not None:
                return match.group(0)
            return f"`{target}`" if bang else f"{text} (`{target}`)"

        markdown = LINK.sub(keep_or_unlink, markdown)
    return markdown
