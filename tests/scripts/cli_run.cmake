# run(EXPECT_RC ARGS...): runs ${CLI} ARGS, fails unless it exits with
# EXPECT_RC; leaves its stdout in `out` and stderr in `err`. Included by the
# end-to-end drivers of the `tcq` tool.
function(run expect_rc)
  execute_process(COMMAND ${CLI} ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL expect_rc)
    message(FATAL_ERROR "tcq ${ARGN}: exit ${rc}, expected ${expect_rc}:\n${out}\n${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
  set(err "${err}" PARENT_SCOPE)
endfunction()
