"""The package layout: names that moved keep their old import paths; errors and public names have one home."""

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import tavce
import tavce.models

PACKAGE = Path(tavce.__file__).parent

MOVED = [
    # (old module, name, new module)
    ("tavce.preprocess", "PreparedSource", "tavce.types"),
    ("tavce.preprocess", "CropGeometry", "tavce.types"),
    ("tavce.preprocess", "CropMode", "tavce.types"),
    ("tavce.preprocess.crop", "CropMode", "tavce.types"),
    ("tavce.preprocess.crop", "WORKING_SIZES", "tavce.types"),
    ("tavce.conformance", "RendererConformance", "tavce.testing.conformance"),
    ("tavce.conformance", "synthetic_source", "tavce.testing.portraits"),
    ("tavce.testing", "make_synthetic_videos", "tavce.testing.videos"),
    ("tavce.testing", "reference_state_dict", "tavce.testing.recipe"),
    ("tavce.testing", "OFFICIAL_FILES", "tavce.testing.official"),
    ("tavce.testing", "tiny_components", "tavce.testing.tiny"),
    ("tavce.testing", "face_photo", "tavce.testing.portraits"),
    ("tavce.preprocess", "LandmarkerError", "tavce.errors"),
    ("tavce.preprocess.landmarks", "LandmarkerError", "tavce.errors"),
    ("tavce.training.renderer", "TrainingConfigError", "tavce.errors"),
    ("tavce.training.renderer", "NonFiniteLossError", "tavce.errors"),
]


@pytest.mark.parametrize("old, name, new", MOVED)
def test_moved_names_keep_their_old_import_path(old, name, new):
    moved = getattr(importlib.import_module(new), name if name != "WORKING_SIZES" else "RENDER_SIZES")
    assert getattr(importlib.import_module(old), name) is moved


def test_conformance_reexports_every_suite():
    old, new = importlib.import_module("tavce.conformance"), importlib.import_module("tavce.testing.conformance")
    assert old.__all__ == new.__all__
    assert all(getattr(old, name) is getattr(new, name) for name in new.__all__)


def test_every_error_class_is_defined_in_errors_py():
    elsewhere = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                ast.unparse(base).endswith(("Error", "Exception")) for base in node.bases
            ):
                elsewhere += [f"{path.relative_to(PACKAGE)}: {node.name}"] if path.name != "errors.py" else []
    assert elsewhere == []


def test_every_public_model_module_declares_all():
    modules = [info.name for info in pkgutil.walk_packages(tavce.models.__path__, "tavce.models.")]
    public = [name for name in modules if not name.rpartition(".")[2].startswith("_")]
    assert len(public) > 20
    for name in public:
        module = importlib.import_module(name)
        assert isinstance(getattr(module, "__all__", None), list), f"{name} has no __all__"
        assert all(hasattr(module, exported) for exported in module.__all__), name


SPEC_CITATIONS = re.compile(r"reference-pipeline|reference-training|reference-enhancer|quirk", re.IGNORECASE)


def test_code_and_docs_read_on_their_own():
    """No citation of the original's spec documents or of their quirk numbers: the behaviour is stated instead."""
    root = PACKAGE.parent
    files = [*PACKAGE.rglob("*.py"), *(root / "docs").rglob("*.md")]
    assert len(files) > 50
    cited = [
        f"{path.relative_to(root)}:{number}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if SPEC_CITATIONS.search(line)
    ]
    assert cited == []


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the tavce modules it imports, at any level (function bodies and TYPE_CHECKING included)."""
    paths = {_module_name(path): path for path in PACKAGE.rglob("*.py")}

    def known(name: str) -> str:
        while name not in paths:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for module, path in paths.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {known(alias.name) for alias in node.names if alias.name.startswith("tavce")}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).rstrip(".")
                if base.startswith("tavce"):
                    imported |= {known(f"{base}.{alias.name}") for alias in node.names}
        graph[module] = imported - {module}
    return graph


def test_no_import_circle():
    graphlib = pytest.importorskip("graphlib")
    try:
        graphlib.TopologicalSorter(_import_graph()).prepare()
    except graphlib.CycleError as error:
        pytest.fail(f"import circle: {' -> '.join(error.args[1])}")


def test_models_import_only_what_lies_below_them():
    below = ("tavce.models", "tavce.types", "tavce.errors", "tavce.hub")
    upward = {
        f"{module} -> {imported}"
        for module, imports in _import_graph().items()
        if module.startswith("tavce.models")
        for imported in imports
        if imported != "tavce" and not imported.startswith(below)  # "tavce": the version number only
    }
    assert upward == set()
