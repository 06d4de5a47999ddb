# Packaging: the vcpkg port and the Conan recipe, run offline (neither
# registry is reachable) through their real recipe files, each installing
# into a staging prefix and then building and running tests/consumer on it.
set(_tcq_pkg_work ${CMAKE_CURRENT_BINARY_DIR}/packaging)
set(_tcq_pkg_io "")
if(TARGET tcq_io)
  set(_tcq_pkg_io io)  # also exercise the io feature when nlohmann_json is here
endif()
add_test(NAME package_vcpkg
  COMMAND ${CMAKE_COMMAND} -DSRC=${PROJECT_SOURCE_DIR} -DWORK=${_tcq_pkg_work}/vcpkg
          -DFEATURES=${_tcq_pkg_io} -P ${CMAKE_CURRENT_SOURCE_DIR}/packaging/vcpkg_port.cmake)
set_tests_properties(package_vcpkg PROPERTIES TIMEOUT 600 LABELS integration)

find_package(Python3 COMPONENTS Interpreter QUIET)
if(Python3_Interpreter_FOUND)
  add_test(NAME package_conan
    COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/packaging/conan_dryrun.py
            --src ${PROJECT_SOURCE_DIR} --work ${_tcq_pkg_work}/conan $<$<BOOL:${_tcq_pkg_io}>:--io>)
  set_tests_properties(package_conan PROPERTIES TIMEOUT 600 LABELS integration)
else()
  message(STATUS "tcq: no python3, test package_conan skipped")
endif()

# The lead's consumer tests (tests/consumer.cmake, included before this file)
# are integration tests too: CI runs them once, in the gcc stage.
foreach(_t consumer_find_package consumer_add_subdirectory)
  if(TEST ${_t})
    set_tests_properties(${_t} PROPERTIES LABELS integration)
  endif()
endforeach()
