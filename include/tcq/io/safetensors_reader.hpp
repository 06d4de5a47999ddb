#pragma once
/// @file safetensors_reader.hpp
/// @brief Validated, memory-mapped reading of safetensors files (format:
/// tcq/io/safetensors.hpp).

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <optional>
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
#include "tcq/io/mapped_file.hpp"
#include "tcq/io/safetensors_dtype.hpp"

// Tensor bytes are little-endian and viewed in place; a big-endian host would
// need byte swaps everywhere, which nobody asked for.
static_assert(std::endian::native == std::endian::little,
              "tcq/io/safetensors.hpp supports little-endian hosts only");

namespace tcq::safetensors {

namespace detail {

/// Parse-time guard: rejects duplicate keys (nlohmann would keep the last one
/// silently) and nesting deeper than a valid header ever needs (root → tensor
/// → shape), which also bounds parser memory on hostile input.
class header_guard {
public:
    explicit header_guard(const std::string& src) : src_(&src) {}
    bool operator()(int /*depth*/, nlohmann::json::parse_event_t ev, nlohmann::json& parsed) {
        using E = nlohmann::json::parse_event_t;
        switch (ev) {
            case E::object_start:
            case E::array_start:
                if (stack_.size() >= 3)
                    fail("safetensors '", *src_, "': header JSON nests deeper than a safetensors header can");
                stack_.push_back({ev == E::object_start, {}});
                break;
            case E::object_end:
            case E::array_end:
                if (!stack_.empty()) stack_.pop_back();
                break;
            case E::key:
                if (!stack_.empty() && stack_.back().is_object &&
                    !stack_.back().keys.insert(parsed.get<std::string>()).second) {
                    if (stack_.size() == 1)
                        fail("safetensors '", *src_, "': duplicate tensor name '", parsed.get<std::string>(),
                             "' in header");
                    fail("safetensors '", *src_, "': duplicate key '", parsed.get<std::string>(),
                         "' in header");
                }
                break;
            case E::value:
                break;
        }
        return true;
    }

private:
    struct level {
        bool is_object;
        std::set<std::string> keys;
    };
    const std::string* src_;
    std::vector<level> stack_;
};

/// A JSON number that is a non-negative integer representable as index_t.
inline std::optional<index_t> as_index(const nlohmann::json& j) {
    if (!j.is_number_unsigned()) return std::nullopt;
    const auto v = j.get<std::uint64_t>();
    if (v > static_cast<std::uint64_t>(std::numeric_limits<index_t>::max())) return std::nullopt;
    return static_cast<index_t>(v);
}

}  // namespace detail

/// A validated safetensors file (or memory buffer).
///
/// Construction parses and checks the whole header; afterwards every accessor
/// is bounds-safe. Tensor bytes are viewed in place: spans and views returned
/// stay valid while this reader (or any copy of it; copies share the mapping)
/// is alive. For `open`, the file must not be truncated while mapped.
class reader {
public:
    /// Memory-maps `file` (POSIX; elsewhere reads it) and validates it.
    [[nodiscard]] static reader open(const std::filesystem::path& file) {
        auto st = std::make_shared<const mapped_file>(
            mapped_file::open(file, true, tcq::detail::cat("safetensors '", file.string(), "'")));
        const std::span<const std::byte> bytes = st->bytes();
        return reader(std::move(st), bytes, file.string());
    }

    /// Validates `bytes` in place, without a copy: the caller keeps them alive
    /// as long as the reader. `source` names the buffer in error messages.
    [[nodiscard]] static reader from_memory(std::span<const std::byte> bytes,
                                            std::string source = "<memory>") {
        return reader(nullptr, bytes, std::move(source));
    }

    /// The file name (or buffer name) used in messages.
    [[nodiscard]] const std::string& source() const noexcept { return source_; }
    /// All tensors, sorted by name.
    [[nodiscard]] const std::vector<tensor_info>& tensors() const noexcept { return tensors_; }
    /// Tensor names, sorted.
    [[nodiscard]] std::vector<std::string> names() const {
        std::vector<std::string> out;
        out.reserve(tensors_.size());
        for (const auto& t : tensors_) out.push_back(t.name);
        return out;
    }
    /// The `__metadata__` map (empty if absent).
    [[nodiscard]] const std::map<std::string, std::string, std::less<>>& metadata() const noexcept {
        return metadata_;
    }

    /// True when the file has a tensor called `name`.
    [[nodiscard]] bool contains(std::string_view name) const noexcept { return find(name) != nullptr; }

    /// Header entry of `name`; throws if there is no such tensor.
    [[nodiscard]] const tensor_info& info(std::string_view name) const {
        const tensor_info* t = find(name);
        if (!t) fail("safetensors '", source_, "': no tensor '", name, "'");
        return *t;
    }

    /// The tensor's raw little-endian bytes, in place.
    [[nodiscard]] std::span<const std::byte> bytes(std::string_view name) const {
        const auto& t = info(name);
        return data_.subspan(static_cast<std::size_t>(t.begin), t.nbytes());
    }

    /// Zero-copy view of a 0-d (1×1), 1-d (1×n) or 2-d tensor whose dtype is
    /// `dtype_of<T>` (`std::uint8_t` also views BOOL). Throws on another dtype,
    /// another rank, or data not aligned for T (possible only in files not
    /// written by tcq or Python `safetensors`); `to_float` copies instead.
    template <class T>
    [[nodiscard]] matrix_view<const T> view(std::string_view name) const {
        static_assert(!std::is_same_v<T, bool>,
                      "BOOL bytes may hold values other than 0/1; use view<std::uint8_t> or to_bool");
        const auto& t = info(name);
        const bool ok = t.type == dtype_of<T> || (std::is_same_v<T, std::uint8_t> && t.type == dtype::BOOL);
        if (!ok)
            fail("safetensors '", source_, "': tensor '", t.name, "' has dtype ", dtype_name(t.type),
                 ", cannot view it as ", dtype_name(dtype_of<T>));
        const auto rc = detail::matrix_shape(t);
        if (!rc)
            fail("safetensors '", source_, "': tensor '", t.name, "' has shape ",
                 detail::shape_string(t.shape), ", a matrix view needs rank 0, 1 or 2");
        const std::byte* p = data_.data() + t.begin;
        if (reinterpret_cast<std::uintptr_t>(p) % alignof(T) != 0)
            fail("safetensors '", source_, "': tensor '", t.name, "' data is not ", alignof(T),
                 "-byte aligned; copy it with to_float/to_double instead of viewing it");
        if (t.numel() == 0) return matrix_view<const T>(nullptr, rc->first, rc->second);
        return matrix_view<const T>(reinterpret_cast<const T*>(p), rc->first, rc->second);
    }

    /// The (rows, cols) a rank-0/1/2 tensor is viewed as; throws for other ranks.
    [[nodiscard]] std::pair<index_t, index_t> matrix_shape(std::string_view name) const {
        const auto& t = info(name);
        const auto rc = detail::matrix_shape(t);
        if (!rc)
            fail("safetensors '", source_, "': tensor '", t.name, "' has shape ",
                 detail::shape_string(t.shape), ", expected rank 0, 1 or 2");
        return *rc;
    }

    /// Converts an F32/F16/BF16/F64 tensor (any rank, row-major) to float into
    /// `out`, whose size must equal numel. F64 values beyond float range throw.
    void to_float(std::string_view name, std::span<float> out) const { convert(name, out); }
    /// Allocating form of `to_float`.
    [[nodiscard]] std::vector<float> to_float(std::string_view name) const {
        std::vector<float> v(static_cast<std::size_t>(info(name).numel()));
        convert(name, std::span<float>(v));
        return v;
    }
    /// Converts an F32/F16/BF16/F64 tensor to double (exact).
    void to_double(std::string_view name, std::span<double> out) const { convert(name, out); }
    /// Allocating form of `to_double`.
    [[nodiscard]] std::vector<double> to_double(std::string_view name) const {
        std::vector<double> v(static_cast<std::size_t>(info(name).numel()));
        convert(name, std::span<double>(v));
        return v;
    }

    /// Copies a BOOL or U8 tensor whose bytes are all 0 or 1 into `out` (size
    /// numel); any other byte value throws, naming its flat index.
    void to_bool(std::string_view name, std::span<std::uint8_t> out) const {
        const auto& t = info(name);
        if (t.type != dtype::BOOL && t.type != dtype::U8)
            fail("safetensors '", source_, "': tensor '", t.name, "' has dtype ", dtype_name(t.type),
                 ", a mask must be BOOL or U8");
        require_size(t, out.size());
        const auto* p = reinterpret_cast<const std::uint8_t*>(data_.data() + t.begin);
        for (std::size_t i = 0; i < out.size(); ++i) {
            if (p[i] > 1)
                fail("safetensors '", source_, "': tensor '", t.name, "' mask value ", static_cast<int>(p[i]),
                     " at flat index ", i, " is not 0 or 1");
            out[i] = p[i];
        }
    }

    /// A BOOL/U8 0-1 tensor of rank 0–2 as a tcq::mask (rows × cols).
    [[nodiscard]] tcq::mask read_mask(std::string_view name) const {
        const auto [rows, cols] = matrix_shape(name);
        std::vector<std::uint8_t> flat(static_cast<std::size_t>(rows * cols));
        to_bool(name, flat);
        tcq::mask m(rows, cols);
        for (std::size_t i = 0; i < flat.size(); ++i)
            if (flat[i]) m.set(static_cast<index_t>(i));
        return m;
    }

private:
    reader(std::shared_ptr<const mapped_file> keep, std::span<const std::byte> file, std::string source)
        : keep_(std::move(keep)), source_(std::move(source)) {
        parse(file);
    }

    [[nodiscard]] const tensor_info* find(std::string_view name) const noexcept {
        auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                                   [](const tensor_info& t, std::string_view n) { return t.name < n; });
        return it != tensors_.end() && it->name == name ? &*it : nullptr;
    }

    void require_size(const tensor_info& t, std::size_t n) const {
        if (n != static_cast<std::size_t>(t.numel()))
            fail("safetensors '", source_, "': tensor '", t.name, "' has ", t.numel(),
                 " elements, output span has ", n);
    }

    template <class Out>
    void convert(std::string_view name, std::span<Out> out) const {
        const auto& t = info(name);
        require_size(t, out.size());
        const std::byte* p = data_.data() + t.begin;
        // memcpy per element: correct for unaligned data, compiles to plain loads.
        auto load = [p]<class S>(std::size_t i, S) {
            S v;
            std::memcpy(&v, p + i * sizeof(S), sizeof(S));
            return v;
        };
        const std::size_t n = out.size();
        switch (t.type) {
            case dtype::F32:
                if constexpr (std::is_same_v<Out, float>) {
                    if (n) std::memcpy(out.data(), p, n * 4);
                } else {
                    for (std::size_t i = 0; i < n; ++i) out[i] = load(i, float{});
                }
                return;
            case dtype::F64:
                for (std::size_t i = 0; i < n; ++i) {
                    const double d = load(i, double{});
                    out[i] = static_cast<Out>(d);
                    if (std::isfinite(d) && !std::isfinite(out[i]))
                        fail("safetensors '", source_, "': tensor '", t.name, "' F64 value ", d,
                             " at flat index ", i, " overflows float");
                }
                return;
            case dtype::F16:
                if constexpr (std::is_same_v<Out, float>) {
                    if (reinterpret_cast<std::uintptr_t>(p) % 2 == 0) {  // F16C path of from_half
                        from_half({reinterpret_cast<const std::uint16_t*>(p), n}, out);
                        return;
                    }
                }
                for (std::size_t i = 0; i < n; ++i) out[i] = half_to_float(load(i, std::uint16_t{}));
                return;
            case dtype::BF16:
                for (std::size_t i = 0; i < n; ++i) out[i] = bf16_to_float(load(i, std::uint16_t{}));
                return;
            default:
                fail("safetensors '", source_, "': tensor '", t.name, "' has dtype ", dtype_name(t.type),
                     ", expected a float dtype (F32, F16, BF16, F64)");
        }
    }

    template <class... A>
    [[noreturn]] void bad(const A&... a) const {
        fail("safetensors '", source_, "': ", a...);
    }

    void parse(std::span<const std::byte> file) {
        if (file.size() < 8) bad("file is ", file.size(), " bytes, too small for the 8-byte header length");
        std::uint64_t n = 0;
        std::memcpy(&n, file.data(), 8);
        if (n > detail::max_header_bytes)
            bad("header length ", n, " exceeds the ", detail::max_header_bytes, "-byte limit");
        if (n > file.size() - 8)
            bad("header length ", n, " exceeds the ", file.size() - 8, " bytes after the length field");
        const auto* h = reinterpret_cast<const char*>(file.data() + 8);
        if (n == 0) bad("header is empty");
        if (h[0] != '{') bad("header does not start with '{'");
        // nlohmann treats NUL as end of input and would ignore what follows;
        // valid JSON never holds a raw NUL, so reject it outright.
        if (std::memchr(h, 0, static_cast<std::size_t>(n))) bad("invalid JSON header: contains a NUL byte");
        data_ = file.subspan(8 + static_cast<std::size_t>(n));

        nlohmann::json root;
        try {
            root = nlohmann::json::parse(h, h + n, detail::header_guard(source_));
        } catch (const nlohmann::json::exception& e) {
            bad("invalid JSON header: ", e.what());
        }
        if (!root.is_object()) bad("header is not a JSON object");

        for (auto& [key, val] : root.items()) {
            if (key == "__metadata__") {
                if (!val.is_object()) bad("__metadata__ is not an object");
                for (auto& [mk, mv] : val.items()) {
                    if (!mv.is_string()) bad("__metadata__ value of key '", mk, "' is not a string");
                    metadata_.emplace(mk, mv.get<std::string>());
                }
                continue;
            }
            tensors_.push_back(parse_tensor(key, val));
        }
        check_layout();
        std::sort(tensors_.begin(), tensors_.end(),
                  [](const tensor_info& a, const tensor_info& b) { return a.name < b.name; });
    }

    tensor_info parse_tensor(const std::string& name, const nlohmann::json& v) const {
        auto tbad = [&](const auto&... a) { bad("tensor '", name, "': ", a...); };
        if (!v.is_object()) tbad("entry is not an object");
        for (auto& [k, _] : v.items())
            if (k != "dtype" && k != "shape" && k != "data_offsets") tbad("unknown field '", k, "'");
        for (const char* k : {"dtype", "shape", "data_offsets"})
            if (!v.contains(k)) tbad("missing field '", k, "'");

        tensor_info t;
        t.name = name;
        const auto& jd = v["dtype"];
        if (!jd.is_string()) tbad("dtype is not a string");
        const auto ds = jd.get<std::string>();
        const auto d = parse_dtype(ds);
        if (!d) tbad("unsupported dtype '", ds, "' (tcq reads F32, F16, BF16, F64, I32, I64, U8, BOOL)");
        t.type = *d;

        const auto& js = v["shape"];
        if (!js.is_array()) tbad("shape is not an array");
        for (std::size_t i = 0; i < js.size(); ++i) {
            const auto& e = js[i];
            if (e.is_number_integer() && !e.is_number_unsigned() && e.get<std::int64_t>() < 0)
                tbad("shape[", i, "] = ", e.dump(), " is negative");
            const auto x = detail::as_index(e);
            if (!x) tbad("shape[", i, "] = ", e.dump(), " is not a non-negative integer");
            t.shape.push_back(*x);
        }

        const auto& jo = v["data_offsets"];
        if (!jo.is_array() || jo.size() != 2) tbad("data_offsets is not an array of two integers");
        const auto b = detail::as_index(jo[0]), e = detail::as_index(jo[1]);
        if (!b || !e) tbad("data_offsets ", jo.dump(), " are not non-negative integers");
        t.begin = static_cast<std::uint64_t>(*b);
        t.end = static_cast<std::uint64_t>(*e);
        if (t.end < t.begin) tbad("data_offsets end ", t.end, " < begin ", t.begin);
        if (t.end > data_.size())
            tbad("data_offsets [", t.begin, ", ", t.end, ") outside the ", data_.size(), "-byte data buffer");

        const auto numel = detail::checked_numel(t.shape, dtype_size(t.type));
        if (!numel) tbad("shape ", detail::shape_string(t.shape), " overflows the element count");
        const auto want = static_cast<std::uint64_t>(*numel) * dtype_size(t.type);
        if (want != t.end - t.begin)
            tbad("shape ", detail::shape_string(t.shape), " of ", dtype_name(t.type), " needs ", want,
                 " bytes, data_offsets hold ", t.end - t.begin);
        return t;
    }

    /// Tensors must tile the data buffer exactly: no overlap, no hole, no
    /// trailing bytes (the spec forbids holes; Python rejects them too).
    void check_layout() const {
        std::vector<const tensor_info*> by_off;
        by_off.reserve(tensors_.size());
        for (const auto& t : tensors_) by_off.push_back(&t);
        std::sort(by_off.begin(), by_off.end(), [](const tensor_info* a, const tensor_info* b) {
            return std::tie(a->begin, a->end, a->name) < std::tie(b->begin, b->end, b->name);
        });
        std::uint64_t pos = 0;
        const tensor_info* prev = nullptr;
        for (const auto* t : by_off) {
            if (t->begin < pos)
                bad("tensor '", t->name, "' [", t->begin, ", ", t->end, ") overlaps tensor '", prev->name,
                    "' [", prev->begin, ", ", prev->end, ")");
            if (t->begin > pos)
                bad("tensor '", t->name, "': ", t->begin - pos, " unused bytes before its data at offset ",
                    pos, " (the data buffer must be fully covered)");
            pos = t->end;
            prev = t;
        }
        if (pos != data_.size())
            bad(data_.size() - pos, " trailing bytes after the last tensor's data (offset ", pos, ")");
    }

    std::shared_ptr<const mapped_file> keep_;
    std::string source_;
    std::span<const std::byte> data_;
    std::vector<tensor_info> tensors_;
    std::map<std::string, std::string, std::less<>> metadata_;
};

}  // namespace tcq::safetensors
