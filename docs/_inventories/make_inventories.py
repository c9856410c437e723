"""Write the small intersphinx inventories that the documentation links with.

The documentation is built without network access, so intersphinx cannot fetch
the inventories (``objects.inv``) of NumPy, matplotlib, Python and the array API
standard. This script writes, for each of them, an inventory holding just the
names the xgrad pages mention, with Sphinx's own writer; ``conf.py`` points
intersphinx at these files, and links go to the real sites.

To link to another name, add it to ``INVENTORIES`` (its address relative to the
site's root, copied from the page's URL) and run from the repository root::

    python docs/_inventories/make_inventories.py

then commit the changed ``*.inv`` files. The test suite checks that they match
this table.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from sphinx.util.inventory import InventoryFile

HERE = Path(__file__).resolve().parent

# inventory -> (project, version, root URL, [(name, "domain:type", page#anchor, shown name or "-")])
INVENTORIES: dict[str, tuple[str, str, str, list[tuple[str, str, str, str]]]] = {
    "python": ("Python", "3", "https://docs.python.org/3/", [
        ("None", "py:data", "library/constants.html#None", "-"),
        ("bool", "py:class", "library/functions.html#bool", "-"),
        ("callable", "std:term", "glossary.html#term-callable", "callable"),
        ("concurrent.futures.Executor", "py:class", "library/concurrent.futures.html#concurrent.futures.Executor",
         "-"),
        ("dict", "py:class", "library/stdtypes.html#dict", "-"),
        ("float", "py:class", "library/functions.html#float", "-"),
        ("int", "py:class", "library/functions.html#int", "-"),
        ("list", "py:class", "library/stdtypes.html#list", "-"),
        ("numbers.Number", "py:class", "library/numbers.html#numbers.Number", "-"),
        ("os.PathLike", "py:class", "library/os.html#os.PathLike", "-"),
        ("sequence", "std:term", "glossary.html#term-sequence", "sequence"),
        ("str", "py:class", "library/stdtypes.html#str", "-"),
        ("tuple", "py:class", "library/stdtypes.html#tuple", "-"),
        ("TypeError", "py:exception", "library/exceptions.html#TypeError", "-"),
        ("ValueError", "py:exception", "library/exceptions.html#ValueError", "-"),
    ]),
    "numpy": ("NumPy", "stable", "https://numpy.org/doc/stable/", [
        ("array_like", "std:term", "glossary.html#term-array_like", "array_like"),
        ("numpy.ndarray", "py:class", "reference/generated/numpy.ndarray.html#numpy.ndarray", "-"),
    ]),
    "matplotlib": ("Matplotlib", "stable", "https://matplotlib.org/stable/", [
        ("matplotlib.figure.Figure", "py:class", "api/_as_gen/matplotlib.figure.Figure.html#matplotlib.figure.Figure",
         "-"),
        ("matplotlib.figure.Figure.savefig", "py:method",
         "api/_as_gen/matplotlib.figure.Figure.savefig.html#matplotlib.figure.Figure.savefig", "-"),
    ]),
    "array_api": ("Python array API standard", "latest", "https://data-apis.org/array-api/latest/", [
        ("api-specification", "std:label", "API_specification/index.html#api-specification", "API specification"),
        ("array-object", "std:label", "API_specification/array_object.html#array-object", "Array object"),
    ]),
}


class _Domain(SimpleNamespace):
    def get_objects(self) -> list[tuple[str, str, str, str, str, int]]:
        return self.objects


class _Domains(dict):  # type: ignore[type-arg]
    """The domains as the writer reads them: ``.items()`` up to Sphinx 8.1, ``.sorted()`` after."""

    def sorted(self) -> list[_Domain]:
        return [self[name] for name in sorted(self)]


def write(name: str, folder: Path = HERE) -> Path:
    """Write ``folder/<name>.inv`` from ``INVENTORIES[name]``; return its path."""
    project, version, _, entries = INVENTORIES[name]
    by_domain: dict[str, list[tuple[str, str, str, str, str, int]]] = {}
    for fullname, role, target, shown in entries:
        domain, objtype = role.split(":")
        page, _, anchor = target.partition("#")
        by_domain.setdefault(domain, []).append(
            (fullname, fullname if shown == "-" else shown, objtype, page, anchor, 1))
    domains = _Domains({d: _Domain(name=d, objects=sorted(objs)) for d, objs in by_domain.items()})
    # the writer reads the project from env.config, the objects from env.domains
    # and each page's address from the builder; these stand-ins give it the table
    env = SimpleNamespace(config=SimpleNamespace(project=project, version=version),
                          domains=domains)
    builder = SimpleNamespace(get_target_uri=lambda page: page)
    path = folder / f"{name}.inv"
    InventoryFile.dump(path, env, builder)  # type: ignore[arg-type]
    return path


if __name__ == "__main__":
    for inventory in INVENTORIES:
        print("wrote", write(inventory))
