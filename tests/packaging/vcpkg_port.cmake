# Runs ports/tcq/portfile.cmake offline, as vcpkg would, then builds and runs
# tests/consumer against the package it produced.
#   cmake -DSRC=<tcq source> -DWORK=<scratch dir> [-DFEATURES=io] -P vcpkg_port.cmake
#
# vcpkg cannot reach its registry here, so the vcpkg helper functions the
# port calls are defined below with the behaviour that matters for a
# header-only CMake project: configure with the port's options (Release, the
# staging prefix as CMAKE_INSTALL_PREFIX), build the install target, and the
# post-build checks vcpkg applies (config in share/<port>, a copyright file,
# no binaries). The port file itself is included unchanged.
cmake_minimum_required(VERSION 3.20)
foreach(_v SRC WORK)
  if(NOT DEFINED ${_v})
    message(FATAL_ERROR "vcpkg_port.cmake: -D${_v}= is required")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK})

set(PORT tcq)
set(TARGET_TRIPLET x64-linux)
set(CURRENT_PACKAGES_DIR ${WORK}/packages/${PORT}_${TARGET_TRIPLET})
set(CURRENT_BUILDTREES_DIR ${WORK}/buildtrees/${PORT})
set(_port_dir ${SRC}/ports/${PORT})
file(READ ${_port_dir}/vcpkg.json _manifest)
string(JSON VERSION GET "${_manifest}" version-semver)
string(REPLACE "," ";" FEATURES "core,${FEATURES}")

# The manifest's version must be the library's (include/tcq/version.hpp).
file(READ ${SRC}/include/tcq/version.hpp _ver_hpp)
string(REGEX MATCH "version_string = \"([0-9.]+)\"" _m "${_ver_hpp}")
if(NOT CMAKE_MATCH_1 STREQUAL VERSION)
  message(FATAL_ERROR "ports/tcq/vcpkg.json version ${VERSION} != tcq ${CMAKE_MATCH_1}")
endif()

function(_tcq_run)
  string(REPLACE ";" " " _pretty "${ARGN}")
  message(STATUS "vcpkg-emulator: ${_pretty}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "vcpkg-emulator: command failed (${rc}): ${_pretty}")
  endif()
endfunction()

function(vcpkg_from_github)
  message(FATAL_ERROR "vcpkg-emulator: the overlay port must build the local tree, not download")
endfunction()

function(vcpkg_check_features)
  cmake_parse_arguments(PARSE_ARGV 0 a "" "OUT_FEATURE_OPTIONS" "FEATURES;INVERTED_FEATURES")
  set(_opts)
  foreach(_kind FEATURES INVERTED_FEATURES)
    set(_list ${a_${_kind}})
    while(_list)
      list(POP_FRONT _list _feature _var)
      if(_feature IN_LIST FEATURES)
        set(_on ON)
      else()
        set(_on OFF)
      endif()
      if(_kind STREQUAL "INVERTED_FEATURES")
        if(_on)
          set(_on OFF)
        else()
          set(_on ON)
        endif()
      endif()
      list(APPEND _opts "-D${_var}=${_on}")
    endwhile()
  endforeach()
  set(${a_OUT_FEATURE_OPTIONS} ${_opts} PARENT_SCOPE)
endfunction()

function(vcpkg_cmake_configure)
  cmake_parse_arguments(PARSE_ARGV 0 a "" "SOURCE_PATH" "OPTIONS;OPTIONS_RELEASE;OPTIONS_DEBUG")
  set(_configs rel)
  if(NOT VCPKG_BUILD_TYPE STREQUAL "release")
    list(APPEND _configs dbg)
  endif()
  foreach(_c ${_configs})
    set(_bin ${CURRENT_BUILDTREES_DIR}/${TARGET_TRIPLET}-${_c})
    if(_c STREQUAL "rel")
      _tcq_run(${CMAKE_COMMAND} -S ${a_SOURCE_PATH} -B ${_bin} -DCMAKE_BUILD_TYPE=Release
               -DCMAKE_INSTALL_PREFIX=${CURRENT_PACKAGES_DIR} ${a_OPTIONS} ${a_OPTIONS_RELEASE})
    else()
      _tcq_run(${CMAKE_COMMAND} -S ${a_SOURCE_PATH} -B ${_bin} -DCMAKE_BUILD_TYPE=Debug
               -DCMAKE_INSTALL_PREFIX=${CURRENT_PACKAGES_DIR}/debug ${a_OPTIONS} ${a_OPTIONS_DEBUG})
    endif()
  endforeach()
  set_property(GLOBAL PROPERTY _tcq_vcpkg_configs ${_configs})
endfunction()

function(vcpkg_cmake_install)
  get_property(_configs GLOBAL PROPERTY _tcq_vcpkg_configs)
  foreach(_c ${_configs})
    _tcq_run(${CMAKE_COMMAND} --build ${CURRENT_BUILDTREES_DIR}/${TARGET_TRIPLET}-${_c} --target install -j2)
  endforeach()
endfunction()

function(vcpkg_cmake_config_fixup)
  cmake_parse_arguments(PARSE_ARGV 0 a "" "CONFIG_PATH;PACKAGE_NAME" "")
  if(NOT a_PACKAGE_NAME)
    set(a_PACKAGE_NAME ${PORT})
  endif()
  # The real helper moves CONFIG_PATH to share/<name> and rewrites relative
  # paths; a config already installed there needs no rewriting (all tcq needs).
  if(NOT a_CONFIG_PATH STREQUAL "share/${a_PACKAGE_NAME}")
    message(FATAL_ERROR "vcpkg-emulator: install the config to share/${a_PACKAGE_NAME} (got ${a_CONFIG_PATH})")
  endif()
  if(NOT EXISTS ${CURRENT_PACKAGES_DIR}/share/${a_PACKAGE_NAME}/${a_PACKAGE_NAME}Config.cmake)
    message(FATAL_ERROR "vcpkg-emulator: no ${a_PACKAGE_NAME}Config.cmake in ${a_CONFIG_PATH}")
  endif()
  file(REMOVE_RECURSE ${CURRENT_PACKAGES_DIR}/debug/share)
endfunction()

function(vcpkg_install_copyright)
  cmake_parse_arguments(PARSE_ARGV 0 a "" "" "FILE_LIST")
  set(_text "")
  foreach(_f ${a_FILE_LIST})
    file(READ ${_f} _t)
    string(APPEND _text "${_t}")
  endforeach()
  file(WRITE ${CURRENT_PACKAGES_DIR}/share/${PORT}/copyright "${_text}")
endfunction()

message(STATUS "vcpkg-emulator: ${PORT} ${VERSION} features ${FEATURES}")
include(${_port_dir}/portfile.cmake)

# vcpkg's post-build checks that apply to a header-only port.
foreach(_f include/tcq/tcq.hpp share/${PORT}/copyright share/${PORT}/usage
           share/${PORT}/${PORT}Config.cmake share/${PORT}/${PORT}ConfigVersion.cmake)
  if(NOT EXISTS ${CURRENT_PACKAGES_DIR}/${_f})
    message(FATAL_ERROR "vcpkg-emulator: package lacks ${_f}")
  endif()
endforeach()
foreach(_d lib bin debug)
  if(EXISTS ${CURRENT_PACKAGES_DIR}/${_d})
    message(FATAL_ERROR "vcpkg-emulator: header-only package contains ${_d}/")
  endif()
endforeach()

# A downstream project against the package, exactly as vcpkg's toolchain
# would point it there (CMAKE_PREFIX_PATH).
_tcq_run(${CMAKE_COMMAND} -DMODE=find_package -DSRC=${SRC} -DPREFIX=${CURRENT_PACKAGES_DIR}
         -DWORK=${WORK}/consumer -P ${SRC}/tests/consumer/run.cmake)
