# Data-parallel `tcq quantize` on the fixture with np = 1, 2, 3 and without
# mpirun: the tcq files (rank 0's) must be byte-identical.
#   -DMPIEXEC="mpiexec;flags..." -DNPFLAG=-n -DCLI=<tcq> -DFX=<fixture dir> -DWORK=<dir>
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
set(args quantize --model ${FX}/model/model.bin --calib ${FX}/data/arith.calib.txt --samples 6 --sample-chunk 2
         --bits 2 --rtn-contrast --threads 1)
execute_process(COMMAND ${CLI} ${args} -o ${WORK}/plain.tcq RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err
                TIMEOUT 120)
if(NOT rc STREQUAL "0")
  message(FATAL_ERROR "tcq quantize without mpirun failed (${rc}):\n${out}${err}")
endif()
foreach(np 1 2 3)
  execute_process(COMMAND ${MPIEXEC} ${NPFLAG} ${np} ${CLI} ${args} -o ${WORK}/np${np}.tcq
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 120)
  message(STATUS "np ${np}: ${out}")
  if(NOT rc STREQUAL "0")
    message(FATAL_ERROR "np ${np} failed (${rc}):\n${out}${err}")
  endif()
endforeach()
foreach(np 1 2 3)
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${WORK}/plain.tcq ${WORK}/np${np}.tcq RESULT_VARIABLE diff)
  if(diff)
    message(FATAL_ERROR "the tcq file of np ${np} differs from the run without mpirun")
  endif()
endforeach()
# Only quantize runs on several ranks; the message comes once, from rank 0.
execute_process(COMMAND ${MPIEXEC} ${NPFLAG} 2 ${CLI} eval --model ${FX}/model/model.bin --task a=${FX}/data/arith.valid.txt
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
if(rc STREQUAL "0" OR NOT err MATCHES "only 'quantize' runs on several MPI ranks")
  message(FATAL_ERROR "eval under mpirun -np 2 not refused (${rc}):\n${err}")
endif()
