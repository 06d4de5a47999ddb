# The Llama-family reference engine (tcq's reference model_adapter) as an
# INTERFACE target. Included from tests/, tools/ and examples/ (whichever is
# configured first defines it). Headers are included as "llama/....hpp".
include_guard(GLOBAL)
add_library(tcq_llama_engine INTERFACE)
target_include_directories(tcq_llama_engine INTERFACE ${CMAKE_CURRENT_LIST_DIR}/..)
target_link_libraries(tcq_llama_engine INTERFACE tcq_project_flags tcq::io)
# Parallelism is over sequences; Eigen's own OpenMP threads would oversubscribe
# the cores (model.hpp checks this is set).
target_compile_definitions(tcq_llama_engine INTERFACE EIGEN_DONT_PARALLELIZE)

# bench/ may be configured before this file is included: link late.
function(_llama_link_late)
  if(TARGET bench_llama)
    target_link_libraries(bench_llama PRIVATE tcq_llama_engine)
  endif()
endfunction()
cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL _llama_link_late)
# codec.hpp reads tokenizer.json through tcq::tokenizer.
if(TARGET tcq_tokenizer)
  target_link_libraries(tcq_llama_engine INTERFACE tcq_tokenizer)
endif()
