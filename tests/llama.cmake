# Tests of the Llama-family engine (test_llama*.cpp) link the engine; those
# that compare with the llama2.c engine link that one too.
include(${PROJECT_SOURCE_DIR}/examples/llama/engine.cmake)
file(GLOB _llama_tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/test_llama_*.cpp)
foreach(_src ${_llama_tests})
  get_filename_component(_name ${_src} NAME_WE)
  target_link_libraries(${_name} PRIVATE tcq_llama_engine)
endforeach()
# The HF test compares the fixture with the llama2c engine.
if(TARGET test_llama_hf)
  include(${PROJECT_SOURCE_DIR}/examples/llama2c/engine.cmake)
  target_link_libraries(test_llama_hf PRIVATE l2c_engine)
endif()

function(_llama_cli_tests)
  if(NOT TARGET tcq_cli)
    return()
  endif()
  add_test(NAME llama_hf_e2e
    COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:tcq_cli> -DFX=${PROJECT_SOURCE_DIR}/examples/fixture
            -DWORK=${CMAKE_CURRENT_BINARY_DIR}/llama_hf_e2e -P ${PROJECT_SOURCE_DIR}/tests/scripts/llama_hf_e2e.cmake)
endfunction()
cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL _llama_cli_tests)
