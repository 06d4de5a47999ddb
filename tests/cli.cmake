# tests/test_cli.cpp runs the `tcq` executable (target tcq_cli, tools/) on
# generated files. Deferred to the end of the top-level directory so the
# order of add_subdirectory(tests) and add_subdirectory(tools) does not matter.
# Without the tool (TCQ_BUILD_TOOLS=OFF) the test compiles to a skip notice.
function(_tcq_cli_test_setup)
  if(NOT TARGET test_cli OR NOT TARGET tcq_cli)
    return()
  endif()
  target_link_libraries(test_cli PRIVATE tcq::io)
  target_compile_definitions(test_cli PRIVATE TCQ_CLI_PATH="$<TARGET_FILE:tcq_cli>")
  add_dependencies(test_cli tcq_cli)
endfunction()
cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL _tcq_cli_test_setup)
