# `cuda` tests: launch every CUDA kernel and compare with the CPU code
# (tests/cuda/test_cuda.cpp, through cmake/cuda_check's host runner). Without
# a device they exit 77 and ctest reports them skipped, never passed.
# scripts/cuda-check.sh builds and runs exactly these plus the CUDA benchmark.
if(TCQ_ENABLE_CUDA)
  add_executable(test_cuda ${CMAKE_CURRENT_SOURCE_DIR}/cuda/test_cuda.cpp)
  target_include_directories(test_cuda PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(test_cuda PRIVATE tcq_test_main tcq_project_flags doctest::doctest tcq_cuda_runner)
  add_test(NAME test_cuda COMMAND test_cuda)
  set_tests_properties(test_cuda PROPERTIES LABELS cuda SKIP_RETURN_CODE 77)
endif()
