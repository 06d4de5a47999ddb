#pragma once
/// @file tcq_file_layout.hpp
/// @brief The byte layout of the tcq file (docs/format.md), shared by the
/// writer (tcq_file_writer.hpp) and the reader (tcq_file_reader.hpp): the
/// fixed-size headers are structs whose size and field offsets are
/// static_asserted, copied to and from the file with memcpy (little-endian
/// hosts only), as ggml does with its blocks.

#include <algorithm>
#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include "tcq/core/error.hpp"
#include "tcq/version.hpp"

namespace tcq {

static_assert(std::endian::native == std::endian::little,
              "tcq files are little-endian and used in place: big-endian hosts are not supported");

/// Version of the container format written and read by this library.
inline constexpr std::uint32_t file_format_version = 1;
/// First 8 bytes of every tcq file (PNG-style: catches text-mode transfers).
inline constexpr std::array<unsigned char, 8> file_magic = {0x89, 'T', 'C', 'Q', '\r', '\n', 0x1a, '\n'};

/// Kinds of sections (u32 in the section table).
enum class section_kind : std::uint32_t {
    metadata = 1,     ///< key/value strings
    matrix = 2,       ///< a matrix header + its name
    codes = 3,        ///< code blocks
    scales = 4,       ///< fp16 scales
    zeros = 5,        ///< u8 zero points
    g_idx = 6,        ///< u16 act-order group indices
    values = 7,       ///< 16-bit kept weights
    low_cols = 8,     ///< low column bytes of kept weights
    bitmap = 9,       ///< unary high-column bitmap (u64 words)
    skips = 10,       ///< skip entries (u32 pairs)
};

/// Metadata stored with every tcq file.
struct file_metadata {
    std::string method;       ///< quantization method, e.g. "tacq", "gptq", "spqr"
    int bits = 0;             ///< base bit width (0–16)
    double budget = 0.0;      ///< fraction of scored weights kept in 16-bit (finite, ≥ 0)
    std::string calibration;  ///< free text describing the calibration data
    /// Library version that wrote the file (the writer always stores tcq::version_string).
    std::string library_version = version_string;
    /// Free-form key/values, in order; keys are non-empty, unique, and do not start with "tcq.".
    std::vector<std::pair<std::string, std::string>> extra;

    /// Value of a free-form key, if present.
    [[nodiscard]] std::optional<std::string> find(std::string_view key) const {
        for (const auto& [k, v] : extra)
            if (k == key) return v;
        return std::nullopt;
    }
};

namespace detail {

/// The 64-byte file header at offset 0.
struct file_header {
    unsigned char magic[8];      ///< file_magic
    std::uint32_t version;       ///< file_format_version
    std::uint32_t header_bytes;  ///< 64
    std::uint64_t file_bytes;    ///< size of the whole file
    std::uint64_t table_offset;  ///< 64: the section table follows the header
    std::uint32_t sections;      ///< entries in the section table
    std::uint32_t matrices;      ///< matrices in the file
    std::uint32_t table_crc;     ///< CRC-32C of the section table
    std::uint8_t reserved[16];   ///< zero
    std::uint32_t header_crc;    ///< CRC-32C of bytes 0..59
};
static_assert(sizeof(file_header) == 64 && offsetof(file_header, version) == 8 &&
                  offsetof(file_header, file_bytes) == 16 && offsetof(file_header, table_offset) == 24 &&
                  offsetof(file_header, sections) == 32 && offsetof(file_header, table_crc) == 40 &&
                  offsetof(file_header, reserved) == 44 && offsetof(file_header, header_crc) == 60,
              "tcq file header layout (docs/format.md)");

/// One 32-byte entry of the section table.
struct section_entry {
    std::uint32_t kind;      ///< section_kind
    std::uint32_t matrix;    ///< matrix index, or no_matrix
    std::uint64_t offset;    ///< 64-byte aligned file offset
    std::uint64_t size;      ///< bytes, before padding
    std::uint32_t crc;       ///< CRC-32C of the section bytes
    std::uint32_t reserved;  ///< zero
};
static_assert(sizeof(section_entry) == 32 && offsetof(section_entry, offset) == 8 &&
                  offsetof(section_entry, size) == 16 && offsetof(section_entry, crc) == 24,
              "tcq file section entry layout (docs/format.md)");

/// The 64-byte header of a matrix section; the name follows it.
struct matrix_header {
    std::uint64_t rows;
    std::uint64_t cols;
    std::uint32_t bits;
    std::uint32_t group_size;
    std::uint32_t flags;       ///< bit 0 act-order, bit 1 bf16 kept weights
    std::uint32_t name_bytes;  ///< length of the name that follows
    std::uint64_t kept;    ///< kept weights
    std::uint8_t reserved[24];  ///< zero
};
static_assert(sizeof(matrix_header) == 64 && offsetof(matrix_header, bits) == 16 &&
                  offsetof(matrix_header, flags) == 24 && offsetof(matrix_header, kept) == 32 &&
                  offsetof(matrix_header, reserved) == 40,
              "tcq file matrix header layout (docs/format.md)");

static_assert(std::has_unique_object_representations_v<file_header> &&
                  std::has_unique_object_representations_v<section_entry> &&
                  std::has_unique_object_representations_v<matrix_header>,
              "the header structs have no padding: their bytes are the file's bytes");

inline constexpr std::uint32_t flag_act_order = 1u;
inline constexpr std::uint32_t flag_bf16 = 2u;
inline constexpr std::size_t max_name_bytes = 4096;
inline constexpr std::uint32_t no_matrix = 0xffffffffu;

inline std::uint64_t align64(std::uint64_t x) { return (x + 63) / 64 * 64; }

/// The bytes of a header struct.
template <class T>
std::span<const std::byte> bytes_of_struct(const T& v) {
    return std::as_bytes(std::span<const T, 1>(&v, 1));
}
/// A header struct from the start of `b` (the caller checked the size).
template <class T>
T struct_at(std::span<const std::byte> b) {
    T v;
    std::memcpy(&v, b.data(), sizeof(T));
    return v;
}

/// One section: its kind, its matrix, its bytes.
struct section_ref {
    section_kind kind;
    std::uint32_t matrix;
    std::span<const std::byte> data;
};

}  // namespace detail

}  // namespace tcq
