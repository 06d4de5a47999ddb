#pragma once
/// @file checkpoint.hpp
/// @brief Loaders of the engine: a Hugging Face directory (config.json +
/// safetensors, single or sharded; F32/F16/BF16 converted once to fp32) and a
/// llama2.c version-0 file (interleaved RoPE); and the HF-layout writer.

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "model.hpp"
#include "tcq/io/safetensors_dir.hpp"

namespace llama {

namespace st = tcq::safetensors;

/// What a checkpoint tensor holds.
enum class tensor_part { embedding, attn_norm, weight, bias, q_norm, k_norm, ffn_norm, final_norm, lm_head };

/// One tensor of the HF layout of a config.
struct tensor_ref {
    std::string name;            ///< HF name
    std::vector<index_t> shape;  ///< dimensions
    tensor_part part;            ///< what it holds
    index_t layer = -1;          ///< block, or −1
    linear_kind kind = linear_kind::q;  ///< for weight/bias
    /// RMSNorm gains (initialized to 1, not random).
    [[nodiscard]] bool is_gain() const {
        return part == tensor_part::attn_norm || part == tensor_part::ffn_norm || part == tensor_part::q_norm ||
               part == tensor_part::k_norm || part == tensor_part::final_norm;
    }
};

/// Every tensor a checkpoint of `c` has, in checkpoint order.
[[nodiscard]] inline std::vector<tensor_ref> hf_layout(const config& c) {
    std::vector<tensor_ref> out;
    out.push_back({"model.embed_tokens.weight", {c.vocab_size, c.dim}, tensor_part::embedding});
    for (index_t l = 0; l < c.n_layers; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        out.push_back({p + "input_layernorm.weight", {c.dim}, tensor_part::attn_norm, l});
        for (auto k : all_linear_kinds) {
            const auto [r, cc] = linear_shape(c, k);
            out.push_back({linear_name(l, k) + ".weight", {r, cc}, tensor_part::weight, l, k});
            if (has_bias(c, k)) out.push_back({linear_name(l, k) + ".bias", {r}, tensor_part::bias, l, k});
        }
        if (c.qk_norm) {
            out.push_back({p + "self_attn.q_norm.weight", {c.head_dim}, tensor_part::q_norm, l});
            out.push_back({p + "self_attn.k_norm.weight", {c.head_dim}, tensor_part::k_norm, l});
        }
        out.push_back({p + "post_attention_layernorm.weight", {c.dim}, tensor_part::ffn_norm, l});
    }
    out.push_back({"model.norm.weight", {c.dim}, tensor_part::final_norm});
    if (!c.tied) out.push_back({"lm_head.weight", {c.vocab_size, c.dim}, tensor_part::lm_head});
    return out;
}

/// Where tensor `t` lives in `m` (fp32, row-major, numel of t.shape).
[[nodiscard]] inline float* data_of(model& m, const tensor_ref& t) {
    if (t.layer < 0) {
        switch (t.part) {
            case tensor_part::embedding: return m.embedding.data();
            case tensor_part::lm_head: return m.lm_head.data();
            default: return m.final_norm.data();
        }
    }
    auto& b = m.layers.at(static_cast<std::size_t>(t.layer));
    switch (t.part) {
        case tensor_part::attn_norm: return b.attn_norm.data();
        case tensor_part::ffn_norm: return b.ffn_norm.data();
        case tensor_part::q_norm: return b.q_norm.data();
        case tensor_part::k_norm: return b.k_norm.data();
        case tensor_part::weight: return b[t.kind].data();
        default: return b.b[static_cast<std::size_t>(t.kind)].data();
    }
}

/// Elements of a shape.
[[nodiscard]] inline index_t numel(const std::vector<index_t>& shape) {
    index_t n = 1;
    for (index_t d : shape) n *= d;
    return n;
}

/// One named tensor of a model and where its fp32 values live.
struct tensor_slot {
    std::string name;            ///< HF name
    std::vector<index_t> shape;  ///< dimensions
    float* data;                 ///< numel(shape) floats in the model
};

/// Every tensor of `m` under its HF name, in checkpoint order.
[[nodiscard]] inline std::vector<tensor_slot> hf_tensors(model& m) {
    std::vector<tensor_slot> out;
    for (auto& t : hf_layout(m.cfg())) out.push_back({t.name, t.shape, data_of(m, t)});
    return out;
}

/// `dir`/config.json; throws unless `dir` is a directory that has one.
[[nodiscard]] inline std::filesystem::path hf_config_path(const std::filesystem::path& dir) {
    std::error_code ec;
    tcq::require(std::filesystem::is_directory(dir, ec), dir.string(), ": not a directory");
    auto cfg_path = dir / "config.json";
    tcq::require(std::filesystem::is_regular_file(cfg_path, ec), dir.string(), ": no config.json");
    return cfg_path;
}

/// Loads a Hugging Face checkpoint directory. Every tensor the config needs
/// is checked for presence, dtype (F32/F16/BF16) and shape, and for finite
/// values; an unexpected tensor (e.g. a bias the config does not announce) is
/// an error too. Errors name the tensor and the file. Peak memory: the fp32
/// model plus the mapped files (page cache, released on return). `files`
/// is the directory's safetensors, already open (the caller keeps them mapped).
[[nodiscard]] inline model load_hf(const std::filesystem::path& dir, const st::directory& files) {
    const auto cfg_path = hf_config_path(dir);
    const config c = parse_hf_config(st::directory::read_text(cfg_path), cfg_path.string());
    model m(c, cfg_path.string());
    auto slots = hf_tensors(m);
    std::set<std::string, std::less<>> wanted;
    for (const auto& s : slots) files.expect(s.name, s.shape);  // all checks before any conversion
    for (auto& s : slots) {
        wanted.insert(s.name);
        const index_t n = numel(s.shape);
        files.to_float(s.name, {s.data, static_cast<std::size_t>(n)});
        for (index_t i = 0; i < n; ++i)
            if (!std::isfinite(s.data[i]))
                tcq::fail(files.shard_of(s.name).source(), ": tensor '", s.name, "' has the non-finite value ",
                          s.data[i], " at flat index ", i);
    }
    for (const auto& n : files.names()) {
        const bool ignorable = n.ends_with(".rotary_emb.inv_freq") || (c.tied && n == "lm_head.weight");
        tcq::require(wanted.count(n) || ignorable, files.shard_of(n).source(), ": tensor '", n,
                     "' is not part of a ", c.architecture, " with this config (refusing to ignore it)");
    }
    return m;
}

/// load_hf on the directory's own safetensors, opened here.
[[nodiscard]] inline model load_hf(const std::filesystem::path& dir) {
    (void)hf_config_path(dir);  // its errors come before the shards'
    return load_hf(dir, st::directory::open(dir));
}

/// Options of `save_hf`.
struct save_options {
    st::dtype type = st::dtype::BF16;               ///< stored dtype
    std::uint64_t max_shard_bytes = 5'000'000'000;  ///< transformers' default 5 GB
    /// Extra files copied into the directory (name → contents), e.g. tokenizer.json.
    std::vector<std::pair<std::string, std::string>> files;
};

/// Writes `m` as an HF checkpoint directory (config.json + safetensors,
/// sharded with an index past the size limit), atomically. An interleaved-RoPE
/// model has its q/k rows permuted to rotate-half order first, so
/// transformers computes the same function.
inline void save_hf(const model& src, const std::filesystem::path& dir, const save_options& opt = {}) {
    model m = src;
    config c = m.cfg();
    if (c.rope == rope_pairs::interleaved) {
        const index_t hd = c.head_dim, half = hd / 2;
        auto permute = [&](RowMatrixXf& w, index_t heads) {
            RowMatrixXf out(w.rows(), w.cols());
            for (index_t h = 0; h < heads; ++h)
                for (index_t i = 0; i < half; ++i) {
                    out.row(h * hd + i) = w.row(h * hd + 2 * i);
                    out.row(h * hd + half + i) = w.row(h * hd + 2 * i + 1);
                }
            w = std::move(out);
        };
        auto permute_bias = [&](rowvec& b, index_t heads) {
            if (!b.size()) return;
            RowMatrixXf t = b.transpose();
            permute(t, heads);
            b = t.transpose();
        };
        for (auto& blk : m.layers) {
            permute(blk[linear_kind::q], c.n_heads);
            permute(blk[linear_kind::k], c.n_kv_heads);
            permute_bias(blk.b[static_cast<std::size_t>(linear_kind::q)], c.n_heads);
            permute_bias(blk.b[static_cast<std::size_t>(linear_kind::k)], c.n_kv_heads);
            tcq::require(!c.qk_norm, "save_hf: interleaved RoPE with qk-norm has no HF equivalent");
        }
        c.rope = rope_pairs::half;
    }
    std::vector<st::tensor_out> out;
    for (auto& s : hf_tensors(m)) {
        const index_t n = numel(s.shape);
        const float* p = s.data;
        out.push_back({s.name, s.shape, [p, n](std::span<float> v) { std::memcpy(v.data(), p, sizeof(float) * n); }});
    }
    auto files = opt.files;
    files.insert(files.begin(), {"config.json", to_hf_config(c)});
    st::write_directory(dir, out, opt.type, opt.max_shard_bytes, files);
}

/// Loads a llama2.c version-0 checkpoint (7 int32 header: dim, hidden_dim,
/// n_layers, n_heads, n_kv_heads, vocab_size (negative: separate classifier),
/// seq_len; then fp32 arrays) as an interleaved-RoPE Llama with eps 1e-5 and
/// BOS 1 / EOS 2. Errors name the file and the problem.
[[nodiscard]] inline model load_llama2c(const std::filesystem::path& path) {
    static_assert(std::endian::native == std::endian::little, "llama2.c checkpoints are little-endian");
    const std::string what = path.string();
    std::ifstream in(path, std::ios::binary);
    tcq::require(static_cast<bool>(in), what, ": cannot open for reading");
    std::int32_t h[7] = {};
    in.read(reinterpret_cast<char*>(h), sizeof h);
    tcq::require(in.gcount() == sizeof h, what, ": truncated header (", in.gcount(), " bytes, need 28)");
    config c;
    c.dim = h[0];
    c.hidden_dim = h[1];
    c.n_layers = h[2];
    c.n_heads = h[3];
    c.n_kv_heads = h[4];
    c.tied = h[5] > 0;
    c.vocab_size = h[5] == INT32_MIN ? 0 : (h[5] < 0 ? -index_t{h[5]} : index_t{h[5]});
    c.max_seq = h[6];
    tcq::require(c.n_heads >= 1 && c.dim % c.n_heads == 0, what, ": header: n_heads = ", c.n_heads,
                 " does not divide dim = ", c.dim);
    c.head_dim = c.dim / c.n_heads;
    c.rope = rope_pairs::interleaved;
    c.norm_eps = 1e-5f;
    c.bos_token_id = 1;
    c.eos_token_id = 2;
    validate(c, what + ": header");
    model m(c, what);
    const std::uint64_t d = c.dim, f = c.hidden_dim, L = c.n_layers, kv = c.kv_dim(), v = c.vocab_size;
    std::uint64_t floats = v * d + L * d * 2 + L * (2 * d * d + 2 * kv * d + 3 * f * d) + d +
                           static_cast<std::uint64_t>(c.max_seq) * c.head_dim;
    if (!c.tied) floats += v * d;
    in.seekg(0, std::ios::end);
    const auto size = static_cast<std::uint64_t>(in.tellg());
    const std::uint64_t want = 28 + floats * 4;
    tcq::require(size == want, what, ": size mismatch: the header needs exactly ", want, " bytes, the file has ", size,
                 size < want ? " (truncated)" : " (trailing data)");
    in.seekg(28);
    auto read = [&](float* dst, index_t count, const std::string& name) {
        in.read(reinterpret_cast<char*>(dst), static_cast<std::streamsize>(count * 4));
        tcq::require(static_cast<bool>(in), what, ": read failed in ", name);
        for (index_t i = 0; i < count; ++i)
            if (!std::isfinite(dst[i])) tcq::fail(what, ": non-finite value ", dst[i], " in ", name, " at index ", i);
    };
    auto stacked = [&](auto get, const char* name) {
        for (index_t l = 0; l < c.n_layers; ++l) {
            auto [p, n] = get(m.layers[static_cast<std::size_t>(l)]);
            read(p, n, "layers." + std::to_string(l) + "." + name);
        }
    };
    auto mat = [&](linear_kind k) {
        return [k](block_weights& b) { return std::pair{b[k].data(), b[k].size()}; };
    };
    read(m.embedding.data(), m.embedding.size(), "token_embedding");
    stacked([&](block_weights& b) { return std::pair{b.attn_norm.data(), c.dim}; }, "rms_att");
    stacked(mat(linear_kind::q), "wq");
    stacked(mat(linear_kind::k), "wk");
    stacked(mat(linear_kind::v), "wv");
    stacked(mat(linear_kind::o), "wo");
    stacked([&](block_weights& b) { return std::pair{b.ffn_norm.data(), c.dim}; }, "rms_ffn");
    stacked(mat(linear_kind::gate), "w1");
    stacked(mat(linear_kind::down), "w2");
    stacked(mat(linear_kind::up), "w3");
    read(m.final_norm.data(), c.dim, "rms_final");
    in.seekg(static_cast<std::streamoff>(c.max_seq * c.head_dim * 4), std::ios::cur);  // RoPE tables (recomputed)
    if (!c.tied) read(m.lm_head.data(), m.lm_head.size(), "wcls");
    return m;
}

/// Loads `path`: a directory is an HF checkpoint, a file a llama2.c checkpoint.
/// `files`: the directory's safetensors if the caller has them open already.
[[nodiscard]] inline model load_model(const std::filesystem::path& path, const st::directory* files = nullptr) {
    std::error_code ec;
    if (!std::filesystem::is_directory(path, ec)) return load_llama2c(path);
    return files ? load_hf(path, *files) : load_hf(path);
}

}  // namespace llama
