"""The project is described in pyproject.toml; this file only adds the optional C module."""

from setuptools import Extension, setup

# Optional: without a C compiler the package installs without it and runs the same code in Python.
setup(ext_modules=[Extension("router.core._native", ["router/core/_native.c"], optional=True)])
