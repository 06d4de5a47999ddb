# vcpkg overlay port for tcq, built from this checkout:
#   vcpkg install tcq[io] --overlay-ports=<tcq>/ports
# For a registry, replace the SOURCE_PATH lines by
#   vcpkg_from_github(OUT_SOURCE_PATH SOURCE_PATH REPO <owner>/tcq REF "v${VERSION}" SHA512 <sha>)
# ctest runs this file through tests/packaging/vcpkg_port.cmake (test package_vcpkg).
set(VCPKG_BUILD_TYPE release)  # header-only: one configuration is all there is
if(DEFINED ENV{TCQ_SOURCE_DIR})
  set(SOURCE_PATH "$ENV{TCQ_SOURCE_DIR}")
else()
  get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
endif()

# Without the io feature, nlohmann-json must not be picked up even if present.
vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
  INVERTED_FEATURES io CMAKE_DISABLE_FIND_PACKAGE_nlohmann_json)

vcpkg_cmake_configure(SOURCE_PATH "${SOURCE_PATH}" OPTIONS
  -DTCQ_BUILD_TESTS=OFF -DTCQ_BUILD_BENCHMARKS=OFF -DTCQ_BUILD_EXAMPLES=OFF -DTCQ_BUILD_TOOLS=OFF
  -DTCQ_INSTALL=ON -DTCQ_NATIVE=OFF -DTCQ_ENABLE_CUDA=OFF
  -DTCQ_CMAKE_DIR=share/tcq ${FEATURE_OPTIONS})
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(CONFIG_PATH share/tcq)
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/lib" "${CURRENT_PACKAGES_DIR}/debug")

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
