#!/usr/bin/env python3
"""Runs conanfile.py offline, as `conan create` would, then builds and runs
tests/consumer against the package it produced.

    conan_dryrun.py --src <tcq source> --work <scratch dir> [--io]

Conan cannot reach its registry here (and may not be installed), so the few
Conan APIs the recipe uses are stubbed with the behaviour that matters for a
header-only CMake project: exports_sources are copied to a fresh source
folder (so a missing pattern breaks the build), the toolchain's cache
variables are passed to CMake, build() and package() run the project's own
configure and install, and a consumer finds the package through
cpp_info.builddirs, as CMakeToolchain puts them on CMAKE_PREFIX_PATH.
"""
import argparse
import fnmatch
import importlib.util
import os
import shutil
import subprocess
import sys
import types


def run(cmd):
    print("conan-dryrun:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


class _Options(types.SimpleNamespace):
    pass


class _CppInfo:
    def __init__(self):
        self.properties = {}
        self.builddirs, self.bindirs, self.libdirs = [], ["bin"], ["lib"]
        self.includedirs = ["include"]

    def set_property(self, key, value):
        self.properties[key] = value


class _Info:
    cleared = False

    def clear(self):
        self.cleared = True


class ConanFile:  # the subset of conan.ConanFile the recipe touches
    def __init__(self, recipe_folder, work, io):
        self.recipe_folder = recipe_folder
        self.source_folder = os.path.join(work, "source")
        self.build_folder = os.path.join(work, "build")
        self.package_folder = os.path.join(work, "package")
        self.options = _Options(io=io)
        self.settings = _Options(os="Linux", arch="x86_64", compiler="gcc", build_type="Release")
        self.info, self.cpp_info = _Info(), _CppInfo()
        self.requirements_seen = []
        self.cache_variables = {}

    def requires(self, ref):
        self.requirements_seen.append(ref)


def _cmake_layout(conanfile):
    conanfile.layout_called = True


class _CMakeToolchain:
    def __init__(self, conanfile):
        self._cf, self.cache_variables = conanfile, {}

    def generate(self):
        self._cf.cache_variables = dict(self.cache_variables)


class _CMakeDeps:
    def __init__(self, conanfile):
        pass

    def generate(self):
        pass


class _CMake:
    def __init__(self, conanfile):
        self._cf = conanfile

    def configure(self):
        cf = self._cf
        cmd = ["cmake", "-S", cf.source_folder, "-B", cf.build_folder, "-DCMAKE_BUILD_TYPE=Release",
               "-DCMAKE_INSTALL_PREFIX=" + cf.package_folder]
        cmd += ["-D%s=%s" % kv for kv in cf.cache_variables.items()]
        run(cmd)

    def build(self):
        run(["cmake", "--build", self._cf.build_folder, "-j2"])

    def install(self):
        run(["cmake", "--install", self._cf.build_folder, "--prefix", self._cf.package_folder])


def _load(conanfile, path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def _check_min_cppstd(conanfile, version):
    conanfile.min_cppstd = version


def install_stubs():
    mods = {
        "conan": {"ConanFile": ConanFile},
        "conan.tools": {},
        "conan.tools.build": {"check_min_cppstd": _check_min_cppstd},
        "conan.tools.cmake": {"CMake": _CMake, "CMakeDeps": _CMakeDeps,
                              "CMakeToolchain": _CMakeToolchain, "cmake_layout": _cmake_layout},
        "conan.tools.files": {"load": _load},
    }
    for name, attrs in mods.items():
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        sys.modules[name] = m


def export_sources(src, dst, patterns):
    """Copies the files of `src` matching the recipe's exports_sources."""
    if isinstance(patterns, str):
        patterns = (patterns,)
    n = 0
    for root, dirs, files in os.walk(src):
        dirs[:] = [d for d in dirs if not d.startswith((".git", "build"))]
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), src)
            if any(fnmatch.fnmatch(rel, p) for p in patterns):
                os.makedirs(os.path.join(dst, os.path.dirname(rel)), exist_ok=True)
                shutil.copy2(os.path.join(src, rel), os.path.join(dst, rel))
                n += 1
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--io", action="store_true")
    a = ap.parse_args()
    src, work = os.path.abspath(a.src), os.path.abspath(a.work)
    shutil.rmtree(work, ignore_errors=True)

    install_stubs()
    spec = importlib.util.spec_from_file_location("tcq_conanfile", os.path.join(src, "conanfile.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    recipe = [c for c in vars(mod).values()
              if isinstance(c, type) and issubclass(c, ConanFile) and c is not ConanFile][0]
    cf = recipe(src, work, a.io)
    assert cf.package_type == "header-library", cf.package_type

    cf.set_version()
    with open(os.path.join(src, "ports", "tcq", "vcpkg.json"), encoding="utf-8") as f:
        if '"version-semver": "%s"' % cf.version not in f.read():
            sys.exit("conan-dryrun: conanfile version %s differs from ports/tcq/vcpkg.json" % cf.version)
    n = export_sources(src, cf.source_folder, cf.exports_sources)
    print("conan-dryrun: %s/%s, %d exported source files" % (cf.name, cf.version, n), flush=True)
    cf.requirements()
    cf.validate()
    cf.layout()
    cf.generate()
    for key in ("TCQ_BUILD_TESTS", "TCQ_BUILD_BENCHMARKS", "TCQ_BUILD_EXAMPLES", "TCQ_BUILD_TOOLS"):
        if cf.cache_variables.get(key) != "OFF":
            sys.exit("conan-dryrun: the recipe must set %s=OFF" % key)
    cf.build()
    cf.package()
    cf.package_id()
    cf.package_info()
    assert cf.info.cleared, "header-only: package_id must clear settings"

    pkg = cf.package_folder
    for d in ("lib", "bin"):
        if os.path.exists(os.path.join(pkg, d)):
            sys.exit("conan-dryrun: header-only package contains %s/" % d)
    if not os.path.isfile(os.path.join(pkg, "include", "tcq", "tcq.hpp")):
        sys.exit("conan-dryrun: package lacks include/tcq/tcq.hpp")
    dirs = [os.path.join(pkg, d) for d in cf.cpp_info.builddirs]
    if not any(os.path.isfile(os.path.join(d, "tcqConfig.cmake")) for d in dirs):
        sys.exit("conan-dryrun: no tcqConfig.cmake in cpp_info.builddirs %s" % cf.cpp_info.builddirs)

    run(["cmake", "-DMODE=find_package", "-DSRC=" + src, "-DPREFIX=" + ";".join(dirs),
         "-DWORK=" + os.path.join(work, "consumer"), "-P", os.path.join(src, "tests", "consumer", "run.cmake")])
    print("conan-dryrun: OK", flush=True)


if __name__ == "__main__":
    main()
