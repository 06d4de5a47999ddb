# Two downstream builds: against a staged install, and via add_subdirectory.
foreach(_mode find_package add_subdirectory)
  add_test(NAME consumer_${_mode}
    COMMAND ${CMAKE_COMMAND} -DMODE=${_mode} -DSRC=${PROJECT_SOURCE_DIR} -DBIN=${PROJECT_BINARY_DIR}
            -DWORK=${CMAKE_CURRENT_BINARY_DIR}/consumer_${_mode} -DWITH_MPI=${TCQ_HAS_MPI} -P ${CMAKE_CURRENT_SOURCE_DIR}/consumer/run.cmake)
  set_tests_properties(consumer_${_mode} PROPERTIES TIMEOUT 600)
endforeach()
