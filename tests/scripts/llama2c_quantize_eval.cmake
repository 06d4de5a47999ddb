# ctest driver: tcq-llama2c quantize writes a tcq file; eval --tcq reads it back.
#   -DCLI=<tcq-llama2c> -DFX=<fixture dir> -DWORK=<scratch dir>
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
execute_process(COMMAND ${CLI} quantize --model ${FX}/model/model.bin --calib ${FX}/data/arith.calib.txt
                        --calib ${FX}/data/gsm8k.calib.txt --samples 8 --method tacq --bits 3 --out ${WORK}/m.tcq --threads 2
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc OR NOT out MATCHES "TaCQ at 3 bits: 3\\.2[0-9]+ bits/weight")
  message(FATAL_ERROR "quantize failed (${rc}):\n${out}\n${err}")
endif()
execute_process(COMMAND ${CLI} eval --model ${FX}/model/model.bin --tcq ${WORK}/m.tcq
                        --task shakespeare=${FX}/data/shakespeare.valid.txt --threads 2
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
# 3-bit TaCQ stays within a few hundredths of the fp32 loss 1.4450
if(rc OR NOT out MATCHES "\\| shakespeare \\| 64 \\| 1\\.(4[4-9]|5[0-2])")
  message(FATAL_ERROR "eval --tcq failed (${rc}):\n${out}\n${err}")
endif()
# a corrupt tcq file is rejected with a clear error
file(WRITE ${WORK}/bad.tcq "not a tcq file at all")
execute_process(COMMAND ${CLI} eval --model ${FX}/model/model.bin --tcq ${WORK}/bad.tcq --task s=${FX}/data/shakespeare.valid.txt
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 1 OR NOT err MATCHES "error")
  message(FATAL_ERROR "corrupt tcq file not rejected (${rc}):\n${err}")
endif()
message(STATUS "quantize/eval round trip ok")
