"""The layers of docs/architecture.md hold: no module imports one of a higher layer (lazy
imports inside functions included), no import circle, nothing in accel_sim/chip/ names a
model family or a population, and no module compares `network.model` with a name."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: bottom to top; a module may import its own layer and the ones below
LAYERS = [
    ["snn_frontend"],
    ["accel_sim.version", "accel_sim.errors", "accel_sim.registry", "accel_sim.machine",
     "accel_sim.executors"],
    ["accel_sim.config"],
    ["accel_sim.chip", "accel_sim.energy", "accel_sim.memory"],
    ["accel_sim.costing", "accel_sim.report", "accel_sim.tables", "accel_sim.plot"],
    ["accel_sim.run"],
    ["accel_sim.families"],
    ["accel_sim.estimate", "accel_sim.sweep", "accel_sim.search", "accel_sim.export",
     "accel_sim.compare", "accel_sim.validate", "accel_sim.api", "accel_sim.sanafe_parity"],
    ["accel_sim.cli", "accel_sim.__main__", "accel_sim"],
]


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in ("accel_sim", "snn_frontend"):
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _runtime_nodes(tree: ast.AST):
    """Every node but those under `if TYPE_CHECKING:` (imports for type hints only)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def _imports(name: str, path: Path, modules: dict) -> set[str]:
    """The project's modules that `name` imports, anywhere in its code."""
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + (1 if is_pkg else 0)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            for a in node.names:  # `from pkg import submodule` imports the submodule
                sub = f"{mod}.{a.name}"
                found.add(sub if sub in modules else mod)
    return {m for m in found if m in modules}


def _layer(module: str) -> int:
    best = None
    for i, layer in enumerate(LAYERS):
        for prefix in layer:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (i, len(prefix))
    assert best is not None, f"{module} is in no layer of docs/architecture.md"
    return best[0]


def test_no_module_imports_a_higher_layer():
    modules = _modules()
    upward = []
    for name, path in modules.items():
        for dep in _imports(name, path, modules):
            if _layer(dep) > _layer(name):
                upward.append(f"{name} (layer {_layer(name)}) imports {dep} (layer {_layer(dep)})")
    assert upward == []


def test_no_import_circle():
    modules = _modules()
    graph = {n: _imports(n, p, modules) - {n} for n, p in modules.items()}
    index, low, stack, on, circles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
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
                circles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert circles == []


def test_the_chip_names_no_family_or_population():
    names = re.compile(r"\b(diehl_cook|fspinn|spikedyn|asp)\b"
                       r"|[\"'](exc|inh|input->exc|surrogate|nir|hidden_\d+)[\"':]")
    hits = []
    for path in (ROOT / "accel_sim" / "chip").rglob("*.py"):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if names.search(code):
                hits.append(f"{path.name}:{i}: {line.strip()}")
    assert hits == []


def test_no_module_dispatches_on_a_model_name():
    compare = re.compile(r"network\.model\s*(==|!=|in)\s*[\"'(\[]|model\s*==\s*[\"']")
    hits = [f"{p.relative_to(ROOT)}: {line.strip()}" for p in (ROOT / "accel_sim").rglob("*.py")
            for line in p.read_text().splitlines() if compare.search(line)]
    assert hits == []


def test_every_package_is_installed():
    """pyproject lists the packages by hand: a new one missing there works in an editable
    checkout and fails in a real install."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for pkg in ("accel_sim", "snn_frontend") for p in (ROOT / pkg).rglob("__init__.py")}
    assert found <= listed
