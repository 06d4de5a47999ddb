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
  add_test(NAME llama2c_cli_usage COMMAND tcq-llama2c frobnicate)
  set_tests_properties(llama2c_cli_usage PROPERTIES WILL_FAIL TRUE)
endfunction()
cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL _l2c_cli_tests)
