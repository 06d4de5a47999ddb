#pragma once
/// @file tcq_file_writer.hpp
/// @brief Writing tcq files (layout: tcq_file_layout.hpp, docs/format.md).

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
#include "tcq/io/atomic_file.hpp"
#include "tcq/io/checksum.hpp"
#include "tcq/io/tcq_file_layout.hpp"
#include "tcq/pack/packed_matrix.hpp"
#include "tcq/version.hpp"

namespace tcq {

namespace detail {

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

    /// Writes the file to `path`, streamed and atomically (tcq/io/atomic_file.hpp):
    /// on any failure nothing appears under `path` and a tcq::error names it.
    void write(const std::filesystem::path& path) const {
        write_atomically(path, detail::cat("file_writer '", path.string(), "'"), [&](std::ostream& f) {
            emit([&](std::span<const std::byte> b) {
                f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
            });
        });
    }

private:
    template <class Sink>
    void emit(Sink&& sink) const {
        // Small sections are built here; array sections are views of the matrices.
        std::vector<std::vector<std::byte>> owned;
        owned.reserve(1 + entries_.size());
        std::vector<detail::section_ref> secs;
        {
            byte_writer<std::byte> m;
            const std::pair<std::string_view, std::string> fixed[] = {
                {"tcq.method", meta_.method},
                {"tcq.bits", std::to_string(meta_.bits)},
                {"tcq.budget", detail::format_double(meta_.budget)},
                {"tcq.calibration", meta_.calibration},
                {"tcq.version", meta_.library_version}};
            m.put(static_cast<std::uint32_t>(5 + meta_.extra.size()));
            for (const auto& [k, v] : fixed) m.put_str(k).put_str(v);
            for (const auto& [k, v] : meta_.extra) m.put_str(k).put_str(v);
            owned.push_back(std::move(m).take());
            secs.push_back({section_kind::metadata, detail::no_matrix, owned.back()});
        }
        for (std::size_t i = 0; i < entries_.size(); ++i) {
            const auto& [name, v] = entries_[i];
            const packed_info& info = v.info();
            detail::matrix_header mh{};
            mh.rows = static_cast<std::uint64_t>(info.rows);
            mh.cols = static_cast<std::uint64_t>(info.cols);
            mh.bits = static_cast<std::uint32_t>(info.bits);
            mh.group_size = static_cast<std::uint32_t>(info.group_size);
            mh.flags = (info.act_order ? detail::flag_act_order : 0u) |
                       (info.kept_format == value_format::bf16 ? detail::flag_bf16 : 0u);
            mh.name_bytes = static_cast<std::uint32_t>(name.size());
            mh.kept = static_cast<std::uint64_t>(info.kept);
            byte_writer<std::byte> h;
            h.put_bytes(&mh, sizeof mh).put_bytes(name.data(), name.size());
            owned.push_back(std::move(h).take());
            const auto mi = static_cast<std::uint32_t>(i);
            const auto& p = v.parts();
            secs.push_back({section_kind::matrix, mi, owned.back()});
            secs.push_back({section_kind::codes, mi, std::as_bytes(p.codes)});
            secs.push_back({section_kind::scales, mi, std::as_bytes(p.scales)});
            secs.push_back({section_kind::zeros, mi, std::as_bytes(p.zeros)});
            if (info.act_order) secs.push_back({section_kind::g_idx, mi, std::as_bytes(p.g_idx)});
            if (info.kept) {
                secs.push_back({section_kind::values, mi, std::as_bytes(p.kept.values)});
                secs.push_back({section_kind::low_cols, mi, std::as_bytes(p.kept.low_cols)});
                secs.push_back({section_kind::bitmap, mi, std::as_bytes(p.kept.bitmap)});
                secs.push_back({section_kind::skips, mi, std::as_bytes(p.kept.skips)});
            }
        }
        // Header + table.
        std::vector<detail::section_entry> table(secs.size());
        std::uint64_t off = detail::align64(sizeof(detail::file_header) + secs.size() * sizeof(detail::section_entry));
        for (std::size_t i = 0; i < secs.size(); ++i) {
            table[i] = {static_cast<std::uint32_t>(secs[i].kind), secs[i].matrix, off, secs[i].data.size(),
                        crc32c(secs[i].data), 0};
            off = detail::align64(off + secs[i].data.size());
        }
        const auto table_bytes = std::as_bytes(std::span<const detail::section_entry>(table));
        detail::file_header fh{};
        std::memcpy(fh.magic, file_magic.data(), 8);
        fh.version = file_format_version;
        fh.header_bytes = sizeof(detail::file_header);
        fh.file_bytes = off;
        fh.table_offset = sizeof(detail::file_header);
        fh.sections = static_cast<std::uint32_t>(secs.size());
        fh.matrices = static_cast<std::uint32_t>(entries_.size());
        fh.table_crc = crc32c(table_bytes);
        fh.header_crc = crc32c(detail::bytes_of_struct(fh).first(offsetof(detail::file_header, header_crc)));
        static constexpr std::byte zeros[64] = {};
        const auto pad_to_64 = [&](std::size_t n) {
            sink(std::span<const std::byte>(zeros, static_cast<std::size_t>(detail::align64(n) - n)));
        };
        sink(detail::bytes_of_struct(fh));
        sink(table_bytes);
        pad_to_64(sizeof(detail::file_header) + table_bytes.size());
        for (const auto& sec : secs) {
            sink(sec.data);
            pad_to_64(sec.data.size());
        }
    }

    file_metadata meta_;
    std::vector<std::pair<std::string, packed_view>> entries_;
};

}  // namespace tcq
