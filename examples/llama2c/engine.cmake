# The llama2c engine as an INTERFACE target. Included from tests/llama2c.cmake
# (tests are configured before examples) and from examples/llama2c.
include_guard(GLOBAL)
add_library(l2c_engine INTERFACE)
target_include_directories(l2c_engine INTERFACE ${CMAKE_CURRENT_LIST_DIR})
# llama/text.hpp (the byte-text helpers, shared with the llama engine) needs nlohmann-json.
target_link_libraries(l2c_engine INTERFACE tcq_project_flags tcq::io)
# The engine parallelizes over sequences itself; Eigen's own OpenMP GEMM
# threads would oversubscribe the cores (model.hpp checks this is set).
target_compile_definitions(l2c_engine INTERFACE EIGEN_DONT_PARALLELIZE)

# bench/ is configured between tests/ and examples/: link its engine
# benchmark once every directory has been read.
function(_l2c_link_late)
  if(TARGET bench_llama2c)
    target_link_libraries(bench_llama2c PRIVATE l2c_engine)
  endif()
endfunction()
cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL _l2c_link_late)
