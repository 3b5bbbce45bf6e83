"""Build hook: compile the BPF objects (bpf/Makefile) before packaging them as data.

Metadata is in setup.cfg; this file only makes `pip install .` run the one build recipe, so an
installed netwarden never compiles anything at run time.
"""

import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithBpf(build_py):
    def run(self) -> None:
        bpf_dir = Path(__file__).resolve().parent / "bpf"
        subprocess.run(["make", "-C", str(bpf_dir)], check=True)
        super().run()


setup(cmdclass={"build_py": BuildWithBpf})
