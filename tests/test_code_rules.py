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
