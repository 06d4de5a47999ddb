# Debian's xsimd package exports INTERFACE_LINK_LIBRARIES "xtl" although xsimd
# needs no xtl library (and xtl is header-only). Drop the dangling name unless
# a real xtl target exists, so consumers link without libxtl-dev.
if(TARGET xsimd AND NOT TARGET xtl)
  get_target_property(_tcq_xsimd_libs xsimd INTERFACE_LINK_LIBRARIES)
  if(_tcq_xsimd_libs)
    list(REMOVE_ITEM _tcq_xsimd_libs xtl)
    set_target_properties(xsimd PROPERTIES INTERFACE_LINK_LIBRARIES "${_tcq_xsimd_libs}")
  endif()
endif()
