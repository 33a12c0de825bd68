"""The docs site's checks that run without Quarto (Quarto renders the site in GitHub Actions).

    python scripts/docs.py sync    # write nbs/index.ipynb (the site's home page) from README.md
    python scripts/docs.py check   # index in sync, links between pages resolve, Quarto's mermaid form, plots committed

README.md is written for GitHub (links into `nbs/`, a ```mermaid block); the site's home page is the same text
with links relative to `nbs/`, other repository files linked on GitHub, and Quarto's ```{mermaid} block.
"""
import configparser
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / "nbs"
LINK = re.compile(r"\]\(([^)\s]+)\)")
PLOTS = {"05_evaluate.ipynb": 3, "12_monitor.ipynb": 2}  # notebooks committed with their figures (image outputs)


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


if __name__ == "__main__":
    if sys.argv[1:] == ["sync"]:
        (NBS / "index.ipynb").write_text(json.dumps(index_notebook((ROOT / "README.md").read_text()), indent=1, ensure_ascii=False) + "\n")
    elif sys.argv[1:] == ["check"]:
        found = problems()
        for p in found: print(p)
        sys.exit(1 if found else 0)
    else: sys.exit(__doc__)
