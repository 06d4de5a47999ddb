# Tests of the Llama-family engine (test_llama*.cpp) link the engine; the
# model-level `tcq` commands run end to end on the fixture.
include(${PROJECT_SOURCE_DIR}/examples/llama/engine.cmake)
# The test_llama_*.cpp files instantiate the same engine, pipeline and GPTQ
# code, so they build as one executable from one unity translation unit:
# two of them compiled in 94 s together against 158 s apart (gcc -O3). Each
# file keeps its own ctest entry through doctest's --source-file filter, and
# an entry that matches no test case fails.
file(GLOB _llama_tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/test_llama_*.cpp)
add_executable(test_llama ${_llama_tests})
set_target_properties(test_llama PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 0)
target_link_libraries(test_llama PRIVATE tcq_test_main tcq_project_flags doctest::doctest tcq_llama_engine)
target_compile_definitions(test_llama PRIVATE TCQ_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
foreach(_src ${_llama_tests})
  get_filename_component(_name ${_src} NAME_WE)
  get_filename_component(_file ${_src} NAME)
  add_test(NAME ${_name} COMMAND test_llama --source-file=*/${_file})
  set_tests_properties(${_name} PROPERTIES SKIP_RETURN_CODE 77 FAIL_REGULAR_EXPRESSION "test cases: +0 \\|")
endforeach()

function(_llama_cli_tests)
  if(NOT TARGET tcq_cli)
    return()
  endif()
  set(_fx ${PROJECT_SOURCE_DIR}/examples/fixture)
  add_test(NAME model_cli_eval
    COMMAND tcq_cli eval --model ${_fx}/model/model.bin --task shakespeare=${_fx}/data/shakespeare.valid.txt --threads 2)
  set_tests_properties(model_cli_eval PROPERTIES PASS_REGULAR_EXPRESSION "shakespeare \\| 64 \\| 1\\.44[45]")
  add_test(NAME model_cli_generate
    COMMAND tcq_cli generate --model ${_fx}/model/model.bin --prompt "123+456=" --steps 8)
  set_tests_properties(model_cli_generate PROPERTIES PASS_REGULAR_EXPRESSION "123\\+456=579")
  add_test(NAME model_cli_bad_model
    COMMAND tcq_cli eval --model ${_fx}/data/arith.valid.txt --task a=${_fx}/data/arith.valid.txt)
  set_tests_properties(model_cli_bad_model PROPERTIES WILL_FAIL TRUE)
  # The demo's comparison end to end, reduced for CI: every method, small calibration and evaluation.
  add_test(NAME model_e2e_compare
    COMMAND tcq_cli compare --model ${_fx}/model/model.bin --calib ${_fx}/data/arith.calib.txt
            --samples 16 --methods rtn,gptq,spqr,tacq --bits 2 --eval-windows 4 --eval-problems 20
            --task arith=${_fx}/data/arith.valid.txt --task gsm8k=${_fx}/data/gsm8k.valid.txt --threads 2 --quiet)
  set_tests_properties(model_e2e_compare PROPERTIES
    PASS_REGULAR_EXPRESSION "\\| TaCQ \\| 2 \\+ 0\\.3[0-9]% \\| 2\\.20[0-9]+ \\| 1\\.[0-9]+ \\| 1\\.[0-9]+ \\| 0\\.[0-9]+ \\|")
  add_test(NAME model_e2e_compare_seeds
    COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:tcq_cli> -DFX=${_fx} -DWORK=${CMAKE_CURRENT_BINARY_DIR}/model_seeds
            -P ${PROJECT_SOURCE_DIR}/tests/scripts/model_compare_seeds.cmake)
  add_test(NAME model_e2e_answer_span
    COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:tcq_cli> -DFX=${_fx} -DWORK=${CMAKE_CURRENT_BINARY_DIR}/model_answer
            -P ${PROJECT_SOURCE_DIR}/tests/scripts/model_answer_span.cmake)
  # The statistics and the answer spans' engine code run at any size (and in
  # the unit tests): the sanitizer stage skips these three (-LE integration).
  set_tests_properties(model_e2e_compare model_e2e_compare_seeds model_e2e_answer_span PROPERTIES LABELS integration)
  add_test(NAME model_e2e_quantize_eval
    COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:tcq_cli> -DFX=${_fx} -DWORK=${CMAKE_CURRENT_BINARY_DIR}/model_e2e
            -P ${PROJECT_SOURCE_DIR}/tests/scripts/model_quantize_eval.cmake)
  add_test(NAME llama_hf_e2e
    COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:tcq_cli> -DFX=${PROJECT_SOURCE_DIR}/examples/fixture
            -DWORK=${CMAKE_CURRENT_BINARY_DIR}/llama_hf_e2e -P ${PROJECT_SOURCE_DIR}/tests/scripts/llama_hf_e2e.cmake)
endfunction()
cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL _llama_cli_tests)
