"""The notebooks are the source: the library must be exactly what they export, they must be clean, and they run."""
import filecmp
import json
import re
import shutil
import subprocess

import pytest

from conftest import REPO

COPY = ["nbs", "sentiment_mlops", "settings.ini", "setup.py", "pyproject.toml", "README.md"]


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory):
    dst = tmp_path_factory.mktemp("repo")
    for name in COPY:
        src = REPO / name
        if src.is_dir(): shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__", "_docs", ".ipynb_checkpoints"))
        else: shutil.copy2(src, dst / name)
    subprocess.run(["git", "init", "-q"], cwd=dst, check=True)
    return dst


def test_library_is_what_the_notebooks_export(repo_copy):
    r = subprocess.run(["nbdev_export"], cwd=repo_copy, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    cmp = filecmp.dircmp(REPO / "sentiment_mlops", repo_copy / "sentiment_mlops", ignore=["__pycache__"])
    assert not (cmp.diff_files or cmp.left_only or cmp.right_only), \
        f"edit the notebooks and run nbdev_export: differ {cmp.diff_files}, only in library {cmp.left_only}, only exported {cmp.right_only}"


def test_notebooks_are_clean(repo_copy):
    before = {p.name: p.read_bytes() for p in (repo_copy / "nbs").glob("*.ipynb")}
    r = subprocess.run(["nbdev_clean"], cwd=repo_copy, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    changed = [n for n, b in before.items() if (repo_copy / "nbs" / n).read_bytes() != b]
    assert not changed, f"run nbdev_clean: {changed}"


def test_training_notebook_keeps_its_parameters_tag():
    nb = json.loads((REPO / "nbs" / "02_train.ipynb").read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and "sample_size = None" in "".join(tagged[0]["source"])


def test_notebooks_pass_nbdev_test():
    r = subprocess.run(["nbdev_test", "--n_workers", "2", "--do_print"], cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-5000:]


def test_every_export_is_documented():
    """Every exported function and class, and every public method, has a docstring (nbdev renders its `show_doc` on
    the docs site by itself, so the notebooks carry none)."""
    import importlib
    import inspect
    missing = []
    for nb in sorted((REPO / "nbs").glob("[0-9]*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        m = re.search(r"#\| default_exp ([\w.]+)", "\n".join("".join(c["source"]) for c in cells[:3]))
        if not m: continue
        mod = importlib.import_module(f"sentiment_mlops.{m[1]}".removesuffix(".__init__"))
        for name in mod.__all__:
            obj = getattr(mod, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)): continue
            if not (obj.__doc__ or "").strip(): missing.append(f"{m[1]}.{name}: no docstring")
            for k, v in vars(obj).items() if inspect.isclass(obj) else ():
                if inspect.isfunction(v) and not k.startswith("_") and not (v.__doc__ or "").strip():
                    missing.append(f"{m[1]}.{name}.{k}: no docstring")
    assert not missing, missing
