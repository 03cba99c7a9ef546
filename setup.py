"""Build the optional compiled CPU code; everything else is in pyproject.toml.

Two extensions: the primitives (``zennit_clusters/compiled``) and the k-means row step, which lives with its
family (``zennit_clusters/families/centroids``) and shares the primitives' headers. Both are optional: without a
C compiler with OpenMP the package installs anyway and runs the same operations in torch
(``zennit_clusters.compiled.available()`` tells which).
"""
import glob
import sys

from setuptools import Extension, setup

if sys.platform == 'win32':
    flags, links = ['/O2', '/openmp'], []
elif sys.platform == 'darwin':  # Apple clang has no -fopenmp; the build fails and the torch path is used
    flags, links = ['-O3', '-Xpreprocessor', '-fopenmp'], ['-lomp']
else:
    flags, links = ['-O3', '-fopenmp', '-Wno-psabi'], ['-fopenmp']

COMPILED = 'zennit_clusters/compiled'
CENTROIDS = 'zennit_clusters/families/centroids'
HEADERS = glob.glob(f'{COMPILED}/*.h')


def extension(name, source, include_dirs, headers):
    return Extension(name, [source], include_dirs=include_dirs, depends=headers, extra_compile_args=flags,
                     extra_link_args=links, optional=True)


setup(ext_modules=[
    extension('zennit_clusters.compiled._cpu', f'{COMPILED}/_cpu.c', [COMPILED], HEADERS),
    extension('zennit_clusters.families.centroids._row_step', f'{CENTROIDS}/_row_step.c', [COMPILED, CENTROIDS],
              HEADERS + glob.glob(f'{CENTROIDS}/*.h')),
])
