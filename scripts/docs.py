"""The docs site's checks that run without Quarto (Quarto renders the site in GitHub Actions).

    python scripts/docs.py sync              # write nbs/index.ipynb (the site's home page) from README.md
    python scripts/docs.py check             # index in sync, links between pages resolve, Quarto's mermaid form, plots committed
    python scripts/docs.py preview [DIR]     # the site as plain HTML in DIR (default _preview/), from nbdev_proc_nbs's _proc/

README.md is written for GitHub (links into `nbs/`, a ```mermaid block); the site's home page is the same text
with links relative to `nbs/`, other repository files linked on GitHub, and Quarto's ```{mermaid} block.
"""
import configparser
import html
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / "nbs"
LINK = re.compile(r"\]\(([^)\s]+)\)")
PLOTS = {"01e_evaluate.ipynb": 3, "04b_monitor.ipynb": 2}  # notebooks committed with their figures (image outputs)


def site_text(readme: str) -> str:
    "README.md as the site's home page."
    git_url = configparser.ConfigParser(interpolation=None)
    git_url.read(ROOT / "settings.ini")
    blob = f"{git_url['DEFAULT']['git_url']}/blob/{git_url['DEFAULT'].get('branch', 'main')}/"
    def link(m):
        target = m[1]
        if re.match(r"[a-z]+:|#", target): return m[0]
        if target.startswith("nbs/") and target != "nbs/": return f"]({target[4:]})"
        return f"]({blob}{target})"
    return LINK.sub(link, readme).replace("```mermaid", "```{mermaid}")


def index_notebook(readme: str) -> dict:
    lines = site_text(readme).rstrip("\n").split("\n")
    return {"cells": [{"cell_type": "markdown", "id": "a0b1c2d3", "metadata": {}, "source": [ln + "\n" for ln in lines[:-1]] + [lines[-1]]}],
            "metadata": {"kernelspec": {"display_name": "python3", "language": "python", "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}


def problems() -> list[str]:
    out = []
    want = json.dumps(index_notebook((ROOT / "README.md").read_text()), indent=1, ensure_ascii=False) + "\n"
    if (NBS / "index.ipynb").read_text() != want: out.append("nbs/index.ipynb is not README.md: run python scripts/docs.py sync")
    for nb_path in sorted(NBS.glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        for cell in nb["cells"]:
            text = "".join(cell["source"])
            if cell["cell_type"] != "markdown": continue
            if "```mermaid" in text: out.append(f"{nb_path.name}: a ```mermaid block renders on the site only as ```{{mermaid}}")
            for target in LINK.findall(text):
                if re.match(r"[a-z]+:|#", target): continue
                if not (NBS / target.split("#")[0]).exists(): out.append(f"{nb_path.name}: link to {target} leads nowhere on the site")
        images = sum("image/png" in o.get("data", {}) for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []))
        if images < PLOTS.get(nb_path.name, 0):
            out.append(f"{nb_path.name}: {images} figure(s) committed, the site shows {PLOTS[nb_path.name]}: execute it and commit its outputs")
    return out


def _front_matter(nb: dict) -> dict:
    "The YAML front matter nbdev puts in a processed notebook's first (raw) cell: title, description, output-file."
    first = nb["cells"][0] if nb["cells"] and nb["cells"][0]["cell_type"] == "raw" else None
    if first is None: return {}
    nb["cells"] = nb["cells"][1:]
    return {k.strip(): v.strip().strip('"') for k, _, v in (line.partition(":") for line in "".join(first["source"]).splitlines()) if v}


def _local_links(text: str, pages: dict[str, str], site: str) -> str:
    "Links to the published site or to a chapter's notebook, as links to the preview's own pages."
    text = text.replace(site, "")
    return re.sub(r"(\(|href=\")([0-9][\w-]*|index)\.ipynb", lambda m: m[1] + pages.get(m[2], m[2] + ".html"), text)


def _page_cells(nb: dict) -> dict:
    "Quarto's cell options the preview honours: `#| echo: false` hides a cell's code; option lines are not shown."
    for c in nb["cells"]:
        if c["cell_type"] != "code": continue
        src = c["source"] if isinstance(c["source"], str) else "".join(c["source"])
        if re.search(r"^#\|\s*echo:\s*false", src, re.M): c.setdefault("metadata", {})["transient"] = {"remove_source": True}
        c["source"] = "\n".join(line for line in src.splitlines() if not line.startswith("#|"))
    return nb


def preview(out: Path, proc: Path = ROOT / "_proc") -> list[Path]:
    "Process the notebooks (`nbdev_proc_nbs`, into `proc`) and render them as HTML pages in `out`, linked to each other."
    from nbconvert import HTMLExporter
    import nbformat
    subprocess.run(["nbdev_proc_nbs"], cwd=ROOT, check=True, capture_output=True)  # (it tries to install Quarto first: harmless)
    cfg = configparser.ConfigParser(interpolation=None); cfg.read(ROOT / "settings.ini")
    site = cfg["DEFAULT"]["doc_host"] + cfg["DEFAULT"]["doc_baseurl"] + "/"
    books = {p.stem: json.loads(p.read_text()) for p in sorted(proc.glob("*.ipynb"))}
    meta = {stem: _front_matter(nb) for stem, nb in books.items()}
    pages = {stem: "index.html" if stem == "index" else m.get("output-file", stem + ".html") for stem, m in meta.items()}
    nav = "".join(f'<li><a href="{pages[s]}">{html.escape(meta[s].get("title", s))}</a></li>' for s in books if s != "index")
    out.mkdir(parents=True, exist_ok=True)
    exporter, written = HTMLExporter(template_name="lab"), []
    for stem, nb in books.items():
        body, _ = exporter.from_notebook_node(nbformat.reads(json.dumps(_page_cells(nb)), as_version=4))
        head = f'<header><h1 class="title">{html.escape(meta[stem].get("title", "sentiment_mlops"))}</h1>' \
               f'<p class="description">{html.escape(meta[stem].get("description", ""))}</p></header>'
        top = f'<nav id="chapters"><a href="index.html">sentiment_mlops</a><ul>{nav}</ul></nav>{head}'
        body = re.sub(r"(<body[^>]*>)", lambda m, top=top: m[1] + top, body, count=1)
        (out / pages[stem]).write_text(_local_links(body, pages, site))
        written.append(out / pages[stem])
    return written


if __name__ == "__main__":
    if sys.argv[1:] == ["sync"]:
        (NBS / "index.ipynb").write_text(json.dumps(index_notebook((ROOT / "README.md").read_text()), indent=1, ensure_ascii=False) + "\n")
    elif sys.argv[1:] == ["check"]:
        found = problems()
        for p in found: print(p)
        sys.exit(1 if found else 0)
    elif sys.argv[1:2] == ["preview"]:
        pages = preview(ROOT / (sys.argv[2] if len(sys.argv) > 2 else "_preview"))
        print(f"{len(pages)} pages in {pages[0].parent}: open {pages[0].parent / 'index.html'}")
    else: sys.exit(__doc__)
