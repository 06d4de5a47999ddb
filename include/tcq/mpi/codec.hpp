#pragma once
/// @file codec.hpp
/// @brief Byte encodings of the accumulators and tree nodes that ranks exchange
/// (native endianness and float format: every rank runs the same build).

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "tcq/core/chunk_tree.hpp"
#include "tcq/core/error.hpp"
#include "tcq/gptq/hessian.hpp"
#include "tcq/saliency/accumulator.hpp"

namespace tcq::mpi {

/// Appends trivially copyable values to a byte buffer.
struct byte_writer {
    std::vector<std::uint8_t> out;  ///< bytes written so far
    /// Appends one value.
    template <class T>
    void put(const T& v) {
        static_assert(std::is_trivially_copyable_v<T>);
        const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
        out.insert(out.end(), p, p + sizeof(T));
    }
    /// Appends a span of values.
    template <class T>
    void put_span(std::span<const T> v) {
        static_assert(std::is_trivially_copyable_v<T>);
        const auto* p = reinterpret_cast<const std::uint8_t*>(v.data());
        out.insert(out.end(), p, p + v.size_bytes());
    }
};

/// Reads what byte_writer wrote; throws tcq::error on truncation.
struct byte_reader {
    std::span<const std::uint8_t> in;  ///< the bytes
    std::size_t pos = 0;               ///< read position
    std::string what = "message";      ///< names the message in errors
    /// Reads one value.
    template <class T>
    T get() {
        T v;
        read(&v, sizeof(T));
        return v;
    }
    /// Reads n values.
    template <class T>
    std::vector<T> get_vector(std::size_t n) {
        require(n <= (in.size() - pos) / sizeof(T), what, ": truncated (", n, " values announced at byte ", pos, ")");
        std::vector<T> v(n);
        read(v.data(), n * sizeof(T));
        return v;
    }
    /// Throws unless every byte was read.
    void done() const { require(pos == in.size(), what, ": ", in.size() - pos, " trailing bytes"); }

private:
    void read(void* dst, std::size_t n) {
        require(n <= in.size() - pos, what, ": truncated at byte ", pos);
        std::memcpy(dst, in.data() + pos, n);
        pos += n;
    }
};

/// Encoding of hessian_accumulator<T>: cols, samples, H.
template <class T>
struct hessian_codec {
    /// Appends h.
    static void put(byte_writer& w, const hessian_accumulator<T>& h) {
        w.put<std::int64_t>(h.cols());
        w.put<std::int64_t>(h.samples());
        const auto v = h.view();
        w.put_span<T>({v.data(), static_cast<std::size_t>(v.size())});
    }
    /// Reads one.
    static hessian_accumulator<T> get(byte_reader& r) {
        const auto cols = r.get<std::int64_t>(), n = r.get<std::int64_t>();
        require(cols >= 0 && cols < (std::int64_t{1} << 31), r.what, ": bad Hessian column count ", cols);
        const auto h = r.get_vector<T>(static_cast<std::size_t>(cols * cols));
        return hessian_accumulator<T>::from_state(cols, n, h);
    }
};

/// Encoding of grad_accumulator: rows, cols, statistics, samples, the sums.
struct grad_codec {
    std::string name = "grad_accumulator";  ///< name given to decoded accumulators
    /// Appends g.
    static void put(byte_writer& w, const grad_accumulator& g) {
        w.put<std::int64_t>(g.rows());
        w.put<std::int64_t>(g.cols());
        w.put<std::uint32_t>(static_cast<std::uint32_t>(g.stats()));
        w.put<std::int64_t>(g.samples());
        const auto n = static_cast<std::size_t>(g.rows() * g.cols());
        if (contains(g.stats(), grad_stats::abs_sum)) w.put_span<float>({g.abs_sum().data(), n});
        if (contains(g.stats(), grad_stats::sum)) w.put_span<float>({g.sum().data(), n});
        if (contains(g.stats(), grad_stats::sq_sum)) w.put_span<float>({g.sq_sum().data(), n});
    }
    /// Reads one.
    grad_accumulator get(byte_reader& r) const {
        const auto rows = r.get<std::int64_t>(), cols = r.get<std::int64_t>();
        const auto stats = static_cast<grad_stats>(r.get<std::uint32_t>());
        const auto n = r.get<std::int64_t>();
        require(rows >= 0 && cols >= 0 && rows < (std::int64_t{1} << 31) && cols < (std::int64_t{1} << 31), r.what,
                ": bad gradient shape ", rows, "x", cols);
        const auto sz = static_cast<std::size_t>(rows * cols);
        std::vector<float> a, s, q;
        if (contains(stats, grad_stats::abs_sum)) a = r.get_vector<float>(sz);
        if (contains(stats, grad_stats::sum)) s = r.get_vector<float>(sz);
        if (contains(stats, grad_stats::sq_sum)) q = r.get_vector<float>(sz);
        return grad_accumulator::from_sums(rows, cols, stats, n, a, s, q, name);
    }
};

/// Encodes tree nodes: count, then per node lo, hi and the value.
template <class P, class Codec>
[[nodiscard]] std::vector<std::uint8_t> encode_nodes(std::span<const tree_node<P>> nodes, const Codec& codec) {
    byte_writer w;
    w.put<std::uint64_t>(nodes.size());
    for (const auto& n : nodes) {
        w.put<std::int64_t>(n.lo);
        w.put<std::int64_t>(n.hi);
        codec.put(w, n.value);
    }
    return std::move(w.out);
}

/// Decodes what encode_nodes wrote.
template <class P, class Codec>
[[nodiscard]] std::vector<tree_node<P>> decode_nodes(std::span<const std::uint8_t> in, const Codec& codec,
                                                     std::string what) {
    byte_reader r{in, 0, std::move(what)};
    const auto n = r.get<std::uint64_t>();
    require(n <= in.size() / 16, r.what, ": ", n, " nodes do not fit in ", in.size(), " bytes");
    std::vector<tree_node<P>> out;
    out.reserve(static_cast<std::size_t>(n));
    for (std::uint64_t i = 0; i < n; ++i) {
        const auto lo = r.get<std::int64_t>(), hi = r.get<std::int64_t>();
        out.push_back({lo, hi, codec.get(r)});
    }
    r.done();
    return out;
}

}  // namespace tcq::mpi
