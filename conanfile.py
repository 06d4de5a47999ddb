"""Conan 2 recipe for tcq (header-only). It drives the project's own CMake
install with tests, benchmarks and examples off, and consumers use the
installed tcqConfig.cmake (find_package(tcq), target tcq::tcq).

    conan create . [-o tcq/*:io=True]

ctest runs this recipe offline through tests/packaging/conan_dryrun.py
(test package_conan)."""
import os
import re

from conan import ConanFile
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import load


class TcqConan(ConanFile):
    name = "tcq"
    package_type = "header-library"
    description = ("Task-Circuit Quantization (TaCQ): GPTQ to 2-4 bits keeping a "
                   "task-chosen ~0.35% of weights in 16-bit")
    topics = ("quantization", "llm", "gptq", "header-only")
    settings = "os", "arch", "compiler", "build_type"
    options = {"io": [True, False]}
    default_options = {"io": False}
    exports_sources = "CMakeLists.txt", "cmake/*", "include/*", "LICENSE*"
    no_copy_source = True

    def set_version(self):
        text = load(self, os.path.join(self.recipe_folder, "include", "tcq", "version.hpp"))
        self.version = re.search(r'version_string = "([0-9.]+)"', text).group(1)

    def requirements(self):
        # The versions CI builds against (Debian bookworm).
        self.requires("eigen/3.4.0")
        self.requires("xsimd/8.1.0")
        if self.options.io:
            self.requires("nlohmann_json/3.11.2")

    def validate(self):
        check_min_cppstd(self, 20)

    def layout(self):
        cmake_layout(self)

    def generate(self):
        tc = CMakeToolchain(self)
        tc.cache_variables.update({
            "TCQ_BUILD_TESTS": "OFF", "TCQ_BUILD_BENCHMARKS": "OFF", "TCQ_BUILD_EXAMPLES": "OFF",
            "TCQ_BUILD_TOOLS": "OFF",  # the tcq CLI is an executable: not in a header-only package
            "TCQ_INSTALL": "ON", "TCQ_NATIVE": "OFF", "TCQ_ENABLE_CUDA": "OFF",
            "CMAKE_DISABLE_FIND_PACKAGE_nlohmann_json": "OFF" if self.options.io else "ON",
        })
        tc.generate()
        CMakeDeps(self).generate()

    def build(self):
        CMake(self).configure()

    def package(self):
        CMake(self).install()

    def package_id(self):
        self.info.clear()

    def package_info(self):
        # Consumers load the project's own config, which carries the usage
        # requirements (C++20, -ffp-contract=off, OpenMP, Eigen, xsimd).
        self.cpp_info.set_property("cmake_find_mode", "none")
        self.cpp_info.builddirs = [os.path.join("share", "cmake", "tcq")]
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
