# tcq::mpi tests, run through mpiexec with np = 1, 2, 3 on shared memory only
# (btl self,vader). Label "mpi"; registered only when MPI was found, so a build
# without MPI skips them cleanly (a notice says so).
if(NOT TARGET tcq_mpi OR NOT MPIEXEC_EXECUTABLE)
  message(STATUS "tcq: MPI not found, tcq::mpi tests skipped")
  return()
endif()
add_executable(test_mpi ${CMAKE_CURRENT_SOURCE_DIR}/mpi/main.cpp ${CMAKE_CURRENT_SOURCE_DIR}/mpi/test_mpi.cpp)
target_link_libraries(test_mpi PRIVATE tcq_project_flags tcq_mpi doctest::doctest)
add_executable(mpi_failure ${CMAKE_CURRENT_SOURCE_DIR}/mpi/failure.cpp)
target_link_libraries(mpi_failure PRIVATE tcq_project_flags tcq_mpi)
# root in containers; more ranks than cores; no network transports.
# CACHE INTERNAL: the deferred CLI test below runs in the top directory's scope.
set(TCQ_MPIEXEC ${MPIEXEC_EXECUTABLE} --allow-run-as-root --oversubscribe --mca btl self,vader CACHE INTERNAL "")
set(_tcq_mpi_env OMPI_MCA_rmaps_base_oversubscribe=1)
if(TCQ_SANITIZE)
  list(APPEND _tcq_mpi_env ASAN_OPTIONS=detect_leaks=0)  # OpenMPI's own allocations
endif()
set(_tcq_mpi_env "${_tcq_mpi_env}" CACHE INTERNAL "")
foreach(np 1 2 3)
  add_test(NAME mpi_np${np} COMMAND ${TCQ_MPIEXEC} ${MPIEXEC_NUMPROC_FLAG} ${np} $<TARGET_FILE:test_mpi>)
  set_tests_properties(mpi_np${np} PROPERTIES LABELS mpi TIMEOUT 60 ENVIRONMENT "${_tcq_mpi_env}")
endforeach()
foreach(case "throw;rank 1 failed: phase 'gradients': injected failure"
             "nan;rank 1 failed: phase 'gradients': layers.0.wq .sample 0.: non-finite gradient nan"
             "escape;error outside a checked phase, aborting the job: injected failure outside a phase")
  list(GET case 0 mode)
  list(GET case 1 expect)
  set(all ON)
  if(mode STREQUAL "escape")
    set(all OFF)
  endif()
  add_test(NAME mpi_failure_${mode}
    COMMAND ${CMAKE_COMMAND} "-DCMD=${TCQ_MPIEXEC};${MPIEXEC_NUMPROC_FLAG};3;$<TARGET_FILE:mpi_failure>;${mode};1"
            -DNP=3 "-DEXPECT=${expect}" -DALL=${all} -P ${CMAKE_CURRENT_SOURCE_DIR}/mpi/expect_failure.cmake)
  set_tests_properties(mpi_failure_${mode} PROPERTIES LABELS mpi TIMEOUT 90 ENVIRONMENT "${_tcq_mpi_env}")
endforeach()
# The data-parallel CLI, once examples/ has defined it.
function(_tcq_mpi_cli_tests)
  if(NOT TARGET tcq_cli)
    return()
  endif()
  add_test(NAME mpi_quantize_payload
    COMMAND ${CMAKE_COMMAND} "-DMPIEXEC=${TCQ_MPIEXEC}" -DNPFLAG=${MPIEXEC_NUMPROC_FLAG}
            -DCLI=$<TARGET_FILE:tcq_cli> -DFX=${PROJECT_SOURCE_DIR}/examples/fixture
            -DWORK=${PROJECT_BINARY_DIR}/tests/mpi_quantize -P ${PROJECT_SOURCE_DIR}/tests/mpi/quantize_payload.cmake)
  set_tests_properties(mpi_quantize_payload PROPERTIES LABELS "mpi;integration" TIMEOUT 300
                       ENVIRONMENT "${_tcq_mpi_env}")
endfunction()
cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL _tcq_mpi_cli_tests)
