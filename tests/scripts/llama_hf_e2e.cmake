# ctest driver: the HF path end to end through the `tcq` executable.
#   -DCLI=<tcq> -DFX=<fixture dir> -DWORK=<scratch dir>
# 1. the fixture exported to HF layout evaluates to the llama2c engine's numbers;
# 2. a random tiny checkpoint of every architecture converts and evaluates;
# 3. bad input (non-empty output, index naming a missing shard) fails with the file named.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
include(${CMAKE_CURRENT_LIST_DIR}/cli_run.cmake)

run(0 convert --from-llama2c ${FX}/model/model.bin --to-hf ${WORK}/fixture --quiet)
foreach(f config.json model.safetensors tokenizer.json tokenizer_config.json)
  if(NOT EXISTS ${WORK}/fixture/${f})
    message(FATAL_ERROR "fixture export lacks ${f}")
  endif()
endforeach()
run(0 eval --model ${WORK}/fixture --task arith=${FX}/data/arith.valid.txt --windows 8 --problems 40 --threads 2)
if(NOT out MATCHES "\\| arith \\| 8 \\| 1\\.[0-9]+ \\| [0-9.]+ \\| 0\\.[0-9]+ \\([0-9]+/40\\) \\|")
  message(FATAL_ERROR "fixture eval output unexpected:\n${out}")
endif()
set(fixture_out "${out}")
run(0 eval --model ${FX}/model/model.bin --task arith=${FX}/data/arith.valid.txt --windows 8 --problems 40 --threads 2)
if(NOT out STREQUAL fixture_out)
  message(FATAL_ERROR "HF export and llama2.c file evaluate differently:\n${fixture_out}\n${out}")
endif()

foreach(shape tiny-llama tiny-mistral tiny-qwen2 tiny-qwen3)
  run(0 convert --random ${shape} --to-hf ${WORK}/${shape} --quiet)
  run(0 eval --model ${WORK}/${shape} --task s=${FX}/data/shakespeare.valid.txt --windows 2 --threads 2)
  # random init: loss near ln(259) = 5.56
  if(NOT out MATCHES "\\| s \\| 2 \\| 5\\.[0-9]+ \\|")
    message(FATAL_ERROR "${shape}: unexpected eval output:\n${out}")
  endif()
endforeach()

run(1 convert --random tiny-qwen2 --to-hf ${WORK}/tiny-qwen2 --quiet)
if(NOT err MATCHES "tiny-qwen2: output exists and is not an empty directory")
  message(FATAL_ERROR "non-empty output not named:\n${err}")
endif()

# Sharded: 16 KB shards of tiny-llama (index + many shards); then break the index.
run(0 convert --random tiny-llama --to-hf ${WORK}/sharded --max-shard-kb 16 --quiet)
file(GLOB shards RELATIVE ${WORK}/sharded ${WORK}/sharded/model-*-of-*.safetensors)
list(LENGTH shards n)
if(NOT EXISTS ${WORK}/sharded/model.safetensors.index.json OR n LESS 3)
  message(FATAL_ERROR "sharded export has no index or too few shards: ${shards}")
endif()
run(0 eval --model ${WORK}/sharded --task s=${FX}/data/shakespeare.valid.txt --windows 2 --threads 2)
list(GET shards 1 victim)
file(REMOVE ${WORK}/sharded/${victim})
run(1 eval --model ${WORK}/sharded --task s=${FX}/data/shakespeare.valid.txt --windows 2)
string(REPLACE "." "\\." victim_re "${victim}")
if(NOT err MATCHES "index\\.json: names shard '${victim_re}', which is missing")
  message(FATAL_ERROR "missing shard not named:\n${err}")
endif()
message(STATUS "HF end to end ok")
