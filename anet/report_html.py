"""`anet report RUN... --html OUT.html / --md OUT.md`: the paper's tables and figures from runs.

The HTML page is self-contained: every image is a ``data:`` URI, the style sheet is inline and
nothing points outside the file (it opens offline or as an e-mail attachment). The Markdown
version links its images from a folder beside it (``OUT_files/``). Both are rendered from the
same blocks (:mod:`anet.report_page`).
"""

from __future__ import annotations

import base64
import html
import re
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from anet.data.info import load_dataset
from anet.errors import AnetError
from anet.files import atomic_write, safe_name
from anet.report_data import collect
from anet.report_page import Code, Figure, Group, Heading, Para, Table, build

CSS = """
:root { --ink: #1d2433; --muted: #5b6475; --line: #d9dde5; --paper: #f3f1e7; --todo: #fff4d6; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       max-width: 1180px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 1.6em; margin: 0 0 .3em; }
h2 { font-size: 1.3em; margin: 1.8em 0 .5em; padding-bottom: .2em; border-bottom: 2px solid var(--line); }
h3 { font-size: 1.08em; margin: 1.4em 0 .4em; }
p { margin: .5em 0; }
p.note { color: var(--muted); }
p.todo { background: var(--todo); padding: .4em .7em; border-left: 4px solid #e0a800; }
code, pre { font: 12.5px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
code { background: #eef0f4; padding: 0 .25em; border-radius: 3px; overflow-wrap: anywhere; }
pre { background: #f6f7f9; border: 1px solid var(--line); padding: .6em .8em; overflow-x: auto;
      white-space: pre-wrap; overflow-wrap: anywhere; margin: .3em 0 1em; }
nav { background: #f6f7f9; border: 1px solid var(--line); padding: .5em 1em; margin: 1em 0; }
nav a { margin-right: 1.2em; white-space: nowrap; }
a { color: #1a5fb4; text-decoration: none; }
table { border-collapse: collapse; font-size: 13.5px; font-variant-numeric: tabular-nums; }
.tablebox { margin: .8em 0 1.2em; break-inside: avoid; }
.tablecap { color: var(--muted); font-size: 13px; margin: 0 0 .35em; max-width: 900px; }
.scroll { overflow-x: auto; }
pre.config { columns: 17em auto; column-rule: 1px solid var(--line); white-space: pre; font-size: 12px; }
th, td { border: 1px solid var(--line); padding: .25em .55em; vertical-align: top; }
td { text-align: right; }
th { background: #eef0f4; white-space: nowrap; text-align: left; }
th:first-child, td:first-child { text-align: left; }
th.group { text-align: center; }
td.text { text-align: left; }
tr.paper td { background: var(--paper); font-style: italic; }
figure { margin: 1em 0 1.6em; }
.group { display: flex; flex-wrap: wrap; gap: 0 28px; align-items: flex-start; }
.group > figure { flex: 1 1 520px; max-width: 760px; }
.group > .tablebox { flex: 0 0 auto; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 13px; margin-top: .35em; max-width: 900px; }
.codecap { color: var(--muted); font-size: 13px; margin: .6em 0 0; }
@media print {
  body { max-width: none; padding: 0; font-size: 11pt; }
  nav { display: none; }
  h2 { break-before: auto; break-after: avoid; }
  h3 { break-after: avoid; }
  figure, table, pre { break-inside: avoid; }
  figure img { max-height: 23cm; width: auto; }
  a { color: inherit; }
  .scroll { overflow: visible; }
  table { font-size: 8.5pt; }
  th { white-space: normal; }
  @page { margin: 14mm; }
}
"""


# --------------------------------------------------------------------------- HTML


def _inline(text: str) -> str:
    """Escape ``text`` and turn `backtick` spans into <code>."""
    parts = re.split(r"`([^`]*)`", text)
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p)
                   for i, p in enumerate(parts))


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _numeric(cell: str) -> bool:
    return cell == "n/a" or bool(re.fullmatch(r"[-\d.,± x()=n]*", cell))


def _html_block(b) -> str:
    ident = f' id="{html.escape(b.id)}"' if getattr(b, "id", "") else ""
    if isinstance(b, Heading):
        return f"<h{b.level}{ident}>{html.escape(b.text)}</h{b.level}>"
    if isinstance(b, Para):
        cls = f' class="{b.cls}"' if b.cls else ""
        return f"<p{cls}>{_inline(b.text)}</p>"
    if isinstance(b, Table):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in b.header)
        if b.groups:  # a row of group labels above, the first column spanning both rows
            top = "".join(f'<th colspan="{span}" class="group">{html.escape(g)}</th>'
                          for g, span in b.groups)
            head = (f'<th rowspan="2">{html.escape(b.header[0])}</th>{top}</tr><tr>'
                    + "".join(f"<th>{html.escape(h)}</th>" for h in b.header[1:]))
        rows = []
        for i, row in enumerate(b.rows):
            cls = b.row_classes[i] if i < len(b.row_classes) and b.row_classes[i] else ""
            tds = "".join(("<td>" if _numeric(c) else '<td class="text">') + f"{_inline(c)}</td>"
                          for c in row)
            rows.append((f'<tr class="{cls}">' if cls else "<tr>") + f"{tds}</tr>")
        # the caption is a paragraph, not <caption>: a narrow table would squeeze it
        cap = f'<p class="tablecap">{_inline(b.caption)}</p>' if b.caption else ""
        return (f'<div class="tablebox">{cap}<div class="scroll"><table{ident}><thead><tr>{head}'
                f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div></div>")
    if isinstance(b, Figure):
        return (f'<figure{ident}><img src="{data_uri(b.path)}" alt="{html.escape(b.caption)}">'
                f"<figcaption>{_inline(b.caption)}</figcaption></figure>")
    if isinstance(b, Group):
        return '<div class="group">' + "".join(_html_block(x) for x in b.blocks) + "</div>"
    if isinstance(b, Code):
        cap = f'<p class="codecap">{_inline(b.caption)}</p>' if b.caption else ""
        cls = f' class="{b.cls}"' if b.cls else ""
        return f"{cap}<pre{cls}>{html.escape(b.text)}</pre>"
    raise TypeError(f"unknown block {b!r}")


def _short(heading: str) -> str:
    """``Table 2. Accuracy`` -> ``Table 2``; ``Methods: ...`` -> ``Methods`` (the contents bar)."""
    return re.split(r"[.:]", heading)[0]


def to_html(title: str, blocks: list) -> str:
    """One self-contained HTML page: inline CSS, images as data URIs, a contents bar."""
    nav = " ".join(f'<a href="#{html.escape(b.id)}">{html.escape(_short(b.text))}</a>'
                   for b in blocks if isinstance(b, Heading) and b.level == 2 and b.id)
    body = "\n".join(_html_block(b) for b in blocks)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f"<h1>{html.escape(title)}</h1>\n<nav>{nav}</nav>\n{body}\n</body>\n</html>\n")


# --------------------------------------------------------------------------- Markdown


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(title: str, blocks: list, image_dir: Path, rel: str) -> str:
    """Markdown with each figure copied into ``image_dir`` (linked as ``rel/NAME``)."""
    out, figures = [f"# {title}"], 0
    flat = []
    for b in blocks:
        flat += list(b.blocks) if isinstance(b, Group) else [b]
    for b in flat:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Para):
            out.append(f"> {b.text}" if b.cls == "todo" else b.text)
        elif isinstance(b, Table):
            lines = [f"*{b.caption}*", ""] if b.caption else []
            lines.append("| " + " | ".join(map(_md_cell, b.flat_header())) + " |")
            lines.append("|" + "---|" * len(b.header))
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("\n".join(lines))
        elif isinstance(b, Figure):
            figures += 1
            name = f"{figures:02d}-{safe_name(Path(b.path).stem)}.png"
            shutil.copyfile(b.path, image_dir / name)
            out.append(f"![{_md_cell(b.caption)}]({rel}/{name})\n\n*{b.caption}*")
        elif isinstance(b, Code):
            out.append((f"{b.caption}:\n\n" if b.caption else "") + f"```\n{b.text.rstrip()}\n```")
    return "\n\n".join(out) + "\n"


# --------------------------------------------------------------------------- the command


def _check_out(path: Path, suffix: str, option: str) -> Path:
    path = Path(path)
    if path.is_dir():
        raise AnetError(f"{option} {path}: is a folder; give a file name like report{suffix}")
    if not path.parent.is_dir():
        raise AnetError(f"{option} {path}: folder {path.parent} does not exist; create it first")
    return path


def _visualize(experiments) -> None:
    """`anet visualize` for the runs that lack Figure 4: a compare figure per dataset with
    several models (the first evaluated run of each), else one run's overview."""
    from anet.visualize import visualize

    by_data: dict[str, list] = {}
    for e in experiments:
        first = next(iter(e.evaluated), None)
        if first and first.model not in [r.model for r in by_data.get(e.dataset, [])]:
            by_data.setdefault(e.dataset, []).append(first)
    for runs in by_data.values():
        if any(r.figure4 for r in runs):
            continue
        if len(runs) > 1:
            visualize(runs[0].dir, compare=[r.dir for r in runs[1:]])
        else:
            visualize(runs[0].dir)


def write_report(runs, *, html_out=None, md_out=None, visualize: bool = False, datasets=(),
                 as_csv: bool = False) -> list[Path]:
    """Collect the runs, draw the figures and write the HTML page and/or the Markdown report.

    Args:
        datasets: prepared dataset folders added to Table 1 (besides the runs' own).
    Returns:
        The files written (the Markdown's image folder last).
    """
    if not (html_out or md_out):
        raise AnetError("give --html OUT.html and/or --md OUT.md")
    if as_csv:
        raise AnetError("--csv is for the text tables; leave it out with --html/--md")
    html_out = html_out and _check_out(html_out, ".html", "--html")
    md_out = md_out and _check_out(md_out, ".md", "--md")
    extra = [load_dataset(d) for d in datasets]
    experiments = collect(runs)
    if visualize:
        _visualize(experiments)
        experiments = collect(runs)
    argv = ["anet", "report", *map(str, runs)]
    argv += ["--html", str(html_out)] if html_out else []
    argv += ["--md", str(md_out)] if md_out else []
    command = shlex.join(argv) if len(runs) <= 6 else f"anet report {runs[0]} ... ({len(runs)} runs)"
    written = []
    with tempfile.TemporaryDirectory(prefix="anet-report-") as tmp:
        title, blocks = build(experiments, Path(tmp), command, extra)
        if html_out:
            atomic_write(html_out, to_html(title, blocks))
            written.append(html_out)
        if md_out:
            image_dir = md_out.with_name(f"{md_out.stem}_files")
            try:
                image_dir.mkdir(exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise AnetError(f"{image_dir}: a file is in the way of the image folder; "
                                "move it or choose another --md name") from None
            atomic_write(md_out, to_markdown(title, blocks, image_dir, image_dir.name))
            written += [md_out, image_dir]
    for path in written:
        size = sum(f.stat().st_size for f in path.iterdir()) if path.is_dir() else path.stat().st_size
        print(f"wrote {path} ({size / 1e6:.2f} MB)", file=sys.stdout)
    return written
