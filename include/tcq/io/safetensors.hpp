#pragma once
/// @file safetensors.hpp
/// @brief Validated, memory-mapped reading and deterministic writing of safetensors files.
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

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
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

#include "tcq/core/config.hpp"
#include "tcq/core/error.hpp"
#include "tcq/core/half.hpp"
#include "tcq/core/mask.hpp"
#include "tcq/core/matrix_view.hpp"

#if defined(__unix__) || defined(__APPLE__)
#define TCQ_SAFETENSORS_MMAP 1
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#endif

// Tensor bytes are little-endian and viewed in place; a big-endian host would
// need byte swaps everywhere, which nobody asked for.
static_assert(std::endian::native == std::endian::little,
              "tcq/io/safetensors.hpp supports little-endian hosts only");

namespace tcq::safetensors {

/// The element types tcq reads and writes. Others (I8, U16, F8_*, …) are rejected.
enum class dtype : std::uint8_t { BOOL, U8, I32, I64, F16, BF16, F32, F64 };

/// Bytes per element.
[[nodiscard]] constexpr std::size_t dtype_size(dtype t) noexcept {
    switch (t) {
        case dtype::BOOL:
        case dtype::U8:
            return 1;
        case dtype::F16:
        case dtype::BF16:
            return 2;
        case dtype::I32:
        case dtype::F32:
            return 4;
        case dtype::I64:
        case dtype::F64:
            return 8;
    }
    return 0;
}

/// The header spelling ("F32", "BOOL", …).
[[nodiscard]] constexpr std::string_view dtype_name(dtype t) noexcept {
    switch (t) {
        case dtype::BOOL:
            return "BOOL";
        case dtype::U8:
            return "U8";
        case dtype::I32:
            return "I32";
        case dtype::I64:
            return "I64";
        case dtype::F16:
            return "F16";
        case dtype::BF16:
            return "BF16";
        case dtype::F32:
            return "F32";
        case dtype::F64:
            return "F64";
    }
    return "?";
}

/// Parses a header dtype string; nullopt for anything tcq does not support.
[[nodiscard]] inline std::optional<dtype> parse_dtype(std::string_view s) noexcept {
    for (dtype t :
         {dtype::BOOL, dtype::U8, dtype::I32, dtype::I64, dtype::F16, dtype::BF16, dtype::F32, dtype::F64})
        if (s == dtype_name(t)) return t;
    return std::nullopt;
}

/// The dtype matching a C++ element type (float → F32, bool → BOOL, …).
template <class T>
inline constexpr dtype dtype_of = [] {
    using U = std::remove_cv_t<T>;
    if constexpr (std::is_same_v<U, float>)
        return dtype::F32;
    else if constexpr (std::is_same_v<U, double>)
        return dtype::F64;
    else if constexpr (std::is_same_v<U, std::int32_t>)
        return dtype::I32;
    else if constexpr (std::is_same_v<U, std::int64_t>)
        return dtype::I64;
    else if constexpr (std::is_same_v<U, std::uint8_t>)
        return dtype::U8;
    else if constexpr (std::is_same_v<U, bool>)
        return dtype::BOOL;
    else if constexpr (std::is_same_v<U, half_bits>)
        return dtype::F16;
    else if constexpr (std::is_same_v<U, bf16_bits>)
        return dtype::BF16;
    else
        static_assert(sizeof(T) == 0, "no safetensors dtype for this element type");
}();

/// One tensor entry of a validated header.
struct tensor_info {
    std::string name;         ///< tensor name (header key)
    dtype type = dtype::F32;  ///< element type (header "dtype")
    /// Dimensions; empty for a 0-d scalar (one element).
    std::vector<index_t> shape;
    /// Byte range [begin, end) in the data buffer.
    std::uint64_t begin = 0;
    std::uint64_t end = 0;  ///< one past the last byte, relative to the data buffer

    /// Number of elements (product of the shape; 1 for a scalar).
    [[nodiscard]] index_t numel() const noexcept {
        index_t n = 1;
        for (index_t d : shape) n *= d;  // validated: cannot overflow
        return n;
    }
    /// Size of the data in bytes.
    [[nodiscard]] std::size_t nbytes() const noexcept { return static_cast<std::size_t>(end - begin); }
};

namespace detail {

/// Python's `safetensors` caps the header at 100 MB; so do we (bounds JSON memory).
inline constexpr std::uint64_t max_header_bytes = 100'000'000;

/// Element count of `shape`, or nullopt if a dimension is negative or the
/// product × elem_size overflows index_t.
inline std::optional<index_t> checked_numel(std::span<const index_t> shape, std::size_t elem_size) {
    index_t n = 1;
    bool zero = false;
    for (index_t d : shape) {
        if (d < 0) return std::nullopt;
        zero |= d == 0;
    }
    if (zero) return 0;
    constexpr index_t max = std::numeric_limits<index_t>::max();
    for (index_t d : shape) {
        if (n > max / d) return std::nullopt;
        n *= d;
    }
    if (n > max / static_cast<index_t>(elem_size)) return std::nullopt;
    return n;
}

inline std::string shape_string(std::span<const index_t> shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

/// The 2-D interpretation tcq uses: 0-d → 1×1, 1-d → 1×n, 2-d → rows×cols.
inline std::optional<std::pair<index_t, index_t>> matrix_shape(const tensor_info& t) {
    switch (t.shape.size()) {
        case 0:
            return std::pair<index_t, index_t>{1, 1};
        case 1:
            return std::pair<index_t, index_t>{1, t.shape[0]};
        case 2:
            return std::pair<index_t, index_t>{t.shape[0], t.shape[1]};
        default:
            return std::nullopt;
    }
}

/// Keeps the bytes a reader views alive: an mmap, or an owned copy.
struct storage {
    const std::byte* data = nullptr;
    std::size_t size = 0;
    std::vector<std::byte> owned;
#ifdef TCQ_SAFETENSORS_MMAP
    void* map = nullptr;
    std::size_t map_size = 0;
#endif
    storage() = default;
    storage(const storage&) = delete;
    storage& operator=(const storage&) = delete;
    ~storage() {
#ifdef TCQ_SAFETENSORS_MMAP
        if (map) ::munmap(map, map_size);
#endif
    }
};

/// Maps (POSIX) or reads the whole file. The file must stay unmodified while mapped.
inline std::shared_ptr<storage> load_file(const std::filesystem::path& file) {
    auto st = std::make_shared<storage>();
    const std::string fname = file.string();
#ifdef TCQ_SAFETENSORS_MMAP
    // O_NONBLOCK: opening a FIFO must not hang; it is rejected below as not a regular file.
    const int fd = ::open(fname.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) fail("safetensors '", fname, "': cannot open: ", std::strerror(errno));
    struct ::stat sb {};
    if (::fstat(fd, &sb) != 0) {
        const int e = errno;
        ::close(fd);
        fail("safetensors '", fname, "': cannot stat: ", std::strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        ::close(fd);
        fail("safetensors '", fname, "': not a regular file");
    }
    const auto size = static_cast<std::size_t>(sb.st_size);
    if (size < 8) {
        ::close(fd);
        fail("safetensors '", fname, "': file is ", size, " bytes, too small for the 8-byte header length");
    }
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int e = errno;
    ::close(fd);  // the mapping keeps the file referenced
    if (p == MAP_FAILED) fail("safetensors '", fname, "': mmap failed: ", std::strerror(e));
    st->map = p;
    st->map_size = size;
    st->data = static_cast<const std::byte*>(p);
    st->size = size;
#else
    std::ifstream in(file, std::ios::binary);
    if (!in) fail("safetensors '", fname, "': cannot open");
    in.seekg(0, std::ios::end);
    const auto end = in.tellg();
    require(end >= 0, "safetensors '", fname, "': cannot determine the file size");
    st->owned.resize(static_cast<std::size_t>(end));
    in.seekg(0);
    in.read(reinterpret_cast<char*>(st->owned.data()), static_cast<std::streamsize>(st->owned.size()));
    require(static_cast<bool>(in), "safetensors '", fname, "': read failed");
    st->data = st->owned.data();
    st->size = st->owned.size();
#endif
    return st;
}

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
        auto st = detail::load_file(file);
        const std::span<const std::byte> bytes(st->data, st->size);
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
    reader(std::shared_ptr<const detail::storage> keep, std::span<const std::byte> file, std::string source)
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

    std::shared_ptr<const detail::storage> keep_;
    std::string source_;
    std::span<const std::byte> data_;
    std::vector<tensor_info> tensors_;
    std::map<std::string, std::string, std::less<>> metadata_;
};

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

    /// Writes `file` atomically: into `file.tmp` first, renamed on success, so a
    /// failed write never leaves a truncated file under the final name.
    void write(const std::filesystem::path& file) const {
        const std::string fname = file.string();
        std::filesystem::path tmp = file;
        tmp += ".tmp";
        try {
            {
                std::ofstream os(tmp, std::ios::binary | std::ios::trunc);
                require(static_cast<bool>(os), "safetensors '", fname, "': cannot open '", tmp.string(),
                        "' for writing");
                write(os, fname);
            }
            std::error_code ec;
            std::filesystem::rename(tmp, file, ec);
            require(!ec, "safetensors '", fname, "': cannot rename temporary file: ", ec.message());
        } catch (...) {
            std::error_code ec;
            std::filesystem::remove(tmp, ec);
            throw;
        }
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
