# The layering of include/tcq (docs/architecture.md): a header may include
# headers of its own layer or of a layer below it, never above. Fails naming
# every include that points upward.
#   cmake -DSRC=<repo> -P layering.cmake
# Layers, bottom to top; reference/ (scalar twins) and cuda/ sit on top of
# the kernels they mirror, mpi/ (tcq::mpi) on top of the pipeline, and no
# library layer includes any of them.
set(_order core quant gptq saliency select pack io pipeline)
set(_rank_core 0)
set(_rank_quant 1)
set(_rank_gptq 2)
set(_rank_saliency 3)
set(_rank_select 4)
set(_rank_pack 5)
set(_rank_io 6)
set(_rank_pipeline 7)
set(_rank_reference 8)  # may include core … io
set(_rank_cuda 8)       # may include core … pack
set(_rank_mpi 8)        # tcq::mpi: may include every layer
set(_rank_tokenizer 8)  # tcq::tokenizer: text to ids, beside the pipeline
set(_max_tokenizer 0)   # needs core only
set(_max_reference 6)
set(_max_cuda 5)
file(GLOB_RECURSE _hdrs LIST_DIRECTORIES false ${SRC}/include/tcq/*.hpp ${SRC}/include/tcq/*.cuh)
set(_bad "")
set(_edges 0)
foreach(_h ${_hdrs})
  file(RELATIVE_PATH _rel ${SRC}/include/tcq ${_h})
  if(NOT _rel MATCHES "/")
    continue()  # tcq.hpp (umbrella) and version.hpp
  endif()
  string(REGEX MATCH "^[^/]+" _layer "${_rel}")
  if(NOT DEFINED _rank_${_layer})
    string(APPEND _bad "\n  ${_rel}: layer '${_layer}' is not in the order (docs/architecture.md)")
    continue()
  endif()
  set(_limit ${_rank_${_layer}})
  if(DEFINED _max_${_layer})
    set(_limit ${_max_${_layer}})
  endif()
  file(STRINGS ${_h} _incs REGEX "^#include \"tcq/")
  foreach(_i ${_incs})
    string(REGEX REPLACE "^#include \"tcq/([^\"]+)\".*" "\\1" _target "${_i}")
    math(EXPR _edges "${_edges} + 1")
    if(NOT _target MATCHES "/")
      continue()  # version.hpp
    endif()
    string(REGEX MATCH "^[^/]+" _tl "${_target}")
    if(NOT DEFINED _rank_${_tl})
      string(APPEND _bad "\n  ${_rel} includes ${_target}: unknown layer '${_tl}'")
    elseif(_tl STREQUAL _layer)
      continue()
    elseif(_rank_${_tl} GREATER _limit)
      string(APPEND _bad "\n  ${_rel} (${_layer}) includes ${_target} (${_tl}): a layer above it")
    endif()
  endforeach()
endforeach()
if(_bad)
  message(FATAL_ERROR "include/tcq layering violated (order: ${_order}):${_bad}")
endif()
list(LENGTH _hdrs _n)
message(STATUS "layering: ${_n} headers, ${_edges} includes, all downward (order: ${_order})")
