# Flags for the project's own targets (tests, benchmarks, examples), never
# for consumers of tcq::tcq.
add_library(tcq_project_flags INTERFACE)
target_link_libraries(tcq_project_flags INTERFACE tcq::tcq)
set(CMAKE_CXX_EXTENSIONS OFF)
target_compile_options(tcq_project_flags INTERFACE
  $<$<OR:$<CXX_COMPILER_ID:GNU>,$<CXX_COMPILER_ID:Clang>>:-Wall -Wextra>)
# GCC 12 flags its own _mm512_undefined_* intrinsics (self-initialised) as
# uninitialised whenever xsimd inlines them; clang and the sanitizer build keep
# the check meaningful.
target_compile_options(tcq_project_flags INTERFACE
  $<$<CXX_COMPILER_ID:GNU>:-Wno-uninitialized -Wno-maybe-uninitialized>)
if(TCQ_WERROR)
  target_compile_options(tcq_project_flags INTERFACE -Werror)
endif()
if(TCQ_NATIVE)
  target_compile_options(tcq_project_flags INTERFACE -march=native)
endif()
# UBSan's object-size check adds nothing under ASan, which checks every access
# exactly; with clang it made the batched grid fit (quant/batched_fit.hpp) take
# 36 s instead of 2.7 s to optimize, in every test that links GPTQ.
if(TCQ_SANITIZE)
  target_compile_options(tcq_project_flags INTERFACE -fsanitize=address,undefined -fno-sanitize=object-size
                         -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(tcq_project_flags INTERFACE -fsanitize=address,undefined)
endif()
if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "Build type" FORCE)
endif()
