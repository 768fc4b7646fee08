"""Build the Cython kernels in ext/ as snn_frontend._* modules.

All metadata lives in pyproject.toml. The extensions are optional: without a C
compiler the package installs and falls back to the NumPy reference kernels
(slow, warned once). ACCEL_SIM_STRICT_BUILD=1 makes a failed build an error (CI).

The kernels are compiled for the CPU that builds them (-march=native, when the
compiler accepts it): their per-neuron loops are written to vectorise, and AVX2 or
AVX-512 makes them 2-3x faster than the x86-64 baseline. A build meant for other
machines (a wheel to copy elsewhere) sets ACCEL_SIM_PORTABLE_BUILD=1. Results do not
depend on the flags: every build is bit-identical to the NumPy reference (tested).
"""
import os
import sys
import tempfile

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

STRICT = os.environ.get("ACCEL_SIM_STRICT_BUILD") == "1"
PORTABLE = os.environ.get("ACCEL_SIM_PORTABLE_BUILD") == "1"
# -ffp-contract=off: no fused multiply-add, so the compiled kernels give results
# bit-identical to the NumPy reference (tests compare them exactly).
# -fno-trapping-math: FP operations raise no traps (NumPy's default too), which lets the
# compiler if-convert and vectorise the branch-free neuron loops; values are unchanged.
COMPILE_ARGS = [] if sys.platform == "win32" else ["-O3", "-ffp-contract=off", "-fno-trapping-math"]


class BuildExt(build_ext):
    """Adds -march=native where the compiler accepts it (unless ACCEL_SIM_PORTABLE_BUILD=1)."""

    def build_extensions(self):
        if not PORTABLE and sys.platform != "win32" and self._accepts("-march=native"):
            for ext in self.extensions:
                ext.extra_compile_args = [*ext.extra_compile_args, "-march=native"]
        super().build_extensions()

    def _accepts(self, flag: str) -> bool:
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "probe.c")
            with open(src, "w") as fh:
                fh.write("int main(void) { return 0; }\n")
            try:
                self.compiler.compile([src], output_dir=tmp, extra_postargs=[flag])
            except Exception:  # any compiler error: build without the flag
                return False
        return True


def kernel(module: str, source: str) -> Extension:
    """One Cython kernel module, built with the project's flags."""
    return Extension(module, [source], include_dirs=[numpy.get_include()],
                     extra_compile_args=COMPILE_ARGS,
                     define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")])


extensions = cythonize(
    [
        kernel("snn_frontend._dc_kernels", "ext/dc_kernels.pyx"),
        kernel("snn_frontend._bptt_kernels", "ext/bptt_kernels.pyx"),
        kernel("accel_sim.chip._event_kernels", "ext/event_kernels.pyx"),
        kernel("accel_sim.chip._des_kernels", "ext/des_kernels.pyx"),
        kernel("accel_sim.chip._step_kernels", "ext/step_kernels.pyx"),
        kernel("snn_frontend._nir_kernels", "ext/nir_kernels.pyx"),
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

setup(ext_modules=extensions, cmdclass={"build_ext": BuildExt})
