# The llama2c engine tests link the engine target; CLI smoke runs are
# registered once the examples directory has defined tcq-llama2c.
include(${PROJECT_SOURCE_DIR}/examples/llama2c/engine.cmake)
file(GLOB _l2c_tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/test_llama2c*.cpp)
foreach(_src ${_l2c_tests})
  get_filename_component(_name ${_src} NAME_WE)
  target_link_libraries(${_name} PRIVATE l2c_engine)
endforeach()

function(_l2c_cli_tests)
  if(NOT TARGET tcq-llama2c)
    return()
  endif()
  set(_fx ${PROJECT_SOURCE_DIR}/examples/fixture)
  add_test(NAME llama2c_cli_eval
    COMMAND tcq-llama2c eval --model ${_fx}/model/model.bin
            --task shakespeare=${_fx}/data/shakespeare.valid.txt --threads 2)
  set_tests_properties(llama2c_cli_eval PROPERTIES PASS_REGULAR_EXPRESSION "shakespeare.*1\\.44[45]")
  add_test(NAME llama2c_cli_generate
    COMMAND tcq-llama2c generate --model ${_fx}/model/model.bin --prompt "123+456=" --steps 8)
  set_tests_properties(llama2c_cli_generate PROPERTIES PASS_REGULAR_EXPRESSION "579")
  add_test(NAME llama2c_cli_bad_model
    COMMAND tcq-llama2c eval --model ${_fx}/data/arith.valid.txt --task a=${_fx}/data/arith.valid.txt)
  set_tests_properties(llama2c_cli_bad_model PROPERTIES WILL_FAIL TRUE)
  # The demo's pipeline end to end, reduced for CI: every method, small calibration and evaluation.
  add_test(NAME llama2c_e2e_compare
    COMMAND tcq-llama2c compare --model ${_fx}/model/model.bin --calib ${_fx}/data/arith.calib.txt
            --samples 16 --methods rtn,gptq,spqr,tacq --bits 2 --eval-windows 4 --eval-problems 20
            --task arith=${_fx}/data/arith.valid.txt --task gsm8k=${_fx}/data/gsm8k.valid.txt --threads 2)
  set_tests_properties(llama2c_e2e_compare PROPERTIES
    PASS_REGULAR_EXPRESSION "\\| TaCQ \\| 2 \\+ 0\\.3[0-9]% \\| 2\\.20[0-9]+ \\| 1\\.[0-9]+ \\| 1\\.[0-9]+ \\| 0\\.[0-9]+ \\|")
  # compare over two calibration seeds: mean ± sd, paired rows, per-seed JSON, bad --seeds
  add_test(NAME llama2c_e2e_compare_seeds
    COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:tcq-llama2c> -DFX=${_fx} -DWORK=${CMAKE_CURRENT_BINARY_DIR}/l2c_seeds
            -P ${PROJECT_SOURCE_DIR}/tests/scripts/llama2c_compare_seeds.cmake)
  # quantize → tcq file → eval from the file
  add_test(NAME llama2c_e2e_quantize_eval
    COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:tcq-llama2c> -DFX=${_fx} -DWORK=${CMAKE_CURRENT_BINARY_DIR}/l2c_e2e
            -P ${PROJECT_SOURCE_DIR}/tests/scripts/llama2c_quantize_eval.cmake)
  add_test(NAME llama2c_cli_usage COMMAND tcq-llama2c frobnicate)
  set_tests_properties(llama2c_cli_usage PROPERTIES WILL_FAIL TRUE)
endfunction()
cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL _l2c_cli_tests)
