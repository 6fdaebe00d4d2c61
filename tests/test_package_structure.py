"""The package's layout: no import cycle, layers that only point down, chapter N never importing chapter N+1,
modules under 500 lines, and an ``import vae_course`` that loads nothing until a submodule is used.

The import graph is read from the source (every ``import`` statement, at module level or inside a function,
parsed with ``ast``), so the tests see every edge, including ones that a particular import order, or an import
deferred into a function, would hide.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "vae_course"
MAX_LINES = 500

# the chapter that teaches each chapter module (a module may import modules of its own or earlier chapters)
CHAPTER = {
    "information": 0, "discriminative": 0, "generators": 1, "nets": 1, "mixtures": 2, "linear_gaussian": 2,
    "inference": 3, "estimators": 4, "objectives": 5, "evaluate": 5, "train": 5, "history": 5, "checkpoint": 5,
    "models.base": 5, "models.priors": 5, "models.encoders": 5, "models.decoders": 5, "models.vae_base": 5,
    "models.vae": 5, "sprites": 6, "disentangle": 6, "models.masked": 7, "models.autoregressive_vae": 7,
    "collapse": 7, "models.quantizer": 8, "models.vqvae": 8, "vq": 8,
}
TOOLS = ("experiments", "plotting", "widgets", "checks", "grade", "release", "notebook_setup", "cli")  # the top: nothing below imports it


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(["vae_course", *parts])] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if _is_package(module) else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> set[str]:
    """Package modules that ``module`` imports anywhere (``from X import name`` counts X.name when that is a module,
    else X)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            subs = {f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES}
            found |= subs or {target}
    return {m for m in found if m in MODULES and m != module}


def _edges(module: str) -> set[str]:
    """What importing ``module`` runs: its imports, and the packages above each of them (Python initialises a
    package before its submodules), leaving out the packages ``module`` is itself inside."""
    own = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 2)}
    out = set()
    for target in _imports(module):
        parts = target.split(".")
        out |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)} - own
    return {m for m in out if m in MODULES}


def _cycles() -> list[list[str]]:
    graph = {m: _edges(m) for m in MODULES}
    index, low, stack, on, sccs = {}, {}, [], set(), []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sccs


def _short(module: str) -> str:
    return module.removeprefix("vae_course.")


def _chapter(module: str) -> int | None:
    name = _short(module)
    while name:
        if name in CHAPTER:
            return CHAPTER[name]
        name = name.rpartition(".")[0]
    return None


def test_the_import_graph_finds_known_edges():
    """A check of the checker: edges that exist must be found, or the tests below would pass vacuously."""
    assert "vae_course.models.vae_base" in _imports("vae_course.models.vae")
    assert "vae_course.objectives" in _imports("vae_course.models.vae_base")
    assert "vae_course.models" in _edges("vae_course.train")  # via vae_course.models.base: the package runs first
    assert len(MODULES) > 60


def test_there_is_no_import_cycle_inside_the_package():
    cycles = _cycles()
    assert not cycles, "import cycles (modules that import each other, directly or through others): " + \
        "; ".join(" <-> ".join(_short(m) for m in c) for c in cycles)


def test_a_chapter_module_never_imports_a_later_chapter():
    bad = []
    for module in MODULES:
        mine = _chapter(module)
        if mine is None or _is_package(module):  # package __init__ files only gather their submodules
            continue
        for target in _imports(module):
            theirs = _chapter(target)
            if theirs is not None and not _is_package(target) and theirs > mine:
                bad.append(f"{_short(module)} (ch. {mine}) imports {_short(target)} (ch. {theirs})")
    assert not bad, "upward imports: " + "; ".join(bad)


def test_no_module_below_the_tools_imports_them():
    bad = []
    for module in MODULES:
        if _short(module).split(".")[0] in (*TOOLS, "__main__") or module == "vae_course":
            continue
        for target in _imports(module):
            if _short(target).split(".")[0] in TOOLS:
                bad.append(f"{_short(module)} imports {_short(target)}")
    assert not bad, "the math, chapter, model and engine modules must not import experiments or tools: " + "; ".join(bad)


def test_the_experiments_are_imported_only_by_the_command_line():
    users = sorted(_short(m) for m in MODULES for t in _imports(m)
                   if _short(t).startswith("experiments") and not _short(m).startswith(("experiments", "cli")))
    assert not users, f"only vae_course.cli (and the experiments themselves) may import experiments: {users}"


@pytest.mark.parametrize("module", sorted(MODULES), ids=_short)
def test_every_module_stays_under_500_lines(module):
    n = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{MODULES[module].relative_to(ROOT)} has {n} lines; split it along its sections (<= {MAX_LINES})"


def _fresh_python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout


def test_import_vae_course_loads_no_submodule_and_no_heavy_library():
    out = _fresh_python("import sys, vae_course; print(sorted(m for m in sys.modules if m.startswith('vae_course')));"
                        "print([m for m in ('torch', 'matplotlib', 'ipywidgets', 'sklearn') if m in sys.modules])")
    loaded, heavy = out.strip().splitlines()
    assert loaded == "['vae_course']" and heavy == "[]", out


def test_submodules_load_on_first_use_and_unknown_names_are_refused():
    out = _fresh_python("import sys, vae_course as vc; vc.distributions.log_normal_std;"
                        "print('vae_course.distributions' in sys.modules, 'vae_course.plotting' in sys.modules)")
    assert out.split() == ["True", "False"]
    import vae_course
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        vae_course.nope  # noqa: B018


def test_cli_help_imports_neither_torch_nor_the_experiments():
    out = _fresh_python("import sys; from vae_course import cli\ntry:\n cli.main(['--help'])\nexcept SystemExit:\n pass\n"
                        "print('torch' in sys.modules, any(m.startswith('vae_course.experiments') for m in sys.modules))")
    assert out.split()[-2:] == ["False", "False"], out


# the import name of each third-party distribution vae_course may import, and the name pyproject.toml lists it by
DISTRIBUTIONS = {"torch": "torch", "numpy": "numpy", "matplotlib": "matplotlib", "pandas": "pandas", "PIL": "pillow",
                 "sklearn": "scikit-learn", "mlxtend": "mlxtend", "tqdm": "tqdm", "IPython": "ipython",
                 "ipywidgets": "ipywidgets", "nbformat": "nbformat", "nbclient": "nbclient", "seaborn": "seaborn"}


def test_every_third_party_import_is_a_declared_dependency():
    import tomllib

    declared = {d.split(">")[0].split("=")[0].split("<")[0].strip().lower()
                for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    stdlib = set(sys.stdlib_module_names)
    used = set()
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                used |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                used.add(node.module.split(".")[0])
    third = sorted(used - stdlib - {"vae_course", "__future__"})
    unknown = [m for m in third if m not in DISTRIBUTIONS]
    assert not unknown, f"add these imports to DISTRIBUTIONS and to pyproject.toml's dependencies: {unknown}"
    missing = [DISTRIBUTIONS[m] for m in third if DISTRIBUTIONS[m] not in declared]
    assert not missing, f"vae_course imports these but pyproject.toml does not declare them: {missing}"
