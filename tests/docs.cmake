# Documentation checks.
#  docs_quickstart : the ```cpp blocks of docs/quickstart.md, concatenated,
#                    compiled with the project's flags (-Werror in CI) and run.
#  docs_doxygen    : Doxygen over the public API (docs/Doxyfile); any warning
#                    fails. Registered only when doxygen is installed.
#  docs_perf_report: scripts/perf_report.py on stored Google Benchmark JSON
#                    (bench_quant; bench_pack: named baselines, G-unit counters).
set(_tcq_qs_cpp ${CMAKE_CURRENT_BINARY_DIR}/docs/quickstart.cpp)
add_custom_command(OUTPUT ${_tcq_qs_cpp}
  COMMAND ${CMAKE_COMMAND} -DIN=docs/quickstart.md -DOUT=${_tcq_qs_cpp}
          -P ${CMAKE_CURRENT_SOURCE_DIR}/docs/extract_cpp.cmake
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
  DEPENDS ${PROJECT_SOURCE_DIR}/docs/quickstart.md ${CMAKE_CURRENT_SOURCE_DIR}/docs/extract_cpp.cmake
  COMMENT "Extracting the code of docs/quickstart.md")
add_executable(docs_quickstart ${_tcq_qs_cpp})
target_link_libraries(docs_quickstart PRIVATE tcq_project_flags)
add_test(NAME docs_quickstart COMMAND docs_quickstart)

find_program(TCQ_DOXYGEN doxygen)
if(TCQ_DOXYGEN)
  add_test(NAME docs_doxygen
    COMMAND ${CMAKE_COMMAND} -DDOXYGEN=${TCQ_DOXYGEN} -DSRC=${PROJECT_SOURCE_DIR}
            -DOUT=${CMAKE_CURRENT_BINARY_DIR}/docs/api -P ${CMAKE_CURRENT_SOURCE_DIR}/docs/doxygen.cmake)
  set_tests_properties(docs_doxygen PROPERTIES TIMEOUT 300 LABELS integration)
else()
  message(STATUS "tcq: doxygen not found, test docs_doxygen skipped (apt-get install doxygen)")
endif()

find_package(Python3 COMPONENTS Interpreter QUIET)
if(Python3_Interpreter_FOUND)
  add_test(NAME docs_perf_report
    COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/scripts/perf_report.py --check
            ${CMAKE_CURRENT_SOURCE_DIR}/docs/bench_sample.json ${CMAKE_CURRENT_SOURCE_DIR}/docs/bench_sample_pack.json
            -o ${CMAKE_CURRENT_BINARY_DIR}/docs/performance.md)
  set_tests_properties(docs_perf_report PROPERTIES LABELS integration)
endif()

# No file points outside the repository (../shared, the design brief).
add_test(NAME repo_self_contained
  COMMAND ${CMAKE_COMMAND} -DSRC=${PROJECT_SOURCE_DIR} -P ${CMAKE_CURRENT_SOURCE_DIR}/scripts/self_contained.cmake)
set_tests_properties(repo_self_contained PROPERTIES LABELS integration)

# include/tcq headers include only their own layer or lower ones (docs/architecture.md).
add_test(NAME layering
  COMMAND ${CMAKE_COMMAND} -DSRC=${PROJECT_SOURCE_DIR} -P ${CMAKE_CURRENT_SOURCE_DIR}/scripts/layering.cmake)
set_tests_properties(layering PROPERTIES LABELS integration)
