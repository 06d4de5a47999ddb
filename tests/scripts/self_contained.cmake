# Fails when a file of the repository points outside it: a user's clone has
# no ../shared and no design brief, so code and docs cite docs/algorithms.md.
#   cmake -DSRC=<repo> -P self_contained.cmake
file(GLOB_RECURSE _files LIST_DIRECTORIES false
  ${SRC}/include/* ${SRC}/tools/* ${SRC}/examples/*.hpp ${SRC}/examples/*.cpp ${SRC}/examples/*.md
  ${SRC}/examples/*.txt ${SRC}/tests/*.cpp ${SRC}/tests/*.hpp ${SRC}/bench/* ${SRC}/docs/*.md
  ${SRC}/scripts/* ${SRC}/cmake/* ${SRC}/README.md ${SRC}/CMakeLists.txt ${SRC}/.ci/run)
set(_bad "")
foreach(_f ${_files})
  if(_f MATCHES "/tests/scripts/self_contained.cmake$" OR _f MATCHES "/examples/fixture/data/")
    continue()
  endif()
  file(STRINGS "${_f}" _hits ENCODING UTF-8 REGEX "DESIGN(\\.md)? §|\\.\\./shared|/work/shared")
  if(_hits)
    list(GET _hits 0 _first)
    string(APPEND _bad "\n  ${_f}: ${_first}")
  endif()
endforeach()
if(_bad)
  message(FATAL_ERROR "files that point outside the repository:${_bad}")
endif()
list(LENGTH _files _n)
message(STATUS "self_contained: ${_n} files, none points outside the repository")
