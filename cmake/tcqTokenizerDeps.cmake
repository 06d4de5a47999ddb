# PCRE2 (8-bit) and utf8proc for tcq::tokenizer, as the imported targets
# tcq_dep::pcre2 and tcq_dep::utf8proc. pkg-config gives the paths when it is
# there; find_path/find_library find them either way. Sets
# TCQ_TOKENIZER_DEPS_FOUND. Used by the top-level CMakeLists.txt and by the
# installed tcqConfig.cmake, so the exported tcq::tokenizer resolves the same
# way in a consumer.
find_package(PkgConfig QUIET)
function(_tcq_tokenizer_dep name pc header)
  if(TARGET tcq_dep::${name})
    return()
  endif()
  if(PKG_CONFIG_FOUND)
    pkg_check_modules(_tcq_pc_${name} QUIET ${pc})
  endif()
  find_path(TCQ_${name}_INCLUDE_DIR ${header} HINTS ${_tcq_pc_${name}_INCLUDE_DIRS})
  find_library(TCQ_${name}_LIBRARY NAMES ${ARGN} HINTS ${_tcq_pc_${name}_LIBRARY_DIRS})
  if(TCQ_${name}_INCLUDE_DIR AND TCQ_${name}_LIBRARY)
    add_library(tcq_dep::${name} INTERFACE IMPORTED)
    set_target_properties(tcq_dep::${name} PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${TCQ_${name}_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES "${TCQ_${name}_LIBRARY}")
  endif()
endfunction()
_tcq_tokenizer_dep(pcre2 libpcre2-8 pcre2.h pcre2-8)
_tcq_tokenizer_dep(utf8proc libutf8proc utf8proc.h utf8proc)
if(TARGET tcq_dep::pcre2 AND TARGET tcq_dep::utf8proc)
  set(TCQ_TOKENIZER_DEPS_FOUND TRUE)
else()
  set(TCQ_TOKENIZER_DEPS_FOUND FALSE)
endif()
