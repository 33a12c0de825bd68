"""The docs site, previewed without Quarto (scripts/docs.py preview) and opened in Chromium: every chapter page loads, shows
its API docs and its figures, and no link between pages leads nowhere."""
import functools
import http.server
import json
import re
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

from conftest import REPO, run_py

FIGURES = {"evaluate.html": 3, "monitor.html": 2}  # chapters committed with their plots


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    "The preview, built into a temporary directory and served on 127.0.0.1."
    out = tmp_path_factory.mktemp("preview")
    r = run_py([REPO / "scripts" / "docs.py", "preview", out], REPO, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    handler = functools.partial(Quiet, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield out, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def documented() -> dict[str, list[str]]:
    "Each chapter page (named like its notebook) and the functions and classes its module exports: each has its API docs there."
    import importlib
    import inspect
    pages = {}
    for nb in (REPO / "nbs").glob("[0-9]*.ipynb"):
        cells = json.loads(nb.read_text())["cells"]
        m = re.search(r"#\| default_exp ([\w.]+)", "\n".join("".join(c["source"]) for c in cells[:3]))
        if not m: continue
        mod = importlib.import_module(f"sentiment_mlops.{m[1]}".removesuffix(".__init__"))
        pages[re.sub(r"^[0-9]+[a-z]?_", "", nb.stem) + ".html"] = [n for n in mod.__all__ if inspect.isfunction(getattr(mod, n))
                                                                   or inspect.isclass(getattr(mod, n))]
    return pages


def test_every_page_loads_with_its_api_docs_figures_and_working_links(site, browser):
    out, url = site
    pages = sorted(p.name for p in out.glob("*.html"))
    chapters, docs = {p for p in pages if p != "index.html"}, documented()
    assert len(chapters) >= 25 and set(docs) <= chapters, sorted(set(docs) - chapters)
    broken, missing_docs, errors, figures = [], [], [], {}
    for name in pages:
        page = browser.new_page()
        page.on("pageerror", lambda e: errors.append(f"{name}: {e}"))
        assert page.goto(url + name).status == 200
        assert page.locator("h1.title").count() == 1, name
        headings = {h.replace("¶", "").strip() for h in page.eval_on_selector_all("h2, h3, h4", "els => els.map(e => e.textContent)")}
        missing_docs += [f"{name}: {n}" for n in docs.get(name, []) if n not in headings]
        figures[name] = page.locator("img").count()
        for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))"):
            target = urlparse(href)
            if target.scheme or href.startswith("#") or not target.path: continue
            if not (out / target.path).exists(): broken.append(f"{name} -> {href}")
        page.close()
    print(f"\n{len(pages)} pages; API docs of {sum(map(len, docs.values()))} exports on {len(docs)} chapters; "
          f"figures {({k: v for k, v in figures.items() if v})}")
    assert not broken, broken
    assert not missing_docs, missing_docs
    assert not errors, errors
    assert all(figures[k] >= n for k, n in FIGURES.items()), figures


def test_the_preview_is_the_committed_notebooks(site):
    "The home page is the README, and a chapter's page holds its prose (the preview renders what is committed)."
    out, _ = site
    readme_title = (REPO / "README.md").read_text().splitlines()[0].lstrip("# ").strip()
    assert readme_title in (out / "index.html").read_text()
    assert "What a valid text is" in (out / "text.html").read_text()
    assert Path(out / "train.html").exists() and "papermill" in (out / "train.html").read_text()
