#pragma once
/// @file safetensors_writer.hpp
/// @brief Deterministic writing of safetensors files, byte-identical to
/// Python's writer (format: tcq/io/safetensors.hpp).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <ostream>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tcq/core/error.hpp"
#include "tcq/core/half.hpp"
#include "tcq/core/mask.hpp"
#include "tcq/core/matrix_view.hpp"
#include "tcq/io/atomic_file.hpp"
#include "tcq/io/safetensors_dtype.hpp"

namespace tcq::safetensors {

/// Builds a safetensors file that Python `safetensors` reads, byte-identical to
/// what it would write for the same tensors (metadata aside, see below).
///
/// Layout, as Python's writer: tensors ordered by descending dtype rank
/// (I64, F64, F32, I32, BF16, F16, U8, BOOL), then by name; data packed without
/// gaps, so every tensor is aligned to its element size; compact JSON header
/// padded with spaces to a multiple of 8. Metadata keys are sorted (Python's
/// order is hash order). Empty metadata is omitted.
class writer {
public:
    /// Adds a tensor from raw little-endian bytes (copied).
    writer& add(std::string name, dtype type, std::vector<index_t> shape, std::span<const std::byte> bytes) {
        entry& e = push(std::move(name), type, std::move(shape), bytes.size());
        e.owned.assign(bytes.begin(), bytes.end());
        return *this;
    }

    /// Adds a tensor without copying: `bytes` must stay alive until the last
    /// serialize/write call. For large tensors already in memory.
    writer& add_borrowed(std::string name, dtype type, std::vector<index_t> shape,
                         std::span<const std::byte> bytes) {
        entry& e = push(std::move(name), type, std::move(shape), bytes.size());
        e.borrowed = bytes;
        e.is_borrowed = true;
        return *this;
    }

    /// Adds typed values (copied); the dtype follows T (`dtype_of<T>`).
    template <class T>
    writer& add(std::string name, std::span<const T> values, std::vector<index_t> shape) {
        static_assert(sizeof(bool) == 1, "BOOL tensors need a 1-byte bool");
        return add(std::move(name), dtype_of<T>, std::move(shape), std::as_bytes(values));
    }
    /// Convenience overload for contiguous containers (std::vector, std::array).
    template <class C>
    requires requires(const C& c) { std::span(c); }
    writer& add(std::string name, const C& values, std::vector<index_t> shape) {
        using T = std::remove_const_t<typename decltype(std::span(values))::element_type>;
        return add<T>(std::move(name), std::span<const T>(values), std::move(shape));
    }

    /// Adds float values stored as `type` (F32, F64, or RNE-rounded F16/BF16).
    writer& add_as(std::string name, std::span<const float> values, std::vector<index_t> shape, dtype type) {
        const std::size_t n = values.size();
        std::vector<std::byte> buf(n * dtype_size(type));
        switch (type) {
            case dtype::F32:
                if (n) std::memcpy(buf.data(), values.data(), n * 4);
                break;
            case dtype::F64:
                for (std::size_t i = 0; i < n; ++i) {
                    const double d = values[i];
                    std::memcpy(buf.data() + 8 * i, &d, 8);
                }
                break;
            case dtype::F16:
            case dtype::BF16:
                for (std::size_t i = 0; i < n; ++i) {
                    const std::uint16_t h =
                        type == dtype::F16 ? float_to_half(values[i]) : float_to_bf16(values[i]);
                    std::memcpy(buf.data() + 2 * i, &h, 2);
                }
                break;
            default:
                fail("safetensors writer: tensor '", name, "': cannot store floats as ", dtype_name(type));
        }
        entry& e = push(std::move(name), type, std::move(shape), buf.size());
        e.owned = std::move(buf);
        return *this;
    }

    /// Adds a (possibly strided) float matrix as a rows × cols tensor of `type`.
    writer& add_matrix(std::string name, matrix_view<const float> m, dtype type = dtype::F32) {
        std::vector<float> flat(static_cast<std::size_t>(m.size()));
        for (index_t r = 0; r < m.rows(); ++r)
            if (m.cols())
                std::memcpy(flat.data() + r * m.cols(), m.row(r), static_cast<std::size_t>(m.cols()) * 4);
        return add_as(std::move(name), flat, {m.rows(), m.cols()}, type);
    }

    /// Adds a mask as a rows × cols BOOL tensor.
    writer& add_mask(std::string name, const tcq::mask& m) {
        std::vector<std::byte> buf(static_cast<std::size_t>(m.size()));
        for (index_t i = 0; i < m.size(); ++i) buf[static_cast<std::size_t>(i)] = std::byte{m.test(i)};
        entry& e = push(std::move(name), dtype::BOOL, {m.rows(), m.cols()}, buf.size());
        e.owned = std::move(buf);
        return *this;
    }

    /// Sets a `__metadata__` entry (replacing an earlier value of `key`).
    writer& set_metadata(std::string key, std::string value) {
        metadata_[std::move(key)] = std::move(value);
        return *this;
    }

    /// Number of tensors added so far.
    [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

    /// The whole file in memory.
    [[nodiscard]] std::vector<std::byte> serialize() const {
        const auto [header, order] = prepare();
        std::size_t total = 8 + header.size();
        for (const entry* e : order) total += e->bytes().size();
        std::vector<std::byte> out;
        out.reserve(total);
        const auto put = [&out](const void* p, std::size_t n) {
            const auto* b = static_cast<const std::byte*>(p);
            out.insert(out.end(), b, b + n);
        };
        const std::uint64_t n = header.size();
        put(&n, 8);
        put(header.data(), header.size());
        for (const entry* e : order) put(e->bytes().data(), e->bytes().size());
        return out;
    }

    /// Streams the file to `os`; throws if the stream fails.
    void write(std::ostream& os, std::string_view what = "<stream>") const {
        const auto [header, order] = prepare();
        const std::uint64_t n = header.size();
        os.write(reinterpret_cast<const char*>(&n), 8);
        os.write(header.data(), static_cast<std::streamsize>(header.size()));
        for (const entry* e : order)
            os.write(reinterpret_cast<const char*>(e->bytes().data()),
                     static_cast<std::streamsize>(e->bytes().size()));
        os.flush();
        require(static_cast<bool>(os), "safetensors '", what, "': write failed");
    }

    /// Writes `file` atomically (tcq/io/atomic_file.hpp): into `file.tmp` first,
    /// renamed on success, so a failed write never leaves a truncated file
    /// under the final name.
    void write(const std::filesystem::path& file) const {
        const std::string fname = file.string();
        write_atomically(file, tcq::detail::cat("safetensors '", fname, "'"), [&](std::ostream& os) { write(os, fname); });
    }

private:
    struct entry {
        std::string name;
        dtype type;
        std::vector<index_t> shape;
        std::vector<std::byte> owned;
        std::span<const std::byte> borrowed;
        bool is_borrowed = false;
        [[nodiscard]] std::span<const std::byte> bytes() const {
            return is_borrowed ? borrowed : std::span<const std::byte>(owned);
        }
    };

    entry& push(std::string name, dtype type, std::vector<index_t> shape, std::size_t nbytes) {
        require(name != "__metadata__", "safetensors writer: '__metadata__' is reserved, not a tensor name");
        require(names_.insert(name).second, "safetensors writer: duplicate tensor name '", name, "'");
        const auto numel = detail::checked_numel(shape, dtype_size(type));
        if (!numel) {
            names_.erase(name);
            fail("safetensors writer: tensor '", name, "': invalid shape ", detail::shape_string(shape));
        }
        if (static_cast<std::size_t>(*numel) * dtype_size(type) != nbytes) {
            names_.erase(name);
            fail("safetensors writer: tensor '", name, "': shape ", detail::shape_string(shape), " of ",
                 dtype_name(type), " needs ", static_cast<std::size_t>(*numel) * dtype_size(type),
                 " bytes, got ", nbytes);
        }
        entries_.push_back({std::move(name), type, std::move(shape), {}, {}, false});
        return entries_.back();
    }

    /// Rank of Python safetensors' Dtype enum; its writer sorts by it, descending.
    static constexpr int py_rank(dtype t) noexcept {
        switch (t) {
            case dtype::BOOL:
                return 0;
            case dtype::U8:
                return 1;
            case dtype::F16:
                return 7;
            case dtype::BF16:
                return 8;
            case dtype::I32:
                return 9;
            case dtype::F32:
                return 11;
            case dtype::F64:
                return 12;
            case dtype::I64:
                return 13;
        }
        return -1;
    }

    static std::string quoted(const std::string& s, std::string_view what) {
        try {
            return nlohmann::json(s).dump();  // compact, UTF-8 kept, control chars escaped
        } catch (const nlohmann::json::exception&) {
            fail("safetensors writer: ", what, " '", s, "' is not valid UTF-8");
        }
    }

    std::pair<std::string, std::vector<const entry*>> prepare() const {
        std::vector<const entry*> order;
        order.reserve(entries_.size());
        for (const auto& e : entries_) order.push_back(&e);
        std::sort(order.begin(), order.end(), [](const entry* a, const entry* b) {
            const int ra = py_rank(a->type), rb = py_rank(b->type);
            return ra != rb ? ra > rb : a->name < b->name;
        });
        std::string h = "{";
        if (!metadata_.empty()) {
            h += "\"__metadata__\":{";
            bool first = true;
            for (const auto& [k, v] : metadata_) {
                if (!first) h += ',';
                first = false;
                h += quoted(k, "metadata key") + ':' + quoted(v, "metadata value");
            }
            h += '}';
        }
        std::uint64_t off = 0;
        for (const entry* e : order) {
            if (h.size() > 1) h += ',';
            h += quoted(e->name, "tensor name");
            h += ":{\"dtype\":\"";
            h += dtype_name(e->type);
            h += "\",\"shape\":[";
            for (std::size_t i = 0; i < e->shape.size(); ++i) {
                if (i) h += ',';
                h += std::to_string(e->shape[i]);
            }
            const std::uint64_t end = off + e->bytes().size();
            h += "],\"data_offsets\":[" + std::to_string(off) + ',' + std::to_string(end) + "]}";
            off = end;
        }
        h += '}';
        h.append((8 - h.size() % 8) % 8, ' ');
        return {std::move(h), std::move(order)};
    }

    std::vector<entry> entries_;
    std::set<std::string, std::less<>> names_;
    std::map<std::string, std::string> metadata_;
};

}  // namespace tcq::safetensors
