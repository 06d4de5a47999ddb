# Data-parallel tcq-llama2c-mpi quantize on the fixture with np = 1, 2, 3:
# the tcq files rank 0 writes must be byte-identical.
#   -DMPIEXEC="mpiexec;flags..." -DNPFLAG=-n -DCLI=<tcq-llama2c-mpi> -DFX=<fixture dir> -DWORK=<dir>
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
foreach(np 1 2 3)
  execute_process(COMMAND ${MPIEXEC} ${NPFLAG} ${np} ${CLI} quantize --model ${FX}/model/model.bin
                          --calib ${FX}/data/arith.calib.txt --samples 6 --sample-chunk 2 --bits 2 --rtn-contrast
                          --threads 1 --out ${WORK}/np${np}.tcq
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120)
  message(STATUS "np ${np}: ${out}")
  if(NOT rc STREQUAL "0")
    message(FATAL_ERROR "np ${np} failed (${rc}):\n${out}${err}")
  endif()
endforeach()
foreach(np 2 3)
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${WORK}/np1.tcq ${WORK}/np${np}.tcq RESULT_VARIABLE diff)
  if(diff)
    message(FATAL_ERROR "the tcq file of np ${np} differs from np 1")
  endif()
endforeach()
