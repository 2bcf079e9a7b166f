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
