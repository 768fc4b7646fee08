"""Build the Cython kernels in ext/ as snn_frontend._* modules.

All metadata lives in pyproject.toml. The extensions are optional: without a C
compiler the package installs and falls back to the NumPy reference kernels
(slow, warned once). ACCEL_SIM_STRICT_BUILD=1 makes a failed build an error (CI).
"""
import os
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

STRICT = os.environ.get("ACCEL_SIM_STRICT_BUILD") == "1"
# -ffp-contract=off: no fused multiply-add, so the compiled kernels give results
# bit-identical to the NumPy reference (tests compare them exactly).
COMPILE_ARGS = [] if sys.platform == "win32" else ["-O3", "-ffp-contract=off"]

extensions = cythonize(
    [
        Extension(
            "snn_frontend._dc_kernels",
            ["ext/dc_kernels.pyx"],
            include_dirs=[numpy.get_include()],
            extra_compile_args=COMPILE_ARGS,
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        ),
    ],
    compiler_directives={
        "language_level": "3",
        "embedsignature": True,
        "boundscheck": False,
        "wraparound": False,
        "cdivision": True,
        "initializedcheck": False,
    },
)
for ext in extensions:
    ext.optional = not STRICT  # cythonize() drops `optional`; set it on its output

setup(ext_modules=extensions)
