"""The shape of src/: no import cycles, imagebuild's rooms in layers (none imports a room above
it), project imports at the top of each file, python-on-whales in engine/docker.py only, and
no imagebuild module over 400 lines. Read from the source with `ast`, nothing imported."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGES = ("imagebuild", "audiobook_tts")
# The rooms of src/imagebuild from the bottom up (its __init__ says what each holds): a module
# imports from its own room and the rooms below, never from a room above.
IMAGEBUILD_LAYERS = (
    ("imagebuild.errors", "imagebuild.output"),
    ("imagebuild.plan",),
    ("imagebuild.engine",),
    ("imagebuild.platform",),
    ("imagebuild.build",),
    ("imagebuild.locks",),
    ("imagebuild.docs",),
    ("imagebuild.ci",),
    ("imagebuild.bench",),
    ("imagebuild.invoke_glue",),
)
MAX_MODULE_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, ast.Module]:
    return {
        module_name(path): ast.parse(path.read_text(encoding="utf-8"), str(path))
        for package in PACKAGES
        for path in sorted((SRC / package).rglob("*.py"))
    }


def imported(node: ast.AST, importer: str, known: set[str]) -> list[str]:
    """Project modules an import statement names (`from x import y` may name module x.y)."""
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            package = importer.rsplit(".", node.level)[0]
            base = f"{package}.{base}" if base else package
        names = [base] + [f"{base}.{alias.name}" for alias in node.names]
    return [name for name in names if name in known]


def graph(trees: dict[str, ast.Module]) -> dict[str, set[str]]:
    known = set(trees)
    edges: dict[str, set[str]] = {}
    for name, tree in trees.items():
        targets = {
            target
            for node in ast.walk(tree)
            for target in imported(node, name, known)
            # A package's own __init__ is imported first anyway; it is not an edge.
            if target != name and not name.startswith(target + ".")
        }
        edges[name] = targets
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layer_of(module: str, layers: tuple[tuple[str, ...], ...] = IMAGEBUILD_LAYERS) -> int | None:
    for number, rooms in enumerate(layers):
        if any(module == room or module.startswith(room + ".") for room in rooms):
            return number
    return None


def upward_imports(
    edges: dict[str, set[str]], layers: tuple[tuple[str, ...], ...] = IMAGEBUILD_LAYERS
) -> list[str]:
    """`a -> b` for each import of a module from a layer above the importer's."""
    found = []
    for importer, targets in sorted(edges.items()):
        below = layer_of(importer, layers)
        for target in sorted(targets):
            above = layer_of(target, layers)
            if below is not None and above is not None and above > below:
                found.append(f"{importer} -> {target}")
    return found


def test_the_walker_finds_a_cycle_and_a_clean_graph() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
    tree = ast.parse("from imagebuild import engine\nfrom . import config\n")
    known = {"imagebuild", "imagebuild.engine", "imagebuild.config"}
    found = [t for node in tree.body for t in imported(node, "imagebuild.build", known)]
    assert set(found) == known


def test_no_import_cycles_in_src() -> None:
    assert find_cycle(graph(modules())) is None


def test_the_layer_check_finds_an_import_from_above() -> None:
    layers = (("p.low",), ("p.high",))
    assert upward_imports({"p.low.a": {"p.high.b"}, "p.high.b": {"p.low.a"}}, layers) == [
        "p.low.a -> p.high.b"
    ]
    assert upward_imports({"p.high.b": {"p.low.a", "p.high.c"}}, layers) == []


def test_every_imagebuild_module_is_in_a_layer() -> None:
    unplaced = [
        name for name in modules() if name.startswith("imagebuild.") and layer_of(name) is None
    ]
    assert unplaced == []


def test_no_imagebuild_room_imports_a_room_above_it() -> None:
    assert upward_imports(graph(modules())) == []


def test_no_imagebuild_module_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(SRC)): lines
        for path in sorted((SRC / "imagebuild").rglob("*.py"))
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


def test_project_modules_are_imported_at_the_top_of_the_file_only() -> None:
    trees = modules()
    known = set(trees)
    late: list[str] = []
    for name, tree in trees.items():
        top = set(map(id, tree.body))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            if id(node) not in top and imported(node, name, known):
                late.append(f"{name}:{node.lineno}")
    assert late == []


def test_python_on_whales_is_used_by_engine_docker_py_only() -> None:
    users = sorted(
        {
            name
            for name, tree in modules().items()
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            and any(
                (alias.name if isinstance(node, ast.Import) else node.module or "").startswith(
                    "python_on_whales"
                )
                for alias in node.names
            )
        }
    )
    assert users == ["imagebuild.engine.docker"]


def test_no_function_outside_engine_docker_py_takes_a_docker_client() -> None:
    takers = [
        f"{name}.{node.name}"
        for name, tree in modules().items()
        if name != "imagebuild.engine.docker"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and "DockerClient" in ast.unparse(node.args)
    ]
    assert takers == []
