# tests/test_cli_tokenize.cpp runs `tcq tokenize` (target tcq_cli) on the
# tokenizer test vectors; deferred like tests/cli.cmake so the order of
# add_subdirectory(tests) and add_subdirectory(tools) does not matter.
function(_tcq_cli_tokenize_test_setup)
  if(NOT TARGET test_cli_tokenize OR NOT TARGET tcq_cli)
    return()
  endif()
  target_compile_definitions(test_cli_tokenize PRIVATE TCQ_CLI_PATH="$<TARGET_FILE:tcq_cli>")
  add_dependencies(test_cli_tokenize tcq_cli)
endfunction()
cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL _tcq_cli_tokenize_test_setup)
