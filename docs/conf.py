"""Sphinx configuration for the visim documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))
sys.path.insert(0, os.path.abspath("."))

project = "visim"
author = "visim developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode", "_ext.cli_reference", "_ext.visim_config"]
exclude_patterns = ["_build"]
html_theme = "furo"  # wide code blocks, light/dark, search: made for code-heavy docs
html_title = "visim"
autodoc_mock_imports = []
autodoc_typehints = "none"
nitpicky = False
suppress_warnings = ["autodoc.import_object"]
