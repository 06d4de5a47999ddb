# Runs a failing MPI job and checks the failure behaviour:
#   -DCMD="mpiexec;...;mpi_failure;mode;F" -DNP=<ranks> -DEXPECT=<regex per rank> [-DALL=ON]
# The job must exit non-zero; with ALL, every rank must print EXPECT (each rank
# prints "tcq: rank r: ..."); else at least one line must match.
execute_process(COMMAND ${CMD} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
set(all "${out}${err}")
message(STATUS "exit status: ${rc}\n${all}")
if(rc STREQUAL "0")
  message(FATAL_ERROR "the job exited 0 although a rank failed")
endif()
if(rc MATCHES "timeout")
  message(FATAL_ERROR "the job hung (killed after 60 s)")
endif()
if(ALL)
  math(EXPR last "${NP} - 1")
  foreach(r RANGE 0 ${last})
    if(NOT all MATCHES "tcq: rank ${r}: error: ${EXPECT}")
      message(FATAL_ERROR "rank ${r} did not report '${EXPECT}'")
    endif()
  endforeach()
elseif(NOT all MATCHES "${EXPECT}")
  message(FATAL_ERROR "no line matches '${EXPECT}'")
endif()
