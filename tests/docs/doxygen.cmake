cmake_minimum_required(VERSION 3.20)
# Runs Doxygen over the public API with docs/Doxyfile and fails on any warning.
#   cmake -DDOXYGEN=<exe> -DSRC=<tcq source> -DOUT=<output dir> -P doxygen.cmake
file(REMOVE_RECURSE "${OUT}")
file(MAKE_DIRECTORY "${OUT}")
file(WRITE "${OUT}/Doxyfile" "@INCLUDE = ${SRC}/docs/Doxyfile\nOUTPUT_DIRECTORY = ${OUT}\n")
execute_process(COMMAND "${DOXYGEN}" "${OUT}/Doxyfile" WORKING_DIRECTORY "${SRC}"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(STRIP "${out}${err}" log)
if(rc OR NOT log STREQUAL "")
  message("${log}")
  message(FATAL_ERROR "doxygen: warnings or errors (exit ${rc}); the API reference must build cleanly")
endif()
message(STATUS "doxygen: clean, HTML in ${OUT}/html")
