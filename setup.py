"""Build the optional C kernels (zennit_clusters/_kernels.c); everything else is in pyproject.toml.

The extension is optional: without a C compiler with OpenMP the package installs anyway and runs the same
operations in torch (zennit_clusters/kernels.py decides at run time).
"""
import sys

from setuptools import Extension, setup

if sys.platform == 'win32':
    flags, links = ['/O2', '/openmp'], []
elif sys.platform == 'darwin':  # Apple clang has no -fopenmp; the build fails and the torch path is used
    flags, links = ['-O3', '-Xpreprocessor', '-fopenmp'], ['-lomp']
else:
    flags, links = ['-O3', '-fopenmp', '-Wno-psabi'], ['-fopenmp']

setup(ext_modules=[
    Extension('zennit_clusters._kernels', ['zennit_clusters/_kernels.c'], depends=['zennit_clusters/_kernels_isa.h', 'zennit_clusters/_kernels_typed.h'],
              extra_compile_args=flags,
              extra_link_args=links, optional=True),
])
