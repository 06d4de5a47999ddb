#pragma once
/// @file tcq_file_reader.hpp
/// @brief Loading tcq files (layout: tcq_file_layout.hpp, docs/format.md).
///
/// The loader validates the magic, version, every size, offset and padding
/// byte, the section order, every checksum (unless disabled), the metadata,
/// and each matrix through packed_view::make; a truncated or corrupt file is
/// a tcq::error, never an out-of-bounds read.

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

#include "tcq/core/byte_io.hpp"
#include "tcq/core/error.hpp"
#include "tcq/io/checksum.hpp"
#include "tcq/io/mapped_file.hpp"
#include "tcq/io/tcq_file_layout.hpp"
#include "tcq/pack/packed_matrix.hpp"

namespace tcq {

namespace detail {

/// Typed view of an aligned byte range (sections are 64-byte aligned).
template <class T>
std::span<const T> span_as(std::span<const std::byte> d) {
    return {reinterpret_cast<const T*>(d.data()), d.size() / sizeof(T)};
}

}  // namespace detail

/// Options of packed_file::open / parse.
struct open_options {
    /// Verify the CRC-32C of the header, table and every section (reads every
    /// byte once). Structural validation is always done.
    bool verify_checksums = true;
    /// Memory-map the file (zero-copy); otherwise read it into memory.
    bool use_mmap = true;
};

/// A loaded tcq file: metadata and validated zero-copy views of its matrices.
/// Move-only; views stay valid while the packed_file lives.
class packed_file {
public:
    packed_file() = default;
    /// Takes over the other file's storage and views (the bytes do not move, so views stay valid).
    packed_file(packed_file&&) noexcept = default;
    /// Takes over the other file's storage and views (the bytes do not move, so views stay valid).
    packed_file& operator=(packed_file&&) noexcept = default;

    /// Opens and validates the file at `path`.
    static packed_file open(const std::filesystem::path& path, const open_options& opt = {}) {
        packed_file f;
        f.storage_ = mapped_file::open(path, opt.use_mmap);
        f.load("tcq file '" + path.string() + "'", opt);
        return f;
    }
    /// Validates a file image held in memory (copied to aligned storage first).
    static packed_file parse(std::span<const std::byte> bytes, const open_options& opt = {}) {
        packed_file f;
        f.storage_ = mapped_file::copy(bytes);
        f.load("tcq file <memory>", opt);
        return f;
    }

    /// File metadata.
    [[nodiscard]] const file_metadata& metadata() const noexcept { return meta_; }
    /// Number of matrices.
    [[nodiscard]] index_t size() const noexcept { return static_cast<index_t>(names_.size()); }
    /// Name of matrix i.
    [[nodiscard]] const std::string& name(index_t i) const { return names_.at(static_cast<std::size_t>(i)); }
    /// Matrix i.
    [[nodiscard]] const packed_view& matrix(index_t i) const { return views_.at(static_cast<std::size_t>(i)); }
    /// Matrix by name, or nullptr.
    [[nodiscard]] const packed_view* try_find(std::string_view name) const {
        for (std::size_t i = 0; i < names_.size(); ++i)
            if (names_[i] == name) return &views_[i];
        return nullptr;
    }
    /// Matrix by name; throws tcq::error if absent.
    [[nodiscard]] const packed_view& find(std::string_view name) const {
        const packed_view* v = try_find(name);
        require(v != nullptr, what_, ": no matrix named '", name, "'");
        return *v;
    }
    /// True when the views point into a memory mapping of the file.
    [[nodiscard]] bool mapped() const noexcept { return storage_.mapped(); }
    /// The file's bytes.
    [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return storage_.bytes(); }

private:
    void load(std::string what, const open_options& opt) {
        using detail::file_header;
        using detail::section_entry;
        what_ = std::move(what);
        const std::string& W = what_;
        const auto b = storage_.bytes();
        const std::uint64_t n = b.size();
        require(n >= sizeof(file_header), W, ": truncated, ", n, " bytes cannot hold the 64-byte header");
        const auto fh = detail::struct_at<file_header>(b);
        require(std::memcmp(fh.magic, file_magic.data(), 8) == 0, W, ": not a tcq file (bad magic)");
        require(fh.version == file_format_version, W, ": unsupported format version ", fh.version,
                " (this library reads ", file_format_version, ")");
        if (opt.verify_checksums)
            require(crc32c(b.first(offsetof(file_header, header_crc))) == fh.header_crc, W,
                    ": header checksum mismatch");
        require(fh.header_bytes == sizeof(file_header), W, ": header size ", fh.header_bytes, " is not 64");
        require(fh.file_bytes == n, W, ": header records ", fh.file_bytes, " bytes but the file has ", n,
                n < fh.file_bytes ? " (truncated)" : " (trailing data)");
        require(fh.table_offset == sizeof(file_header), W, ": section table offset ", fh.table_offset, " is not 64");
        const std::uint64_t nsec = fh.sections;
        const std::uint64_t nmat = fh.matrices;
        for (std::size_t i = 0; i < sizeof fh.reserved; ++i)
            require(fh.reserved[i] == 0, W, ": reserved header byte ", offsetof(file_header, reserved) + i,
                    " is not 0");
        require(nsec >= 1 && nsec <= (n - sizeof(file_header)) / sizeof(section_entry), W, ": section count ", nsec,
                " does not fit the file");
        const std::uint64_t table_end = sizeof(file_header) + nsec * sizeof(section_entry);
        if (opt.verify_checksums)
            require(crc32c(b.subspan(sizeof(file_header), table_end - sizeof(file_header))) == fh.table_crc, W,
                    ": section table checksum mismatch");
        // Sections: canonical, contiguous, 64-aligned, zero padding in between.
        std::vector<detail::section_ref> secs;
        std::uint64_t expect = detail::align64(table_end);
        require(expect <= n, W, ": truncated inside the section table padding");
        auto require_zero = [&](std::uint64_t from, std::uint64_t to, const char* where) {
            for (std::uint64_t i = from; i < to; ++i)
                require(b[i] == std::byte{0}, W, ": padding byte ", i, " ", where, " is not 0");
        };
        require_zero(table_end, expect, "after the section table");
        for (std::uint64_t i = 0; i < nsec; ++i) {
            const auto e = detail::struct_at<section_entry>(b.subspan(sizeof(file_header) + i * sizeof(section_entry)));
            require(e.reserved == 0, W, ": section ", i, " reserved field is not 0");
            require(e.offset == expect, W, ": section ", i, " at offset ", e.offset, ", expected ", expect);
            require(e.size <= n - e.offset, W, ": section ", i, " (", e.size, " bytes at ", e.offset,
                    ") runs past the end of the ", n, "-byte file (truncated)");
            const std::uint64_t end = detail::align64(e.offset + e.size);
            require(end <= n, W, ": section ", i, " padding runs past the end of the file (truncated)");
            require_zero(e.offset + e.size, end, "after a section");
            const auto data = b.subspan(e.offset, e.size);
            if (opt.verify_checksums) require(crc32c(data) == e.crc, W, ": checksum mismatch in section ", i);
            secs.push_back({static_cast<section_kind>(e.kind), e.matrix, data});
            expect = end;
        }
        require(expect == n, W, ": ", n - expect, " bytes after the last section");
        // Section sequence: metadata, then per matrix its header and arrays.
        std::size_t s = 0;
        auto next = [&](section_kind k, std::uint32_t mi, const char* name) -> std::span<const std::byte> {
            require(s < secs.size(), W, ": missing ", name, " section", mi == detail::no_matrix ? "" : " of matrix ",
                    mi == detail::no_matrix ? std::string() : std::to_string(mi));
            require(secs[s].kind == k && secs[s].matrix == mi, W, ": section ", s, " is kind ",
                    static_cast<std::uint32_t>(secs[s].kind), " of matrix ", secs[s].matrix, ", expected the ", name,
                    " section (kind ", static_cast<std::uint32_t>(k), ") of matrix ", mi);
            return secs[s++].data;
        };
        parse_metadata(next(section_kind::metadata, detail::no_matrix, "metadata"));
        std::unordered_set<std::string> seen_names;
        for (std::uint32_t m = 0; m < nmat; ++m) {
            const auto h = next(section_kind::matrix, m, "matrix header");
            constexpr std::size_t mh_bytes = sizeof(detail::matrix_header);
            require(h.size() > mh_bytes && h.size() <= mh_bytes + detail::max_name_bytes, W, ": matrix ", m,
                    " header has ", h.size(), " bytes");
            const auto mh = detail::struct_at<detail::matrix_header>(h);
            const std::uint64_t rows = mh.rows, cols = mh.cols;
            const std::uint32_t bits = mh.bits, gs = mh.group_size, flags = mh.flags, name_len = mh.name_bytes;
            const std::uint64_t nout = mh.kept;
            for (std::size_t i = 0; i < sizeof mh.reserved; ++i)
                require(mh.reserved[i] == 0, W, ": matrix ", m, " reserved header byte ",
                        offsetof(detail::matrix_header, reserved) + i, " is not 0");
            require(name_len == h.size() - mh_bytes, W, ": matrix ", m, " name length ", name_len,
                    " disagrees with its ", h.size(), "-byte header");
            std::string name(reinterpret_cast<const char*>(h.data() + mh_bytes), name_len);
            const std::string mw = W + ": matrix '" + name + "'";
            require(seen_names.insert(name).second, mw, ": duplicate name");
            constexpr std::uint64_t lim = std::uint64_t{1} << 31;
            require(rows >= 1 && rows < lim && cols >= 1 && cols < lim, mw, ": unsupported shape ", rows, "x", cols);
            require(gs < lim, mw, ": invalid group size ", gs);
            require((flags & ~(detail::flag_act_order | detail::flag_bf16)) == 0, mw, ": unknown flags 0x", std::hex,
                    flags);
            require(nout <= rows * cols, mw, ": ", nout, " kept weights exceed ", rows, "x", cols);
            packed_info info;
            info.rows = static_cast<index_t>(rows);
            info.cols = static_cast<index_t>(cols);
            info.bits = static_cast<int>(std::min<std::uint32_t>(bits, 64));
            info.group_size = static_cast<index_t>(gs);
            info.act_order = flags & detail::flag_act_order;
            info.kept_format = (flags & detail::flag_bf16) ? value_format::bf16 : value_format::fp16;
            info.kept = static_cast<index_t>(nout);
            info.validate(mw);
            auto array = [&](section_kind k, const char* label, std::uint64_t bytes, std::size_t align) {
                const auto d = next(k, m, label);
                require(d.size() == bytes, mw, ": ", label, " section has ", d.size(), " bytes, expected ", bytes);
                require(reinterpret_cast<std::uintptr_t>(d.data()) % align == 0, mw, ": ", label,
                        " section is misaligned");
                return d;
            };
            packed_parts p;
            p.codes = detail::span_as<std::uint8_t>(array(section_kind::codes, "codes", info.code_bytes(), 1));
            p.scales = detail::span_as<std::uint16_t>(array(section_kind::scales, "scales", info.scale_bytes(), 2));
            p.zeros = detail::span_as<std::uint8_t>(array(section_kind::zeros, "zeros", info.zero_bytes(), 1));
            if (info.act_order)
                p.g_idx = detail::span_as<std::uint16_t>(array(section_kind::g_idx, "g_idx", info.g_idx_bytes(), 2));
            if (info.kept) {
                p.kept.values = detail::span_as<std::uint16_t>(array(section_kind::values, "kept values", info.value_bytes(), 2));
                p.kept.low_cols = detail::span_as<std::uint8_t>(array(section_kind::low_cols, "kept columns", info.low_col_bytes(), 1));
                p.kept.bitmap = detail::span_as<std::uint64_t>(array(section_kind::bitmap, "kept bitmap", info.bitmap_bytes(), 8));
                p.kept.skips = detail::span_as<std::uint32_t>(array(section_kind::skips, "kept skips", info.skip_bytes(), 4));
            }
            views_.push_back(packed_view::make(info, p, mw));
            names_.push_back(std::move(name));
        }
        require(s == secs.size(), W, ": ", secs.size() - s, " unexpected sections after the last matrix");
    }

    void parse_metadata(std::span<const std::byte> d) {
        const std::string mw = what_ + ": metadata";
        byte_reader<std::byte> rd(d, mw);
        const auto count = rd.take<std::uint32_t>();
        require(count >= 5 && count <= d.size() / 8, mw, ": entry count ", count, " is impossible");
        bool seen[5] = {};
        std::unordered_set<std::string> seen_keys;
        constexpr std::string_view fixed[5] = {"tcq.method", "tcq.bits", "tcq.budget", "tcq.calibration", "tcq.version"};
        for (std::uint32_t i = 0; i < count; ++i) {
            const std::string_view k = rd.take_str(rd.take<std::uint32_t>());
            const std::string_view v = rd.take_str(rd.take<std::uint32_t>());
            require(!k.empty(), mw, ": empty key");
            const auto it = std::find(std::begin(fixed), std::end(fixed), k);
            if (it != std::end(fixed)) {
                const auto j = static_cast<std::size_t>(it - std::begin(fixed));
                require(!seen[j], mw, ": duplicate key '", k, "'");
                seen[j] = true;
                if (j == 0) meta_.method = std::string(v);
                if (j == 1) {
                    int bits = -1;
                    const auto r = std::from_chars(v.data(), v.data() + v.size(), bits);
                    require(r.ec == std::errc{} && r.ptr == v.data() + v.size() && bits >= 0 && bits <= 16, mw,
                            ": tcq.bits '", v, "' is not an integer in [0, 16]");
                    meta_.bits = bits;
                }
                if (j == 2) {
                    double bud = -1;
                    const auto r = std::from_chars(v.data(), v.data() + v.size(), bud);
                    require(r.ec == std::errc{} && r.ptr == v.data() + v.size() && std::isfinite(bud) && bud >= 0, mw,
                            ": tcq.budget '", v, "' is not a finite non-negative number");
                    meta_.budget = bud;
                }
                if (j == 3) meta_.calibration = std::string(v);
                if (j == 4) meta_.library_version = std::string(v);
            } else {
                require(k.rfind("tcq.", 0) != 0, mw, ": unknown reserved key '", k, "'");
                require(seen_keys.insert(std::string(k)).second, mw, ": duplicate key '", k, "'");
                meta_.extra.emplace_back(std::string(k), std::string(v));
            }
        }
        for (std::size_t j = 0; j < 5; ++j) require(seen[j], mw, ": missing key '", fixed[j], "'");
        rd.expect_end();
    }

    mapped_file storage_;
    std::string what_;
    file_metadata meta_;
    std::vector<std::string> names_;
    std::vector<packed_view> views_;
};

}  // namespace tcq
