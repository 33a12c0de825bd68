"""The package's layout rules, measured: modules of a reasonable size, functions short enough to read at once, settings passed
as arguments (not through the environment), two wings — a runtime that never imports the training wing — and chapters in
the order of their imports."""
import ast
import json

import pytest

from conftest import REPO, run_py

PACKAGE = REPO / "sentiment_mlops"
GENERATED = {"_modidx.py", "__init__.py"}  # nbdev's index and the version file (serve/__init__.py is counted)
MAX_SHARE, MAX_FUNCTION_LINES = 0.12, 60
# The one place that configures libraries which read only environment variables (MLflow's HTTP client, prometheus_client's
# multiprocess mode); no setting of ours travels through the environment.
ENV_WRITES_ALLOWED = {("serve/__main__.py", "configure_libraries")}


def modules() -> dict[str, str]:
    return {str(p.relative_to(PACKAGE)): p.read_text() for p in sorted(PACKAGE.rglob("*.py"))
            if p.name not in GENERATED or p.parent != PACKAGE}


def functions(tree: ast.AST):
    "Every function and method with the name of the function it is defined in (for nested ones)."
    def walk(node, owner):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield child, owner or child.name
                yield from walk(child, owner or child.name)
            else: yield from walk(child, owner)
    yield from walk(tree, None)


def test_no_module_is_over_12_percent_of_the_package():
    lines = {name: len(src.splitlines()) for name, src in modules().items()}
    total = sum(lines.values())
    shares = sorted(((n / total, name) for name, n in lines.items()), reverse=True)
    print(f"\n{len(lines)} modules, {total} lines; largest: " + ", ".join(f"{name} {s:.1%}" for s, name in shares[:4]))
    assert shares[0][0] <= MAX_SHARE, shares[:3]


def test_no_function_is_over_60_lines():
    long = [f"{name}:{f.lineno} {f.name} ({f.end_lineno - f.lineno + 1} lines)" for name, src in modules().items()
            for f, _ in functions(ast.parse(src)) if f.end_lineno - f.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, long


def env_writes(src: str) -> list[tuple[str, int]]:
    "`(function, line)` of every write to the process environment: os.environ[...] = / del / setdefault / update / pop, os.putenv."
    tree, found = ast.parse(src), []
    owner_of = {id(n): owner for f, owner in functions(tree) for n in ast.walk(f)}
    def is_environ(node): return isinstance(node, ast.Attribute) and node.attr == "environ"
    for node in ast.walk(tree):
        hit = (isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)) and any(
                   isinstance(t, ast.Subscript) and is_environ(t.value) for t in getattr(node, "targets", [getattr(node, "target", None)])))
        hit = hit or (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and (
            (is_environ(node.func.value) and node.func.attr in ("setdefault", "update", "pop", "clear", "__setitem__"))
            or node.func.attr in ("putenv", "unsetenv")))
        if hit: found.append((owner_of.get(id(node), "<module>"), node.lineno))
    return sorted(found, key=lambda w: w[1])


def test_settings_are_passed_not_written_into_the_environment():
    writes = [(name, fn, line) for name, src in modules().items() for fn, line in env_writes(src)]
    assert not [w for w in writes if (w[0], w[1]) not in ENV_WRITES_ALLOWED], writes
    assert writes, "the rule found no write at all: the check itself is broken"  # configure_libraries does write


def test_nothing_sets_mlflows_global_tracking_or_registry_uri():
    calls = [(name, node.lineno, node.func.attr) for name, src in modules().items() for node in ast.walk(ast.parse(src))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr in ("set_tracking_uri", "set_registry_uri", "start_run", "set_experiment")]
    assert not calls, calls


def test_the_env_write_check_finds_what_it_should():
    src = "import os\ndef f():\n    os.environ['A'] = '1'\n    os.environ.setdefault('B', '2')\n    del os.environ['A']\nos.putenv('C', '3')\n"
    assert env_writes(src) == [("f", 3), ("f", 4), ("f", 5), ("<module>", 6)]


SERVING_PATH = """
import json, sys, time
from fastapi.testclient import TestClient
from sentiment_mlops.config import Settings
from sentiment_mlops.serve import create_app
with TestClient(create_app(Settings())) as c:
    t0 = time.time()
    while c.get("/health").json()["registry"]["checked_at"] is None:  # started (from the cache, or the registry), confirmed
        assert time.time() - t0 < 60; time.sleep(0.1)
    codes = [c.post("/predict", json={"text": "what a lovely crew"}).status_code,
             c.post("/predict/batch", json={"texts": ["great", "delayed again"] * 40}).status_code,
             c.get("/model").status_code, c.get("/metrics").status_code, c.get("/").status_code]
    source = c.get("/model").json()["source"]
heavy = sorted({n.split(".")[0] for n in sys.modules} & {"sklearn", "pandera", "matplotlib", "skops"})
print(json.dumps({"codes": codes, "source": source, "heavy": heavy}))
"""


@pytest.mark.parametrize("start", ["cached", "cold"])
def test_the_serving_path_imports_no_training_stack(small_model, tmp_path, start):
    """A server that starts — from its cache, or cold: downloading the version — confirms the version with the registry
    and answers every kind of prediction imports neither scikit-learn, pandera, matplotlib nor skops."""
    from sentiment_mlops.config import Settings
    from sentiment_mlops.store import load_model
    s, result = small_model
    if start == "cached": load_model(Settings(tracking_uri=s.tracking_uri, model_cache_dir=tmp_path / "cache"))  # fills the cache
    env = {"MLFLOW_TRACKING_URI": s.tracking_uri, "SENTIMENT_MODEL_CACHE_DIR": str(tmp_path / "cache"),
           "SENTIMENT_LOG_DIR": str(tmp_path / "logs")}
    out = run_py(["-c", SERVING_PATH], tmp_path, env)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\nserving path, {start} start: {got}")
    assert got == {"codes": [200] * 5, "source": "cache" if start == "cached" else "registry", "heavy": []}


def chapters() -> dict[str, str]:
    "Module name -> the notebook that exports it (its `default_exp`)."
    order = {}
    for nb in sorted((REPO / "nbs").glob("[0-9]*.ipynb")):
        for c in json.loads(nb.read_text())["cells"][:3]:
            for line in "".join(c["source"]).splitlines():
                if line.startswith("#| default_exp "): order[line.split()[-1].removesuffix(".__init__")] = nb.stem
    return order


def module_files() -> dict:
    "Every module of the package by dotted name (a package's `__init__` under the package's name), nbdev's index aside."
    from sentiment_mlops.training import _own_name
    return {".".join(_own_name(p, PACKAGE)): p for p in sorted(PACKAGE.rglob("*.py")) if p.name != "_modidx.py" and p != PACKAGE / "__init__.py"}


def test_the_runtime_never_imports_the_training_wing():
    "Statically, over every import of every runtime module: at the top or inside a function, relative or absolute."
    from sentiment_mlops.training import package_imports, wing
    mods = module_files()
    crossing = [f"{m} imports {i}" for m, p in mods.items() if wing(m) == "runtime" for i in package_imports(p, PACKAGE) if wing(i) == "training"]
    assert not crossing, crossing
    assert {"serve", "serve.app", "scorer", "store", "batch", "monitor"} <= {m for m in mods if wing(m) == "runtime"}
    assert {"training.model", "training.train", "training.registry", "train", "registry"} <= {m for m in mods if wing(m) == "training"}


def test_the_import_check_sees_every_kind_of_import(tmp_path):
    "The check itself: relative, absolute, aliased and function-level imports of the package are all found."
    from sentiment_mlops.training import package_imports
    (tmp_path / "pkg" / "serve").mkdir(parents=True)
    (tmp_path / "pkg" / "serve" / "x.py").write_text(
        "from ..training.model import A\nfrom . import http\nimport sentiment_mlops.training.data as d\n"
        "def f():\n    from sentiment_mlops.training import evaluate\n    import numpy\n")
    got = package_imports(tmp_path / "pkg" / "serve" / "x.py", tmp_path / "pkg")
    assert got == {"training.model", "serve.http", "training.data", "training"}, got


def test_notebooks_follow_dependencies():
    """A module imports only modules of earlier chapters — every import, function-level and absolute ones included — so the
    notebook numbers are a reading order (a package's `__init__`, which gathers its modules, aside)."""
    from sentiment_mlops.training import package_imports
    order, mods = chapters(), module_files()
    assert len(order) >= 25 and set(order) == set(mods), (sorted(set(order) ^ set(mods)))
    def chapter(m: str) -> str: return order[m] if m in order else order[m.rsplit(".", 1)[0]]  # (a name imported from a package)
    backwards = [f"{mod} ({order[mod]}) imports {dep} ({chapter(dep)})" for mod, p in mods.items() if mod not in ("serve",)
                 for dep in package_imports(p, PACKAGE) if chapter(dep) > order[mod]]
    assert not backwards, backwards


def test_the_training_job_is_the_notebook_papermill_runs():
    "`papermill nbs/02_train.ipynb` runs the training job: the notebook exports `training.train` and has a `parameters` cell."
    nb = json.loads((REPO / "nbs" / "02_train.ipynb").read_text())
    assert chapters()["training.train"] == "02_train"
    assert sum("parameters" in c.get("metadata", {}).get("tags", []) for c in nb["cells"]) == 1
