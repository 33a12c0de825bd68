"""Issue 11: the package's layout rules, measured — rooms of a reasonable size, functions short enough to read at once,
settings passed as arguments (not through the environment), and a serving path without the training stack."""
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
                if line.startswith("#| default_exp "): order[line.split()[-1]] = nb.stem
    return order


def imported_modules(module: str) -> set[str]:
    "The package modules that `module` (e.g. `serve.app`) imports: nbdev writes them as relative imports."
    path = PACKAGE / (module.replace(".", "/") + ".py")
    package = path.relative_to(PACKAGE).parent.parts
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - (node.level - 1)]
            out.add(".".join([*base, *(node.module.split(".") if node.module else [])]))
    return out


def test_notebooks_follow_dependencies():
    "A module imports only modules of earlier chapters, so the notebook numbers are a reading order (a package's `__init__` aside)."
    order = chapters()
    assert len(order) >= 20, order
    backwards = [f"{mod} ({chapter}) imports {dep} ({order[dep]})" for mod, chapter in order.items() if not mod.endswith("__init__")
                 for dep in imported_modules(mod) if dep in order and order[dep] > chapter]
    assert not backwards, backwards
    assert imported_modules("serve.app") >= {"config", "serve.http", "serve.service"}  # (the check sees relative imports)
