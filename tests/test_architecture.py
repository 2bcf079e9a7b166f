"""The module graph a newcomer can rely on: commands do not import each other, nobody imports another
module's private names, and the model files have one home (lgerisk/artifacts.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lgerisk"
COMMANDS = {
    "lgerisk.preprocess.run",
    "lgerisk.radiomics.run",
    "lgerisk.training.pretrain",
    "lgerisk.training.finetune",
    "lgerisk.predict.run",
    "lgerisk.explain.run",
}
"""The library module behind each command (``lgerisk.cli`` maps options to them; ``lgerisk.demo`` chains them)."""
PIPELINE_STAGES = {
    ("lgerisk.radiomics.run", "lgerisk.preprocess.run"),
    ("lgerisk.training.data", "lgerisk.radiomics.run"),
}
"""Allowed, the pipeline's stages in order: extract-radiomics on a raw cohort preprocesses it first, and the
training data of pretrain/finetune on a raw cohort are preprocessed and extracted first (into the run's cache)."""
ORCHESTRATORS = {"lgerisk", "lgerisk.api", "lgerisk.cli", "lgerisk.demo"}
"""The front doors (the package, its public API, the command line, the demo): they call the commands."""


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, package: str) -> list[tuple[str, list[str]]]:
    """(module, names) of every import from ``package`` in ``path``, nested ones included (``if TYPE_CHECKING:``
    imports left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }  # annotations only: no module is imported at run time
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == package:
            found.append((node.module, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names if alias.name.startswith(f"{package}.")]
    return found


def violations(package: Path) -> list[str]:
    out = []
    for path in sorted(package.rglob("*.py")):
        mine = module_name(path, package)
        for module, names in imports_of(path, "lgerisk"):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and module != mine:
                out.append(f"{mine} imports private {private} from {module}")
            if (
                module in COMMANDS
                and module != mine
                and mine not in ORCHESTRATORS
                and (mine, module) not in PIPELINE_STAGES
            ):
                out.append(f"{mine} imports the command module {module}")
    return out


def test_no_module_imports_another_command_or_a_private_name() -> None:
    assert violations(PACKAGE) == []


def test_the_check_sees_what_it_forbids(tmp_path: Path) -> None:
    """The rule catches a command importing another command, and a private name (nested imports too)."""
    package = tmp_path / "lgerisk"
    (package / "predict").mkdir(parents=True)
    (package / "explain").mkdir()
    (package / "predict" / "run.py").write_text("def f():\n    from lgerisk.explain.run import explain_cases\n")
    (package / "explain" / "run.py").write_text("from lgerisk.inference import _cached\n")
    assert violations(package) == [
        "lgerisk.explain.run imports private ['_cached'] from lgerisk.inference",
        "lgerisk.predict.run imports the command module lgerisk.explain.run",
    ]


@pytest.mark.parametrize(
    ("literal", "home"),
    [
        ('"model.pt"', "lgerisk.artifacts"),
        ('"model_card.json"', "lgerisk.artifacts"),
        ('"lgerisk-model-1"', "lgerisk.cards"),
        ('"lgerisk-survival-1"', "lgerisk.cards"),
    ],
)
def test_model_file_names_and_formats_have_one_home(literal: str, home: str) -> None:
    holders = sorted(module_name(p) for p in PACKAGE.rglob("*.py") if literal in p.read_text(encoding="utf-8"))
    assert holders == [home]


def test_test_modules_share_helpers_not_each_other() -> None:
    """Shared test code lives in tests/helpers (and fixtures in conftest.py): no test module imports another."""
    tests = PACKAGE.parent / "tests"
    wrong = []
    for path in sorted(tests.rglob("*.py")):
        for module, _ in imports_of(path, "tests"):
            if module.rsplit(".", 1)[-1].startswith("test_") or module.endswith("conftest"):
                wrong.append(f"{path.relative_to(tests)} imports {module}")
    assert wrong == []


LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "version", "lazy", "progress", "types"),
    ("config", "cards", "runtime"),
    ("reporting", "io"),
    ("batch", "synth", "data", "objectives"),
    ("models", "evaluation"),
    ("preprocess",),
    ("radiomics", "artifacts"),
    ("inference", "training"),
    ("predict", "explain"),
    ("api",),
    ("demo",),
    ("cli",),
    ("lgerisk", "__main__"),
)
"""The package's layers, lowest first, by top-level module or subpackage (``lgerisk`` itself: the package face).
A module imports from a lower layer or its own subpackage, never from a higher layer or a sibling in its layer."""
APART = ("predict", "explain", "training")
"""Subpackages none of which imports another, whatever the layers allow."""


def group_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Every module of ``package`` and the package modules it imports: at the top, inside functions and under
    ``if TYPE_CHECKING:`` alike (``from lgerisk.x import name`` counts as ``lgerisk.x.name`` where that is a
    module, else ``lgerisk.x``)."""
    modules = {module_name(p, package): p for p in package.rglob("*.py")}
    root = package.name

    def existing(name: str) -> str:
        while name not in modules and "." in name:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == root:
                found |= {existing(f"{node.module}.{alias.name}") for alias in node.names}
            elif isinstance(node, ast.Import):
                found |= {existing(a.name) for a in node.names if a.name.split(".")[0] == root}
        graph[module] = found - {module}
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph`` (strongly connected components of more than one module), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(circles)


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Imports up to a higher layer, across to a sibling of the same layer, or between the APART subpackages."""
    layer = {group: k for k, groups in enumerate(LAYERS) for group in groups}
    out = []
    for module, targets in sorted(graph.items()):
        mine = group_of(module)
        for target in sorted(targets):
            theirs = group_of(target)
            if theirs == mine:
                continue
            if mine not in layer or theirs not in layer:
                out.append(f"{module}: {mine if mine not in layer else theirs} has no layer (add it to LAYERS)")
            elif layer[theirs] > layer[mine] and mine != "lgerisk":
                out.append(f"{module} imports {target}, a higher layer")
            elif layer[theirs] == layer[mine] and mine != "lgerisk":
                out.append(f"{module} imports {target}, a sibling in its layer")
            elif mine in APART and theirs in APART:
                out.append(f"{module} imports {target} ({', '.join(APART)} stay apart)")
    return out


def test_no_import_circles_and_no_import_up_the_layers() -> None:
    """No import circle among lgerisk's modules, and every import goes down the layers (imports under
    ``TYPE_CHECKING`` and inside functions included); the package face alone reaches up, for its lazy exports."""
    graph = import_graph()
    assert import_circles(graph) == []
    assert layer_violations(graph) == []


def test_the_graph_checks_see_what_they_forbid(tmp_path: Path) -> None:
    """A circle made only of a function-level import and a ``TYPE_CHECKING`` one is found, and so are an import
    up the layers, one to a sibling in the same layer, and one between training and predict."""
    package = tmp_path / "lgerisk"
    for folder in ("io", "training", "predict", "explain"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "io" / "a.py").write_text("def f():\n    from lgerisk.io.b import g\n")
    (package / "io" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from lgerisk.io import a\n"
    )
    (package / "io" / "c.py").write_text("from lgerisk.training import fit\n")
    (package / "training" / "fit.py").write_text("def f():\n    from lgerisk.predict import run\n")
    (package / "predict" / "run.py").write_text("from lgerisk.explain import run\n")
    (package / "explain" / "run.py").write_text("")
    graph = import_graph(package)
    assert import_circles(graph) == [["lgerisk.io.a", "lgerisk.io.b"]]
    assert layer_violations(graph) == [
        "lgerisk.io.c imports lgerisk.training.fit, a higher layer",
        "lgerisk.predict.run imports lgerisk.explain.run, a sibling in its layer",
        "lgerisk.training.fit imports lgerisk.predict.run, a higher layer",
    ]
    graph["lgerisk.predict.run"] = {"lgerisk.training.fit"}  # down the layers, yet between two kept apart
    assert layer_violations(graph) == [
        "lgerisk.io.c imports lgerisk.training.fit, a higher layer",
        "lgerisk.predict.run imports lgerisk.training.fit (predict, explain, training stay apart)",
        "lgerisk.training.fit imports lgerisk.predict.run, a higher layer",
    ]
