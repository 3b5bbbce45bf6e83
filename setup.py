"""Build hooks: compile the BPF objects (bpf/Makefile) and take the systemd units along.

Metadata is in setup.cfg; this file only adds what a wheel (and `pip install .`) needs beyond
the Python sources, so an installed netwarden never compiles anything at run time:

- build_py runs the one build recipe, ``make -C bpf``, whose objects land in
  netwarden/sensor/bpf_objects/ and ship as package data;
- build_py copies systemd/ (the units, sysusers.d and tmpfiles.d files) into the built
  package (netwarden/units/files/), from where ``netwarden systemd install`` writes them with
  the installation's paths;
- the wheel is tagged for this platform: the BPF objects are built for this architecture
  (bpf/Makefile's __TARGET_ARCH_*), so a pure-Python "any" tag would be a lie.
"""

import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

try:    # setuptools >= 70.1 carries bdist_wheel itself; older ones take it from `wheel`
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:
    from wheel.bdist_wheel import bdist_wheel

HERE = Path(__file__).resolve().parent


class BuildWithBpf(build_py):
    def run(self) -> None:
        subprocess.run(["make", "-C", str(HERE / "bpf")], check=True)
        super().run()
        units = Path(self.build_lib) / "netwarden" / "units" / "files"
        units.mkdir(parents=True, exist_ok=True)
        for name in ("*.service", "*.sysusers", "*.tmpfiles"):
            for source in sorted((HERE / "systemd").glob(name)):
                shutil.copy2(source, units / source.name)


class PlatformWheel(bdist_wheel):
    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self) -> tuple[str, str, str]:
        _, _, platform = super().get_tag()
        return "py3", "none", platform   # any Python 3 (no extension module), this platform


setup(cmdclass={"build_py": BuildWithBpf, "bdist_wheel": PlatformWheel})
