"""mkdocs hooks: pages that are generated from the code at build time, so they cannot drift from it.

- ``<!-- range types -->`` becomes the table of the range types of ``genlight/ranges.py`` (name, range,
  what it is for: the ``#:`` comment above each), read from the source without importing it;
- ``<!-- api: genlight.modules -->`` / ``<!-- api: genlight.nn -->`` become the API blocks of every
  module of that package (the API pages follow the files that exist);
- ``<!-- capability protocols -->`` becomes the table of every protocol of ``genlight/types.py`` (its
  members and the first sentence of its docstring);
- ``<!-- pretrained models -->`` becomes the table of the models shipped under
  ``genlight/assets/pretrained/`` (read from each ``config.json``, without importing genlight);
- the Benchmarks pages come from whatever ``benchmarks/results/`` holds at build time. Every ``benchmarks/results/*.md`` becomes a page ``benchmarks/results/<name>.md`` (its images beside
it), and the marker ``<!-- benchmark results -->`` in ``docs/benchmarks.md`` becomes a list of links
to them, so a results file that is added, renamed or removed never breaks ``mkdocs build --strict``.
A link inside a results file (or the Benchmarks page) whose target is not part of the site is shown
as plain text.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PREFIX = "benchmarks/results/"
MARKER = "<!-- benchmark results -->"
LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def _results() -> list[Path]:
    return sorted(RESULTS.glob("*.md")) if RESULTS.is_dir() else []


def on_files(files: Files, config) -> Files:
    for path in _results() + sorted(RESULTS.rglob("*.png")):
        files.append(File.generated(config, PREFIX + path.relative_to(RESULTS).as_posix(), abs_src_path=str(path)))
    return files


def _title(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return path.stem


def range_types(source: Path = ROOT / "genlight" / "ranges.py") -> list[tuple[str, str, str]]:
    """``(name, range in words, what it is for)`` of every range type of ``genlight/ranges.py``: the
    jsonargparse types of its ``RANGES`` table, then each ``Name = _bounded(...)`` with its ``#:`` comment."""
    text = source.read_text()
    tree = ast.parse(text)
    lines = text.splitlines()
    rows: list[tuple[str, str, str]] = []
    names: dict[str, object] = {"int": "int", "float": "float"}  # the module's constants, as read so far
    body: list[ast.stmt] = []
    for node in tree.body:  # the run-time branch of ``if TYPE_CHECKING: ... else: ...``, where the types are made
        is_check = isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
        body += node.orelse if isinstance(node, ast.If) and is_check else [node]
    for node in body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                names[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "RANGES" and isinstance(node.value, ast.Dict):
            for key, value in zip(node.value.keys, node.value.values):
                rows.append((ast.unparse(key), ast.literal_eval(value), "jsonargparse's own type"))
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and ast.unparse(node.value.func) == "_bounded":
            name, base, low, high = (eval(ast.unparse(a), {"__builtins__": {}}, names) for a in node.value.args)
            flags = {k.arg: ast.literal_eval(k.value) for k in node.value.keywords}
            kind = "an integer" if base == "int" else "a number"
            words = f"{kind} in {'(' if flags.get('open_low') else '['}{low}, {high}{')' if flags.get('open_high') else ']'}"
            comment, at = [], node.lineno - 2
            while at >= 0 and lines[at].lstrip().startswith("#:"):
                comment.insert(0, lines[at].lstrip()[2:].strip())
                at -= 1
            rows.append((name, words, " ".join(comment)))
    return rows


def protocols(source: Path = ROOT / "genlight" / "types.py") -> list[tuple[str, str, str]]:
    """``(name, members, first sentence)`` of every ``runtime_checkable`` protocol of ``genlight/types.py``."""
    rows = []
    for node in ast.parse(source.read_text()).body:
        if not (isinstance(node, ast.ClassDef) and any(ast.unparse(d) == "runtime_checkable" for d in node.decorator_list)):
            continue
        members = []
        for item in node.body:
            if isinstance(item, ast.AnnAssign):
                members.append(f"`{ast.unparse(item.target)}`")
            elif isinstance(item, ast.FunctionDef):
                args = [a.arg for a in item.args.args[1:]] + [f"{a.arg}=" for a in item.args.kwonlyargs]
                members.append(f"`{item.name}({', '.join(args)})`")
        paragraph = (ast.get_docstring(node) or "").split("\n\n")[0]
        first = re.split(r"(?<=\.)\s(?=[A-Z])", " ".join(paragraph.split()), maxsplit=1)[0]
        rows.append((node.name, ", ".join(members), first))
    return rows


def _table(header: tuple[str, ...], rows: list[tuple[str, str, str]], code_first: bool = True) -> str:
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for row in rows:
        cells = [f"`{row[0]}`" if code_first else row[0], *(c.replace("``", "`").replace("|", "\\|") for c in row[1:])]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


#: the intermediate bases, documented first on the genlight.modules page
BASES = ("autoregressive", "adversarial", "flow")


def shipped_models(root: Path = ROOT / "genlight" / "assets" / "pretrained") -> list[tuple[str, ...]]:
    """``(name, family, data, size, figures, trained with)`` of every shipped pretrained model."""
    import json

    rows = []
    for config_file in sorted(root.glob("*/config.json")):
        config = json.loads(config_file.read_text())
        size = sum(p.stat().st_size for p in config_file.parent.iterdir()) / 2**20
        figures = ", ".join(f"{k} {v:.4g}" for k, v in config.get("figures", {}).items() if not k.endswith("_n200"))
        rows.append((config_file.parent.name, config["family"], (config.get("data") or {}).get("name") or "-",
                     f"{size:.2f} MB", figures, f"`{config.get('command', '')}`"))  # fmt: skip
    return rows


def _shipped_table() -> str:
    rows = shipped_models()
    if not rows:
        return "No model is shipped in this version."
    header = "| name | family | data | size | figures | trained with |\n| --- | --- | --- | --- | --- | --- |\n"
    total = sum(float(r[3].split()[0]) for r in rows)
    return header + "\n".join("| " + " | ".join(r) + " |" for r in rows) + f"\n\n{len(rows)} models, {total:.1f} MB in all."


def api_blocks(package: str) -> str:
    """A mkdocstrings ``:::`` block for every public module of ``genlight/<package>/`` (the bases of
    ``modules`` first), so the page follows the files that exist when the site is built."""
    names = sorted(p.stem for p in (ROOT / "genlight" / package).glob("*.py") if not p.stem.startswith("_"))
    names = [n for n in BASES if n in names] + [n for n in names if n not in BASES] if package == "modules" else names
    return "\n\n".join(f"::: genlight.{package}.{name}" for name in names)


GENERATED = {
    "<!-- api: genlight.modules -->": lambda: api_blocks("modules"),
    "<!-- api: genlight.nn -->": lambda: api_blocks("nn"),
    "<!-- range types -->": lambda: _table(("type", "range", "for"), range_types()),
    "<!-- pretrained models -->": _shipped_table,
    "<!-- capability protocols -->": lambda: _table(("protocol", "members", "what it promises"), protocols()),
}


def on_page_markdown(markdown: str, page, config, files: Files) -> str:
    for marker, make in GENERATED.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
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
