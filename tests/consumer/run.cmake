# ctest driver: build and run tests/consumer against tcq.
#   -DMODE=find_package|add_subdirectory -DSRC=<tcq source> -DBIN=<tcq build> -DWORK=<scratch dir>
#   [-DPREFIX=<dir>]  find_package only: use this already staged install (a
#                     package manager's output, tests/packaging) instead of installing BIN.
file(REMOVE_RECURSE ${WORK})
set(_args -DTCQ_SOURCE=${SRC} -DTCQ_CONSUME=${MODE} -DCMAKE_BUILD_TYPE=Release)
if(MODE STREQUAL "find_package" AND DEFINED PREFIX)
  list(APPEND _args -DCMAKE_PREFIX_PATH=${PREFIX})
elseif(MODE STREQUAL "find_package")
  # Stage an install exactly as a package manager would.
  execute_process(COMMAND ${CMAKE_COMMAND} --install ${BIN} --prefix ${WORK}/prefix RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "install into ${WORK}/prefix failed")
  endif()
  list(APPEND _args -DCMAKE_PREFIX_PATH=${WORK}/prefix)
endif()
foreach(step configure build run)
  if(step STREQUAL "configure")
    set(cmd ${CMAKE_COMMAND} -S ${SRC}/tests/consumer -B ${WORK}/build ${_args})
  elseif(step STREQUAL "build")
    set(cmd ${CMAKE_COMMAND} --build ${WORK}/build -j2)
  else()
    set(cmd ${WORK}/build/consumer)
  endif()
  execute_process(COMMAND ${cmd} RESULT_VARIABLE rc)
  if(rc)
    message(FATAL_ERROR "consumer (${MODE}) ${step} failed: ${rc}")
  endif()
endforeach()
