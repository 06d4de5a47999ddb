#pragma once
/// @file tcq_file.hpp
/// @brief The tcq file: one container of many named packed matrices plus
/// metadata. Versioned, CRC-32C checksummed per section, 64-byte aligned so a
/// memory mapping is used in place (zero-copy views). Byte layout:
/// docs/format.md.
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
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "tcq/core/error.hpp"
#include "tcq/io/checksum.hpp"
#include "tcq/io/mapped_file.hpp"
#include "tcq/pack/packed_matrix.hpp"
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

inline constexpr std::size_t file_header_bytes = 64;
inline constexpr std::size_t file_entry_bytes = 32;
inline constexpr std::size_t matrix_header_bytes = 64;
inline constexpr std::size_t max_name_bytes = 4096;
inline constexpr std::uint32_t no_matrix = 0xffffffffu;

inline std::uint64_t align64(std::uint64_t x) { return (x + 63) / 64 * 64; }

template <class T>
void put(std::vector<std::byte>& out, std::size_t at, T v) {
    std::memcpy(out.data() + at, &v, sizeof(T));
}
template <class T>
void append(std::vector<std::byte>& out, T v) {
    const std::size_t at = out.size();
    out.resize(at + sizeof(T));
    put(out, at, v);
}
inline void append_str(std::vector<std::byte>& out, std::string_view s) {
    append<std::uint32_t>(out, static_cast<std::uint32_t>(s.size()));
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    out.insert(out.end(), p, p + s.size());
}
template <class T>
T get(std::span<const std::byte> b, std::size_t at) {
    T v;
    std::memcpy(&v, b.data() + at, sizeof(T));
    return v;
}

/// Bounds-checked sequential reader over one section.
struct byte_reader {
    std::span<const std::byte> s;
    std::size_t pos = 0;
    const std::string* what = nullptr;

    template <class T>
    T take() {
        require(s.size() - pos >= sizeof(T), *what, ": truncated at byte ", pos, " of a ", s.size(), "-byte section");
        T v = get<T>(s, pos);
        pos += sizeof(T);
        return v;
    }
    std::string_view take_str(std::size_t n) {
        require(s.size() - pos >= n, *what, ": string of ", n, " bytes overruns its ", s.size(), "-byte section");
        std::string_view v(reinterpret_cast<const char*>(s.data() + pos), n);
        pos += n;
        return v;
    }
};

struct section_ref {
    section_kind kind;
    std::uint32_t matrix;
    std::span<const std::byte> data;
};

/// Typed view of an aligned byte range (sections are 64-byte aligned).
template <class T>
std::span<const T> span_as(std::span<const std::byte> d) {
    return {reinterpret_cast<const T*>(d.data()), d.size() / sizeof(T)};
}

template <class T>
std::span<const std::byte> bytes_of(std::span<const T> s) {
    return std::as_bytes(s);
}

inline std::string format_double(double v) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

}  // namespace detail

/// Writes tcq files. Holds views: keep the matrices alive until to_bytes()/write().
class file_writer {
public:
    /// Writer with the given metadata (library_version is overwritten with tcq::version_string).
    explicit file_writer(file_metadata meta) : meta_(std::move(meta)) {
        meta_.library_version = version_string;
        require(meta_.bits >= 0 && meta_.bits <= 16, "file_writer: metadata bits ", meta_.bits, " outside [0, 16]");
        require(std::isfinite(meta_.budget) && meta_.budget >= 0.0, "file_writer: metadata budget ", meta_.budget,
                " is not a finite non-negative number");
        for (std::size_t i = 0; i < meta_.extra.size(); ++i) {
            const auto& k = meta_.extra[i].first;
            require(!k.empty() && k.rfind("tcq.", 0) != 0, "file_writer: metadata key '", k,
                    "' is empty or uses the reserved prefix 'tcq.'");
            for (std::size_t j = 0; j < i; ++j)
                require(meta_.extra[j].first != k, "file_writer: duplicate metadata key '", k, "'");
        }
    }

    /// Adds a matrix under a unique, non-empty name of at most 4096 bytes.
    void add(std::string name, const packed_view& m) {
        require(!name.empty() && name.size() <= detail::max_name_bytes, "file_writer: matrix name '", name,
                "' must have 1 to 4096 bytes");
        require(!m.empty(), "file_writer: matrix '", name, "' is empty");
        for (const auto& e : entries_) require(e.first != name, "file_writer: duplicate matrix name '", name, "'");
        entries_.emplace_back(std::move(name), m);
    }

    /// The whole file in memory.
    [[nodiscard]] std::vector<std::byte> to_bytes() const {
        std::vector<std::byte> out;
        emit([&](std::span<const std::byte> b) { out.insert(out.end(), b.begin(), b.end()); });
        return out;
    }

    /// Writes the file to `path` (streamed; throws tcq::error on any I/O failure).
    void write(const std::filesystem::path& path) const {
        std::ofstream f(path, std::ios::binary | std::ios::trunc);
        require(f.good(), "file_writer: cannot create '", path.string(), "'");
        emit([&](std::span<const std::byte> b) {
            f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
        });
        f.close();
        require(f.good(), "file_writer: write to '", path.string(), "' failed");
    }

private:
    template <class Sink>
    void emit(Sink&& sink) const {
        using detail::append;
        // Small sections are built here; array sections are views of the matrices.
        std::vector<std::vector<std::byte>> owned;
        owned.reserve(1 + entries_.size());
        std::vector<detail::section_ref> secs;
        {
            std::vector<std::byte> m;
            const std::pair<std::string_view, std::string> fixed[] = {
                {"tcq.method", meta_.method},
                {"tcq.bits", std::to_string(meta_.bits)},
                {"tcq.budget", detail::format_double(meta_.budget)},
                {"tcq.calibration", meta_.calibration},
                {"tcq.version", meta_.library_version}};
            append<std::uint32_t>(m, static_cast<std::uint32_t>(5 + meta_.extra.size()));
            for (const auto& [k, v] : fixed) {
                detail::append_str(m, k);
                detail::append_str(m, v);
            }
            for (const auto& [k, v] : meta_.extra) {
                detail::append_str(m, k);
                detail::append_str(m, v);
            }
            owned.push_back(std::move(m));
            secs.push_back({section_kind::metadata, detail::no_matrix, owned.back()});
        }
        for (std::size_t i = 0; i < entries_.size(); ++i) {
            const auto& [name, v] = entries_[i];
            const packed_info& info = v.info();
            std::vector<std::byte> h(detail::matrix_header_bytes, std::byte{0});
            detail::put<std::uint64_t>(h, 0, static_cast<std::uint64_t>(info.rows));
            detail::put<std::uint64_t>(h, 8, static_cast<std::uint64_t>(info.cols));
            detail::put<std::uint32_t>(h, 16, static_cast<std::uint32_t>(info.bits));
            detail::put<std::uint32_t>(h, 20, static_cast<std::uint32_t>(info.group_size));
            detail::put<std::uint32_t>(h, 24, (info.act_order ? 1u : 0u) |
                                                  (info.outlier_format == value_format::bf16 ? 2u : 0u));
            detail::put<std::uint32_t>(h, 28, static_cast<std::uint32_t>(name.size()));
            detail::put<std::uint64_t>(h, 32, static_cast<std::uint64_t>(info.outliers));
            const auto* np = reinterpret_cast<const std::byte*>(name.data());
            h.insert(h.end(), np, np + name.size());
            owned.push_back(std::move(h));
            const auto mi = static_cast<std::uint32_t>(i);
            const auto& p = v.parts();
            secs.push_back({section_kind::matrix, mi, owned.back()});
            secs.push_back({section_kind::codes, mi, detail::bytes_of(p.codes)});
            secs.push_back({section_kind::scales, mi, detail::bytes_of(p.scales)});
            secs.push_back({section_kind::zeros, mi, detail::bytes_of(p.zeros)});
            if (info.act_order) secs.push_back({section_kind::g_idx, mi, detail::bytes_of(p.g_idx)});
            if (info.outliers) {
                secs.push_back({section_kind::values, mi, detail::bytes_of(p.outliers.values)});
                secs.push_back({section_kind::low_cols, mi, detail::bytes_of(p.outliers.low_cols)});
                secs.push_back({section_kind::bitmap, mi, detail::bytes_of(p.outliers.bitmap)});
                secs.push_back({section_kind::skips, mi, detail::bytes_of(p.outliers.skips)});
            }
        }
        // Header + table.
        const std::uint64_t table_end = detail::file_header_bytes + secs.size() * detail::file_entry_bytes;
        std::vector<std::byte> head(detail::align64(table_end), std::byte{0});
        std::uint64_t off = head.size();
        for (std::size_t i = 0; i < secs.size(); ++i) {
            const std::size_t e = detail::file_header_bytes + i * detail::file_entry_bytes;
            detail::put<std::uint32_t>(head, e, static_cast<std::uint32_t>(secs[i].kind));
            detail::put<std::uint32_t>(head, e + 4, secs[i].matrix);
            detail::put<std::uint64_t>(head, e + 8, off);
            detail::put<std::uint64_t>(head, e + 16, secs[i].data.size());
            detail::put<std::uint32_t>(head, e + 24, crc32c(secs[i].data));
            off = detail::align64(off + secs[i].data.size());
        }
        std::memcpy(head.data(), file_magic.data(), 8);
        detail::put<std::uint32_t>(head, 8, file_format_version);
        detail::put<std::uint32_t>(head, 12, static_cast<std::uint32_t>(detail::file_header_bytes));
        detail::put<std::uint64_t>(head, 16, off);
        detail::put<std::uint64_t>(head, 24, detail::file_header_bytes);
        detail::put<std::uint32_t>(head, 32, static_cast<std::uint32_t>(secs.size()));
        detail::put<std::uint32_t>(head, 36, static_cast<std::uint32_t>(entries_.size()));
        detail::put<std::uint32_t>(
            head, 40, crc32c(std::span<const std::byte>(head).subspan(detail::file_header_bytes, table_end - detail::file_header_bytes)));
        detail::put<std::uint32_t>(head, 60, crc32c(std::span<const std::byte>(head).first(60)));
        sink(head);
        static constexpr std::byte zeros[64] = {};
        for (const auto& s : secs) {
            sink(s.data);
            const std::size_t pad = static_cast<std::size_t>(detail::align64(s.data.size()) - s.data.size());
            sink(std::span<const std::byte>(zeros, pad));
        }
    }

    file_metadata meta_;
    std::vector<std::pair<std::string, packed_view>> entries_;
};

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
        using detail::get;
        what_ = std::move(what);
        const std::string& W = what_;
        const auto b = storage_.bytes();
        const std::uint64_t n = b.size();
        require(n >= detail::file_header_bytes, W, ": truncated, ", n, " bytes cannot hold the 64-byte header");
        require(std::memcmp(b.data(), file_magic.data(), 8) == 0, W, ": not a tcq file (bad magic)");
        const auto version = get<std::uint32_t>(b, 8);
        require(version == file_format_version, W, ": unsupported format version ", version, " (this library reads ",
                file_format_version, ")");
        if (opt.verify_checksums)
            require(crc32c(b.first(60)) == get<std::uint32_t>(b, 60), W, ": header checksum mismatch");
        require(get<std::uint32_t>(b, 12) == detail::file_header_bytes, W, ": header size ", get<std::uint32_t>(b, 12),
                " is not 64");
        const auto file_bytes = get<std::uint64_t>(b, 16);
        require(file_bytes == n, W, ": header records ", file_bytes, " bytes but the file has ", n,
                n < file_bytes ? " (truncated)" : " (trailing data)");
        require(get<std::uint64_t>(b, 24) == detail::file_header_bytes, W, ": section table offset ",
                get<std::uint64_t>(b, 24), " is not 64");
        const std::uint64_t nsec = get<std::uint32_t>(b, 32);
        const std::uint64_t nmat = get<std::uint32_t>(b, 36);
        for (std::size_t i = 44; i < 60; ++i) require(b[i] == std::byte{0}, W, ": reserved header byte ", i, " is not 0");
        require(nsec >= 1 && nsec <= (n - detail::file_header_bytes) / detail::file_entry_bytes, W, ": section count ",
                nsec, " does not fit the file");
        const std::uint64_t table_end = detail::file_header_bytes + nsec * detail::file_entry_bytes;
        if (opt.verify_checksums)
            require(crc32c(b.subspan(detail::file_header_bytes, table_end - detail::file_header_bytes)) ==
                        get<std::uint32_t>(b, 40),
                    W, ": section table checksum mismatch");
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
            const std::size_t e = detail::file_header_bytes + i * detail::file_entry_bytes;
            const auto kind = get<std::uint32_t>(b, e);
            const auto mi = get<std::uint32_t>(b, e + 4);
            const auto off = get<std::uint64_t>(b, e + 8);
            const auto size = get<std::uint64_t>(b, e + 16);
            require(get<std::uint32_t>(b, e + 28) == 0, W, ": section ", i, " reserved field is not 0");
            require(off == expect, W, ": section ", i, " at offset ", off, ", expected ", expect);
            require(size <= n - off, W, ": section ", i, " (", size, " bytes at ", off, ") runs past the end of the ",
                    n, "-byte file (truncated)");
            const std::uint64_t end = detail::align64(off + size);
            require(end <= n, W, ": section ", i, " padding runs past the end of the file (truncated)");
            require_zero(off + size, end, "after a section");
            const auto data = b.subspan(off, size);
            if (opt.verify_checksums)
                require(crc32c(data) == get<std::uint32_t>(b, e + 24), W, ": checksum mismatch in section ", i);
            secs.push_back({static_cast<section_kind>(kind), mi, data});
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
            require(h.size() > detail::matrix_header_bytes && h.size() <= detail::matrix_header_bytes + detail::max_name_bytes,
                    W, ": matrix ", m, " header has ", h.size(), " bytes");
            const auto rows = get<std::uint64_t>(h, 0), cols = get<std::uint64_t>(h, 8);
            const auto bits = get<std::uint32_t>(h, 16), gs = get<std::uint32_t>(h, 20);
            const auto flags = get<std::uint32_t>(h, 24), name_len = get<std::uint32_t>(h, 28);
            const auto nout = get<std::uint64_t>(h, 32);
            for (std::size_t i = 40; i < detail::matrix_header_bytes; ++i)
                require(h[i] == std::byte{0}, W, ": matrix ", m, " reserved header byte ", i, " is not 0");
            require(name_len == h.size() - detail::matrix_header_bytes, W, ": matrix ", m, " name length ", name_len,
                    " disagrees with its ", h.size(), "-byte header");
            std::string name(reinterpret_cast<const char*>(h.data() + detail::matrix_header_bytes), name_len);
            const std::string mw = W + ": matrix '" + name + "'";
            require(seen_names.insert(name).second, mw, ": duplicate name");
            constexpr std::uint64_t lim = std::uint64_t{1} << 31;
            require(rows >= 1 && rows < lim && cols >= 1 && cols < lim, mw, ": unsupported shape ", rows, "x", cols);
            require(gs < lim, mw, ": invalid group size ", gs);
            require((flags & ~3u) == 0, mw, ": unknown flags 0x", std::hex, flags);
            require(nout <= rows * cols, mw, ": ", nout, " outliers exceed ", rows, "x", cols);
            packed_info info;
            info.rows = static_cast<index_t>(rows);
            info.cols = static_cast<index_t>(cols);
            info.bits = static_cast<int>(std::min<std::uint32_t>(bits, 64));
            info.group_size = static_cast<index_t>(gs);
            info.act_order = flags & 1u;
            info.outlier_format = (flags & 2u) ? value_format::bf16 : value_format::fp16;
            info.outliers = static_cast<index_t>(nout);
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
            if (info.outliers) {
                p.outliers.values = detail::span_as<std::uint16_t>(array(section_kind::values, "outlier values", info.value_bytes(), 2));
                p.outliers.low_cols = detail::span_as<std::uint8_t>(array(section_kind::low_cols, "outlier columns", info.low_col_bytes(), 1));
                p.outliers.bitmap = detail::span_as<std::uint64_t>(array(section_kind::bitmap, "outlier bitmap", info.bitmap_bytes(), 8));
                p.outliers.skips = detail::span_as<std::uint32_t>(array(section_kind::skips, "outlier skips", info.skip_bytes(), 4));
            }
            views_.push_back(packed_view::make(info, p, mw));
            names_.push_back(std::move(name));
        }
        require(s == secs.size(), W, ": ", secs.size() - s, " unexpected sections after the last matrix");
    }

    void parse_metadata(std::span<const std::byte> d) {
        const std::string mw = what_ + ": metadata";
        detail::byte_reader rd{d, 0, &mw};
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
        require(rd.pos == d.size(), mw, ": ", d.size() - rd.pos, " trailing bytes");
    }

    mapped_file storage_;
    std::string what_;
    file_metadata meta_;
    std::vector<std::string> names_;
    std::vector<packed_view> views_;
};

}  // namespace tcq
