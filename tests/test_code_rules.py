"""Rules from docs/DEVELOPING.md that hold the code's shape, checked by parsing the files (nothing is imported):
the engine stays pure Python, and a page is layout only."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parsed(folder: str) -> list[tuple[Path, ast.Module]]:
    """Every Python file under `folder`, parsed; the path is relative to the project root for the messages."""
    files = sorted((ROOT / folder).rglob("*.py"))
    return [(path.relative_to(ROOT), ast.parse(path.read_text(encoding="utf-8"), filename=str(path))) for path in files]


def is_streamlit(module: str | None) -> bool:
    """True for `streamlit` and any of its submodules."""
    return module is not None and module.split(".")[0] == "streamlit"


def streamlit_imports(tree: ast.Module) -> list[int]:
    """Lines of every import of streamlit, at any depth (inside functions too)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(is_streamlit(alias.name) for alias in node.names):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and is_streamlit(node.module):
            lines.append(node.lineno)
    return lines


def definitions(tree: ast.Module) -> list[tuple[int, str]]:
    """Line and kind of every function, class or lambda, at any depth."""
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
    return [(node.lineno, type(node).__name__) for node in ast.walk(tree) if isinstance(node, kinds)]


def test_engine_never_imports_streamlit():
    files = parsed("engine")
    assert len(files) > 20, "the engine folder was not found"
    found = [f"{path}:{line}" for path, tree in files for line in streamlit_imports(tree)]
    assert not found, "engine/ is pure Python, yet streamlit is imported at " + ", ".join(found)


def test_pages_define_no_functions_or_classes():
    files = parsed("pages")
    assert len(files) > 5, "the pages folder was not found"
    found = [f"{path}:{line} ({kind})" for path, tree in files for line, kind in definitions(tree)]
    assert not found, ("a page is layout only; move this into a named panel in its app/<feature>/ package: "
                       + ", ".join(found))


MESSAGES = {"error", "warning", "info", "success", "exception", "toast", "markdown", "caption"}
ERROR_NAMES = {"err", "error", "e", "exc"}


def raw_error_texts(tree: ast.Module) -> list[int]:
    """Lines where an `st.<message>(...)` call shows an exception's text not passed through `markdown_text`: a
    bare `err`, `str(...)` or either inside an f-string. An engine message quotes what a person typed, so
    Streamlit would render a typed `[link](...)`, `**bold**` or `$formula$` in it."""
    def raw(value: ast.AST) -> bool:
        if isinstance(value, ast.Name):
            return value.id in ERROR_NAMES
        return isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "str"

    lines = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MESSAGES
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "st" and node.args):
            continue
        first = node.args[0]
        parts = [v.value for v in first.values if isinstance(v, ast.FormattedValue)] \
            if isinstance(first, ast.JoinedStr) else [first]
        if any(raw(part) for part in parts):
            lines.append(node.lineno)
    return lines


def test_pages_show_an_error_s_text_only_through_markdown_text():
    files = parsed("app") + parsed("pages")
    found = [f"{path}:{line}" for path, tree in files for line in raw_error_texts(tree)]
    assert not found, ("an exception's text is shown as Markdown (wrap it in app.plain_text.markdown_text): "
                       + ", ".join(found))


# ---------------------------------------------------------------- imports: lazy only where it saves time

# third-party packages slow enough to import (tens of milliseconds to seconds) that a module without them should not
# pay for them when one function needs them
SLOW = {"torch", "transformers", "textattack", "captum", "ray", "plotly", "datasets", "scipy", "sklearn", "nltk",
        "safetensors", "umap", "streamlit", "pandas", "numpy"}
# a command's imports wait for the command (docs/DEVELOPING.md: `python -m engine --help` stays quick)
COMMAND_MODULES = ("engine.commands", "engine.cli", "engine.__main__")


def engine_modules() -> dict[str, ast.Module]:
    return {".".join(path.with_suffix("").parts).removesuffix(".__init__"): tree for path, tree in parsed("engine")}


def module_of(name: str, modules: dict[str, ast.Module]) -> str:
    """The engine module an import names (`engine.store.runs.Run` -> `engine.store.runs`)."""
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def type_checking_block(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def top_level_imports(tree: ast.Module, modules: dict[str, ast.Module]) -> tuple[set[str], set[str]]:
    """The engine modules and the slow packages a module imports when it is imported."""
    engine, slow = set(), set()
    for node in tree.body:
        names = [(node.module or "") + "." + a.name if isinstance(node, ast.ImportFrom) else a.name
                 for a in getattr(node, "names", [])] if isinstance(node, (ast.Import, ast.ImportFrom)) else []
        for name in names:
            if name.startswith("engine."):
                engine.add(module_of(name, modules))
            elif name.split(".")[0] in SLOW:
                slow.add(name.split(".")[0])
    return engine, slow


def test_a_function_local_import_saves_a_slow_import():
    """A function-local engine import outside the commands brings in a slow package its module does not already
    import when it is imported; any other belongs at the top, where the module's needs are seen."""
    modules = engine_modules()
    direct = {name: top_level_imports(tree, modules) for name, tree in modules.items()}

    def slow(name: str) -> set[str]:
        """The slow packages importing `name` brings: its own, its packages', and every engine module's it reaches."""
        reached, todo = set(), [name]
        while todo:
            current = todo.pop()
            if current in reached:
                continue
            reached.add(current)
            parts = current.split(".")
            todo += [".".join(parts[:i]) for i in range(2, len(parts))]   # a module's packages are imported first
            todo += list(direct.get(current, (set(), set()))[0])
        return set().union(*(direct.get(m, (set(), set()))[1] for m in reached))

    needless = []
    for name, tree in modules.items():
        if name.startswith(COMMAND_MODULES):
            continue
        top = {id(node) for node in tree.body} | {id(n) for node in tree.body if type_checking_block(node)
                                                 for n in ast.walk(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("engine") and id(node) not in top:
                targets = {module_of(f"{node.module}.{a.name}", modules) for a in node.names}
                if not set().union(*(slow(t) for t in targets)) - slow(name):
                    needless.append(f"{name}:{node.lineno} from {node.module}")
    assert not needless, "function-local imports that save nothing; import them at the top:\n" + "\n".join(needless)


# the floor plan of docs/DEVELOPING.md, lowest row first: a module imports only from its own row or a lower one
FLOORS = [("engine.paths", "engine.limits", "engine.user_text", "engine.stats"), ("engine.store",),
          ("engine.data", "engine.models.architecture", "engine.models.heavy_imports", "engine.models.device"),
          ("engine.methods",), ("engine.models",), ("engine.execution",), ("engine.explain",), ("engine.training",),
          ("engine.attacks", "engine.behaviour", "engine.recovery", "engine.suite", "engine.probe"),
          ("engine.reporting",), ("engine.cli", "engine.commands", "engine.__main__")]


def floor(module: str) -> int:
    """The row of the floor plan a module is on: the longest prefix that names it."""
    matches = [(len(prefix), row) for row, prefixes in enumerate(FLOORS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    assert matches, f"{module} is on no row of the floor plan; add it to docs/DEVELOPING.md and FLOORS"
    return max(matches)[1]


def test_no_import_runs_up_the_floor_plan():
    modules = engine_modules()
    upward = []
    for name, tree in modules.items():
        if name == "engine":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "engine":
                for alias in node.names:
                    target = module_of(f"{node.module}.{alias.name}", modules)
                    if floor(target) > floor(name):
                        upward.append(f"{name}:{node.lineno} imports {target}")
    assert not upward, "imports from a lower floor to a higher one:\n" + "\n".join(upward)
