"""Sphinx configuration of the hpc documentation (``make docs``; built with -W by the tests)."""
from __future__ import annotations

import hpc

project = "hpc"
author = "the hpc developers"
release = version = hpc.__version__
copyright = "2026, the hpc developers (BSD-3-Clause)"

extensions = [
    "myst_parser",            # pages in Markdown
    "sphinx.ext.autodoc",     # the API reference, from the docstrings
    "sphinx.ext.napoleon",    # NumPy-style docstrings
    "sphinx.ext.intersphinx",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False}
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True  # "Attributes" sections as fields: no duplicate of autodoc's members
# Mocks keep the reference buildable where an optional back end is absent.
autodoc_mock_imports = ["cupy", "torch", "petsc4py"]
nitpicky = False
# Markdown pages link to files of the repository (scripts, data) that are not documents.
suppress_warnings: list[str] = []

intersphinx_mapping: dict = {}  # offline builds: no network in CI
html_theme = "alabaster"
html_title = f"hpc {release}"
