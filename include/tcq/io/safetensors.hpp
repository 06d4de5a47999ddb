#pragma once
/// @file safetensors.hpp
/// @brief Validated, memory-mapped reading and deterministic writing of safetensors files:
/// safetensors_dtype.hpp (element types), safetensors_reader.hpp, safetensors_writer.hpp.
///
/// Format: 8-byte little-endian header length N, N bytes of UTF-8 JSON
/// (`name → {"dtype", "shape", "data_offsets": [begin, end]}` plus an optional
/// `"__metadata__"` string → string map), then the data buffer; offsets are
/// relative to the buffer start. The reader checks everything the Python
/// `safetensors` library checks (and a little more) before any tensor is
/// touched, so no accessor can read outside the file.
///
/// Needs nlohmann-json: link `tcq::io`, not only `tcq::tcq`. Deliberately not
/// part of the umbrella header `tcq/tcq.hpp`.

#include "tcq/io/safetensors_dtype.hpp"
#include "tcq/io/safetensors_reader.hpp"
#include "tcq/io/safetensors_writer.hpp"
