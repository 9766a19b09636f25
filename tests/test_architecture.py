"""Keep ``docs/architecture.md`` true: the layer table, the import direction, no cycles.

The doc holds one fenced block with the info string ``layers``, one line per layer, bottom
first::

    layer 0: pamflow.seeding, pamflow.audio, pamflow.measures
    layer 1: pamflow.storage

Every import in ``src/pamflow`` is read with :mod:`ast`: module-level ones, lazy ones inside
functions, those under ``if TYPE_CHECKING:`` and ``importlib.import_module("pamflow...")``
with a literal name. Relative imports are resolved, and ``from pamflow.x import y`` is an
import of the module ``pamflow.x.y`` when that is a module or package, else of ``pamflow.x``.

The rules checked:

- the packages and top-level modules the table names are exactly those under src/pamflow;
- a module of layer k imports pamflow modules of layers below k, or of its own package;
  two packages of one layer (``pipeline`` and ``models``) never import each other; the
  package root ``pamflow/__init__.py`` is left out of this check (it lazily exposes every
  subpackage, and modules read ``pamflow.__version__`` from it);
- no import cycle among pamflow modules, lazy imports included; ``import pamflow.x`` from
  inside ``pamflow.x`` is an edge to ``pamflow/x/__init__.py``;
- at most three modules at the top of src/pamflow besides ``__init__.py``; no file over
  450 lines.

The helpers are tested on small in-memory examples first, so a broken helper cannot make
the checks on the real tree pass vacuously.
"""

from __future__ import annotations

import ast
import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE_DIR = SRC / "pamflow"
DOC = REPO / "docs" / "architecture.md"
ROOT = "pamflow"
MAX_LINES = 450
MAX_TOP_MODULES = 3

LAYER_BLOCK = re.compile(r"^```layers[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
LAYER_LINE = re.compile(r"layer\s+(\d+)\s*:\s*(.+)")


@dataclass(frozen=True)
class Import:
    """One import of a pamflow module: who imports what, where."""

    source: str  # the importing module, dotted
    path: str  # its file, relative to the repository
    line: int
    target: str  # the imported pamflow module, dotted


# -- helpers ------------------------------------------------------------------------------


def parse_layers(text: str) -> dict[str, int]:
    """``{"pamflow.audio": 0, ...}`` from the one ```` ```layers ```` block of ``text``."""
    blocks = LAYER_BLOCK.findall(text)
    if len(blocks) != 1:
        raise ValueError(f"expected exactly one ```layers block, found {len(blocks)}")
    layers: dict[str, int] = {}
    for number, raw in enumerate(blocks[0].splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = LAYER_LINE.fullmatch(line)
        if m is None:
            raise ValueError(f"layers block, line {number}: expected 'layer N: a, b', got {raw!r}")
        for name in (n.strip() for n in m.group(2).split(",")):
            if not re.fullmatch(rf"{ROOT}\.\w+", name):
                raise ValueError(f"layers block, line {number}: {name!r} is not pamflow.<name>")
            if name in layers:
                raise ValueError(f"layers block, line {number}: {name} is listed twice")
            layers[name] = int(m.group(1))
    return layers


def discover(package_dir: Path) -> dict[str, Path]:
    """Dotted name -> file of every module under ``package_dir`` (a package by its
    ``__init__.py``)."""
    modules: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _ours(name: str) -> bool:
    return name == ROOT or name.startswith(ROOT + ".")


def _longest_known(name: str, known: set[str]) -> str:
    """``name`` or its longest prefix that is a known module (``name`` itself if none is)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return name


def _absolute(module: str | None, level: int, package: str) -> str:
    if level == 0:
        return module or ""
    base = package.split(".")
    if level - 1 > len(base) - 1:
        raise ValueError(f"relative import beyond the top package in {package}")
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, module] if module else base)


def imports_in(
    source: str, module: str, is_package: bool, known: set[str]
) -> list[tuple[int, str]]:
    """``(line, imported pamflow module)`` of every import in ``source``, wherever it sits."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, _longest_known(a.name, known)) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, package)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                target = sub if alias.name != "*" and sub in known else _longest_known(base, known)
                found.append((node.lineno, target))
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, _longest_known(node.args[0].value, known)))
    return list(dict.fromkeys((line, t) for line, t in found if _ours(t)))


def unit_of(module: str) -> str | None:
    """The top-level package or module ``module`` belongs to (None for the root)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else None


def direction_violations(imports: Iterable[Import], layers: Mapping[str, int]) -> list[str]:
    """Every import that goes up a layer, across to a peer package, or to a package the
    table does not name; the root package is left out on both ends."""
    out = []
    for imp in imports:
        src, dst = unit_of(imp.source), unit_of(imp.target)
        if src is None or dst is None or src == dst:
            continue
        where = f"{imp.path}:{imp.line}: {imp.source} imports {imp.target}"
        if src not in layers or dst not in layers:
            missing = src if src not in layers else dst
            out.append(f"{where} ({missing} is not in the layer table)")
        elif layers[dst] > layers[src]:
            out.append(f"{where} (upward: layer {layers[src]} -> layer {layers[dst]})")
        elif layers[dst] == layers[src]:
            out.append(f"{where} (peers in layer {layers[src]}: {src} and {dst})")
    return out


def graph_of(imports: Iterable[Import], known: set[str]) -> dict[str, set[str]]:
    """Module -> modules it imports (self-imports dropped)."""
    graph: dict[str, set[str]] = {m: set() for m in known}
    for imp in imports:
        if imp.target in known and imp.target != imp.source:
            graph.setdefault(imp.source, set()).add(imp.target)
    return graph


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)

    for start in sorted(graph):
        if start in index:
            continue
        visit(start)
        work = [(start, iter(sorted(graph.get(start, ()))))]
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    visit(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def cycle_in(graph: Mapping[str, Iterable[str]], component: list[str]) -> list[str]:
    """A shortest cycle ``[a, b, ..., a]`` through the first module of ``component``."""
    members, start = set(component), component[0]
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if nxt in members and nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    raise ValueError(f"no cycle through {start}")  # pragma: no cover - not an SCC


def find_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle path per strongly connected component of more than one module."""
    return [cycle_in(graph, c) for c in strongly_connected(graph) if len(c) > 1]


def describe_cycle(cycle: list[str], imports: Iterable[Import]) -> str:
    """``a -> b (file:line) -> a (file:line)``: each step with the import that makes it."""
    where: dict[tuple[str, str], str] = {}
    for imp in imports:
        where.setdefault((imp.source, imp.target), f"{imp.path}:{imp.line}")
    pairs = zip(cycle, cycle[1:], strict=False)
    steps = [cycle[0]] + [f"{b} ({where.get((a, b), '?')})" for a, b in pairs]
    return " -> ".join(steps)


# -- the real tree ------------------------------------------------------------------------


@lru_cache(maxsize=1)
def scan() -> tuple[dict[str, Path], tuple[Import, ...]]:
    modules = discover(PACKAGE_DIR)
    known = set(modules)
    imports = []
    for name, path in modules.items():
        rel = str(path.relative_to(REPO))
        is_package = path.name == "__init__.py"
        for line, target in imports_in(path.read_text(encoding="utf-8"), name, is_package, known):
            imports.append(Import(name, rel, line, target))
    return modules, tuple(imports)


@lru_cache(maxsize=1)
def doc_layers() -> dict[str, int]:
    assert DOC.exists(), f"{DOC.relative_to(REPO)} is missing"
    return parse_layers(DOC.read_text(encoding="utf-8"))


def top_level_units() -> set[str]:
    units = {f"{ROOT}.{p.stem}" for p in PACKAGE_DIR.glob("*.py") if p.name != "__init__.py"}
    units |= {
        f"{ROOT}.{p.name}" for p in PACKAGE_DIR.iterdir() if p.is_dir() and any(p.rglob("*.py"))
    }
    return units


# -- unit tests of the helpers on synthetic examples --------------------------------------


def test_parse_layers_reads_the_block_and_rejects_bad_lines():
    text = "intro\n```layers\nlayer 0: pamflow.a, pamflow.b  # leaves\n\nlayer 1: pamflow.c\n```\n"
    assert parse_layers(text) == {"pamflow.a": 0, "pamflow.b": 0, "pamflow.c": 1}
    with pytest.raises(ValueError, match="exactly one"):
        parse_layers("no block here")
    with pytest.raises(ValueError, match="expected 'layer N"):
        parse_layers("```layers\nlevel 0: pamflow.a\n```\n")
    with pytest.raises(ValueError, match="twice"):
        parse_layers("```layers\nlayer 0: pamflow.a\nlayer 1: pamflow.a\n```\n")


def test_imports_in_finds_lazy_type_checking_relative_and_from_imports():
    known = {
        "pamflow",
        "pamflow.a",
        "pamflow.a.base",
        "pamflow.a.util",
        "pamflow.b",
        "pamflow.b.files",
        "pamflow.c",
    }
    source = (
        "from typing import TYPE_CHECKING\n"
        "import numpy\n"
        "from . import util\n"  # 3: relative, a submodule
        "from ..b import files\n"  # 4: relative, up one package
        "from pamflow.b import Thing\n"  # 5: a name: the package itself
        "if TYPE_CHECKING:\n"
        "    from pamflow.c import Other\n"  # 7
        "def f():\n"
        "    import pamflow.a\n"  # 9: lazy, the own parent package
        "    from pamflow import c, __version__\n"  # 10: a subpackage and a root name
        "    importlib.import_module('pamflow.b.files')\n"  # 11
    )
    found = imports_in(source, "pamflow.a.base", False, known)
    assert found == [
        (3, "pamflow.a.util"),
        (4, "pamflow.b.files"),
        (5, "pamflow.b"),
        (7, "pamflow.c"),
        (9, "pamflow.a"),
        (10, "pamflow.c"),
        (10, "pamflow"),
        (11, "pamflow.b.files"),
    ]
    # in a package's __init__, "." is the package itself
    assert imports_in("from .base import x\n", "pamflow.a", True, known) == [(1, "pamflow.a.base")]


def test_direction_reports_upward_and_peer_imports_with_file_and_line():
    layers = {"pamflow.low": 0, "pamflow.left": 1, "pamflow.right": 1}
    imports = [
        Import("pamflow.low.x", "src/pamflow/low/x.py", 7, "pamflow.left.y"),  # upward
        Import("pamflow.left.y", "src/pamflow/left/y.py", 3, "pamflow.right"),  # peer
        Import("pamflow.left.y", "src/pamflow/left/y.py", 4, "pamflow.low.x"),  # downward: ok
        Import("pamflow.left.y", "src/pamflow/left/y.py", 5, "pamflow.left"),  # own package: ok
        Import("pamflow.low.x", "src/pamflow/low/x.py", 9, "pamflow"),  # the root: left out
        Import("pamflow.low.x", "src/pamflow/low/x.py", 11, "pamflow.ghost"),  # not in the table
    ]
    found = direction_violations(imports, layers)
    assert len(found) == 3
    assert found[0].startswith("src/pamflow/low/x.py:7: pamflow.low.x imports pamflow.left.y")
    assert "upward: layer 0 -> layer 1" in found[0]
    assert found[1].startswith("src/pamflow/left/y.py:3:") and "peers in layer 1" in found[1]
    assert found[2].startswith("src/pamflow/low/x.py:11:") and "pamflow.ghost" in found[2]


def test_cycles_are_found_one_per_component():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    two = {"x": {"y"}, "y": {"x"}, "z": {"x"}}
    assert find_cycles(two) == [["x", "y", "x"]]
    # two components; the longer one is reported by one shortest path through its first node
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "b"}, "p": {"q"}, "q": {"p"}}
    cycles = sorted(find_cycles(graph))
    assert cycles == [["a", "b", "c", "a"], ["p", "q", "p"]]


def test_importing_the_parent_package_closes_a_cycle():
    known = {"pamflow", "pamflow.p", "pamflow.p.base"}
    init = Import("pamflow.p", "p/__init__.py", 1, "pamflow.p.base")
    ((line, target),) = imports_in(
        "def f():\n    import pamflow.p\n", "pamflow.p.base", False, known
    )
    lazy = Import("pamflow.p.base", "p/base.py", line, target)
    cycles = find_cycles(graph_of([init, lazy], known))
    assert cycles == [["pamflow.p", "pamflow.p.base", "pamflow.p"]]
    assert describe_cycle(cycles[0], [init, lazy]) == (
        "pamflow.p -> pamflow.p.base (p/__init__.py:1) -> pamflow.p (p/base.py:2)"
    )


# -- the checks on src/pamflow ------------------------------------------------------------


def test_layer_table_names_exactly_the_top_level_packages():
    layers = doc_layers()
    units = top_level_units()
    missing_in_src = sorted(set(layers) - units)
    missing_in_doc = sorted(units - set(layers))
    assert not missing_in_src and not missing_in_doc, (
        f"docs/architecture.md's layers block and src/pamflow disagree: named in the doc but "
        f"not in src: {missing_in_src}; in src but not in the doc: {missing_in_doc}"
    )


def test_imports_follow_the_layers():
    _, imports = scan()
    found = direction_violations(imports, doc_layers())
    assert not found, (
        f"{len(found)} import(s) against the direction of docs/architecture.md:\n"
        + "\n".join(found)
    )


def test_no_import_cycles():
    modules, imports = scan()
    cycles = find_cycles(graph_of(imports, set(modules)))
    assert not cycles, f"{len(cycles)} import cycle(s) (lazy imports included):\n" + "\n".join(
        describe_cycle(c, imports) for c in cycles
    )


def test_few_modules_at_the_top_of_the_package():
    top = sorted(p.name for p in PACKAGE_DIR.glob("*.py") if p.name != "__init__.py")
    assert len(top) <= MAX_TOP_MODULES, (
        f"{len(top)} modules at the top of src/pamflow (at most {MAX_TOP_MODULES}): {top}"
    )


def test_no_module_over_the_line_limit():
    modules, _ = scan()
    long = sorted(
        (str(path.relative_to(REPO)), n)
        for path in modules.values()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    )
    assert not long, f"files over {MAX_LINES} lines: " + ", ".join(f"{p} ({n})" for p, n in long)


def test_paths_named_in_the_doc_exist():
    text = DOC.read_text(encoding="utf-8")
    named = set(re.findall(r"`([\w./-]+\.(?:py|md|yaml|toml))(?::\w+)?`", text))
    missing = sorted(
        p for p in named if not any((d / p).exists() for d in (REPO, SRC, PACKAGE_DIR))
    )
    assert not missing, f"docs/architecture.md names files that do not exist: {missing}"
