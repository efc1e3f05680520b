"""The installed package: type stubs ship and describe what the module has."""

from __future__ import annotations

import ast
from pathlib import Path

import vsync_s3_client as vs


def stub_names(stub: Path) -> dict:
    """Top-level names of the stub, and the methods of each class in it."""
    tree = ast.parse(stub.read_text())
    names: dict = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
        elif isinstance(node, ast.FunctionDef):
            names[node.name] = None
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = None
    return names


def test_stubs_and_py_typed_ship():
    package = Path(vs.__file__).parent
    assert (package / "py.typed").is_file()
    assert (package / "__init__.pyi").is_file()


def test_stubs_match_the_module():
    stub = stub_names(Path(vs.__file__).parent / "__init__.pyi")
    public = {name for name in dir(vs) if not name.startswith("_")} - {"vsync_s3_client"}
    # Every public name is typed, and every typed name exists (Source is a
    # stub-only alias).
    assert public | {"__version__"} == set(stub) - {"Source"}
    client_methods = {
        name for name in dir(vs.Client) if not name.startswith("_") or name in ("__enter__", "__exit__")
    }
    assert client_methods == stub["Client"]
