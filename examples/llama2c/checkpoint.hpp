#pragma once
/// @file checkpoint.hpp
/// @brief Loader and saver for llama2.c version-0 checkpoints.
///
/// Layout: 7 little-endian int32 (dim, hidden_dim, n_layers, n_heads,
/// n_kv_heads, vocab_size, seq_len), then fp32 arrays: embedding, rms_att,
/// wq, wk, wv, wo, rms_ffn, w1, w2, w3 (each stacked over layers), rms_final,
/// seq_len × head_size/2 RoPE cosines and as many sines (ignored on load,
/// recomputed on save), and, when vocab_size < 0, a separate classifier.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "tcq/io/atomic_file.hpp"
#include "model.hpp"

namespace l2c {

static_assert(std::endian::native == std::endian::little, "llama2.c checkpoints are little-endian");

/// Size of the version-0 header in bytes.
inline constexpr std::size_t checkpoint_header_bytes = 7 * sizeof(std::int32_t);

/// Decodes and validates a header; `what` names the file in errors.
[[nodiscard]] inline config parse_checkpoint_header(std::span<const std::byte> bytes, std::string_view what) {
    tcq::require(bytes.size() >= checkpoint_header_bytes, what, ": truncated header (", bytes.size(),
                 " bytes, need ", checkpoint_header_bytes, ")");
    std::int32_t h[7];
    std::memcpy(h, bytes.data(), sizeof h);
    config c;
    c.dim = h[0];
    c.hidden_dim = h[1];
    c.n_layers = h[2];
    c.n_heads = h[3];
    c.n_kv_heads = h[4];
    c.shared_classifier = h[5] > 0;
    // -INT32_MIN overflows; the bound check below rejects it either way.
    c.vocab_size = h[5] == INT32_MIN ? 0 : (h[5] < 0 ? -index_t{h[5]} : index_t{h[5]});
    c.seq_len = h[6];
    validate(c, std::string(what) + ": header");
    return c;
}

/// Exact file size in bytes implied by a config (header included).
[[nodiscard]] inline std::uint64_t checkpoint_bytes(const config& c) {
    const std::uint64_t d = c.dim, f = c.hidden_dim, l = c.n_layers, kv = c.kv_dim(), v = c.vocab_size;
    std::uint64_t floats = v * d                   // embedding
                           + l * d * 2             // rms_att, rms_ffn
                           + l * (2 * d * d + 2 * kv * d + 3 * f * d)  // linears
                           + d                     // rms_final
                           + std::uint64_t(c.seq_len) * c.head_size();  // rope cos + sin
    if (!c.shared_classifier) floats += v * d;
    return checkpoint_header_bytes + floats * sizeof(float);
}

/// Parses a whole checkpoint held in memory. Throws tcq::error naming `what`
/// on a bad header, a size that does not match the header exactly, or a
/// non-finite weight.
[[nodiscard]] inline model parse_checkpoint(std::span<const std::byte> bytes, std::string_view what) {
    const config c = parse_checkpoint_header(bytes, what);
    const std::uint64_t want = checkpoint_bytes(c);
    tcq::require(bytes.size() == want, what, ": size mismatch: the header (dim ", c.dim, ", hidden ",
                 c.hidden_dim, ", layers ", c.n_layers, ", vocab ", c.vocab_size, ", seq_len ", c.seq_len,
                 ") needs exactly ", want, " bytes, the file has ", bytes.size(),
                 bytes.size() < want ? " (truncated)" : " (trailing data)");
    model m(c, what);
    std::size_t off = checkpoint_header_bytes;
    auto read = [&](float* dst, index_t count, const std::string& name) {
        const std::size_t n = static_cast<std::size_t>(count) * sizeof(float);
        std::memcpy(dst, bytes.data() + off, n);
        off += n;
        for (index_t i = 0; i < count; ++i)
            if (!std::isfinite(dst[i])) tcq::fail(what, ": non-finite value ", dst[i], " in ", name, " at index ", i);
    };
    auto stacked = [&](auto get, const char* name) {
        for (index_t l = 0; l < c.n_layers; ++l) {
            auto [p, n] = get(m.layers[static_cast<std::size_t>(l)]);
            read(p, n, "layers." + std::to_string(l) + "." + name);
        }
    };
    read(m.embedding.data(), m.embedding.size(), "token_embedding");
    stacked([&](block_weights& b) { return std::pair{b.rms_att.data(), c.dim}; }, "rms_att");
    for (auto k : {linear_kind::wq, linear_kind::wk, linear_kind::wv, linear_kind::wo})
        stacked([&](block_weights& b) { return std::pair{b[k].data(), b[k].size()}; }, kind_name(k).data());
    stacked([&](block_weights& b) { return std::pair{b.rms_ffn.data(), c.dim}; }, "rms_ffn");
    for (auto k : {linear_kind::w1, linear_kind::w2, linear_kind::w3})
        stacked([&](block_weights& b) { return std::pair{b[k].data(), b[k].size()}; }, kind_name(k).data());
    read(m.rms_final.data(), c.dim, "rms_final");
    off += static_cast<std::size_t>(c.seq_len * c.head_size()) * sizeof(float);  // RoPE tables
    if (!c.shared_classifier) read(m.wcls.data(), m.wcls.size(), "wcls");
    return m;
}

/// Reads a file into memory; throws tcq::error naming the path.
[[nodiscard]] inline std::vector<std::byte> read_file_bytes(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    tcq::require(static_cast<bool>(in), path.string(), ": cannot open for reading");
    in.seekg(0, std::ios::end);
    const auto size = in.tellg();
    tcq::require(size >= 0, path.string(), ": cannot determine the file size");
    in.seekg(0);
    std::vector<std::byte> bytes(static_cast<std::size_t>(size));
    in.read(reinterpret_cast<char*>(bytes.data()), size);
    tcq::require(in.gcount() == size, path.string(), ": read failed");
    return bytes;
}

/// Loads a llama2.c checkpoint; errors name the file and the problem.
[[nodiscard]] inline model load_checkpoint(const std::filesystem::path& path) {
    const auto bytes = read_file_bytes(path);
    return parse_checkpoint(bytes, path.string());
}

/// Serializes `m` in the version-0 layout (vocab_size negative when the
/// classifier is separate). RoPE tables are written as run.c computes them.
[[nodiscard]] inline std::vector<std::byte> serialize_checkpoint(const model& m) {
    const config& c = m.cfg();
    std::vector<std::byte> out(checkpoint_bytes(c));
    const std::int32_t h[7] = {static_cast<std::int32_t>(c.dim), static_cast<std::int32_t>(c.hidden_dim),
                               static_cast<std::int32_t>(c.n_layers), static_cast<std::int32_t>(c.n_heads),
                               static_cast<std::int32_t>(c.n_kv_heads),
                               static_cast<std::int32_t>(c.shared_classifier ? c.vocab_size : -c.vocab_size),
                               static_cast<std::int32_t>(c.seq_len)};
    std::memcpy(out.data(), h, sizeof h);
    std::size_t off = sizeof h;
    auto put = [&](const float* p, index_t n) {
        std::memcpy(out.data() + off, p, static_cast<std::size_t>(n) * sizeof(float));
        off += static_cast<std::size_t>(n) * sizeof(float);
    };
    put(m.embedding.data(), m.embedding.size());
    for (const auto& b : m.layers) put(b.rms_att.data(), c.dim);
    for (auto k : {linear_kind::wq, linear_kind::wk, linear_kind::wv, linear_kind::wo})
        for (const auto& b : m.layers) put(b[k].data(), b[k].size());
    for (const auto& b : m.layers) put(b.rms_ffn.data(), c.dim);
    for (auto k : {linear_kind::w1, linear_kind::w2, linear_kind::w3})
        for (const auto& b : m.layers) put(b[k].data(), b[k].size());
    put(m.rms_final.data(), c.dim);
    const index_t half = c.head_size() / 2;
    for (index_t p = 0; p < c.seq_len; ++p) put(m.rope_cos(p), half);
    for (index_t p = 0; p < c.seq_len; ++p) put(m.rope_sin(p), half);
    if (!c.shared_classifier) put(m.wcls.data(), m.wcls.size());
    return out;
}

/// Writes `m` to `path`; throws tcq::error naming the path on failure.
inline void save_checkpoint(const model& m, const std::filesystem::path& path) {
    const auto bytes = serialize_checkpoint(m);
    tcq::write_atomically(path, path.string(), [&](std::ostream& out) {
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    });
}

}  // namespace l2c
