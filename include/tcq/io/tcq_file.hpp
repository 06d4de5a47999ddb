#pragma once
/// @file tcq_file.hpp
/// @brief The tcq file: one container of many named packed matrices plus
/// metadata. Versioned, CRC-32C checksummed per section, 64-byte aligned so a
/// memory mapping is used in place (zero-copy views). Byte layout:
/// docs/format.md and tcq_file_layout.hpp; writing: file_writer
/// (tcq_file_writer.hpp); reading: packed_file (tcq_file_reader.hpp).

#include "tcq/io/tcq_file_reader.hpp"
#include "tcq/io/tcq_file_writer.hpp"
