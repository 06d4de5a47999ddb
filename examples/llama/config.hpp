#pragma once
/// @file config.hpp
/// @brief Hyper-parameters of a Llama-family model and the parser of Hugging
/// Face `config.json` for LlamaForCausalLM, MistralForCausalLM,
/// Qwen2ForCausalLM and Qwen3ForCausalLM. Every value the engine does not
/// implement is an error naming the key and its value (docs/models.md).

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "tcq/core/error.hpp"
#include "tcq/core/matrix_view.hpp"

namespace llama {

using tcq::index_t;

/// Which RoPE pairing: HF rotates (x[i], x[i + d/2]); llama2.c (x[2i], x[2i+1]).
enum class rope_pairs : std::uint8_t { half, interleaved };

/// Llama-3.1/3.2 `rope_scaling` with `rope_type: "llama3"`.
struct llama3_scaling {
    double factor = 1;
    double low_freq_factor = 1;
    double high_freq_factor = 4;
    index_t original_max_position_embeddings = 8192;
    friend bool operator==(const llama3_scaling&, const llama3_scaling&) = default;
};

/// Everything the engine needs to know about a model.
struct config {
    std::string architecture = "LlamaForCausalLM";  ///< HF class name
    index_t dim = 0;         ///< hidden_size
    index_t hidden_dim = 0;  ///< intermediate_size (SwiGLU width)
    index_t n_layers = 0;    ///< num_hidden_layers
    index_t n_heads = 0;     ///< num_attention_heads
    index_t n_kv_heads = 0;  ///< num_key_value_heads (GQA)
    index_t head_dim = 0;    ///< head_dim (default hidden_size / heads)
    index_t vocab_size = 0;
    index_t max_seq = 0;     ///< max_position_embeddings: longest sequence accepted
    double rope_theta = 10000;
    float norm_eps = 1e-5f;  ///< rms_norm_eps
    rope_pairs rope = rope_pairs::half;
    std::optional<llama3_scaling> scaling;  ///< llama3 rope scaling
    bool tied = false;       ///< tie_word_embeddings: the classifier is the embedding
    bool qkv_bias = false;   ///< q/k/v projections have biases (Qwen2, Llama attention_bias)
    bool o_bias = false;     ///< o projection has a bias (Llama attention_bias)
    bool mlp_bias = false;   ///< gate/up/down have biases (Llama mlp_bias)
    bool qk_norm = false;    ///< per-head RMSNorm of q and k before RoPE (Qwen3)
    index_t sliding_window = 0;  ///< active sliding window; 0: none (sequences longer than it are rejected)
    std::int64_t bos_token_id = -1;  ///< -1: none given
    std::int64_t eos_token_id = -1;

    [[nodiscard]] index_t q_dim() const { return n_heads * head_dim; }
    [[nodiscard]] index_t kv_dim() const { return n_kv_heads * head_dim; }
    [[nodiscard]] index_t kv_mul() const { return n_heads / n_kv_heads; }
    friend bool operator==(const config&, const config&) = default;
};

/// Throws tcq::error unless the sizes are positive, bounded (a corrupt file
/// cannot ask for terabytes) and consistent; `what` names the source.
inline void validate(const config& c, std::string_view what) {
    auto in = [&](index_t v, index_t hi, const char* field) {
        tcq::require(v >= 1 && v <= hi, what, ": ", field, " = ", v, " is outside [1, ", hi, "]");
    };
    in(c.dim, index_t{1} << 16, "hidden_size");
    in(c.hidden_dim, index_t{1} << 18, "intermediate_size");
    in(c.n_layers, 1024, "num_hidden_layers");
    in(c.n_heads, 1024, "num_attention_heads");
    in(c.n_kv_heads, c.n_heads, "num_key_value_heads");
    in(c.head_dim, 4096, "head_dim");
    in(c.vocab_size, index_t{1} << 22, "vocab_size");
    in(c.max_seq, index_t{1} << 24, "max_position_embeddings");
    tcq::require(c.n_heads % c.n_kv_heads == 0, what, ": num_key_value_heads = ", c.n_kv_heads,
                 " does not divide num_attention_heads = ", c.n_heads);
    tcq::require(c.head_dim % 2 == 0, what, ": head_dim = ", c.head_dim, " is odd (RoPE rotates pairs)");
    tcq::require(std::isfinite(c.rope_theta) && c.rope_theta > 1, what, ": rope_theta = ", c.rope_theta,
                 " must be a finite number > 1");
    tcq::require(std::isfinite(c.norm_eps) && c.norm_eps > 0 && c.norm_eps < 1, what, ": rms_norm_eps = ", c.norm_eps,
                 " is outside (0, 1)");
    tcq::require(c.sliding_window >= 0, what, ": sliding_window = ", c.sliding_window, " is negative");
    if (c.scaling) {
        const auto& s = *c.scaling;
        tcq::require(std::isfinite(s.factor) && s.factor >= 1, what, ": rope_scaling.factor = ", s.factor,
                     " must be >= 1");
        tcq::require(std::isfinite(s.low_freq_factor) && std::isfinite(s.high_freq_factor) && s.low_freq_factor > 0 &&
                         s.high_freq_factor > s.low_freq_factor,
                     what, ": rope_scaling low_freq_factor = ", s.low_freq_factor, ", high_freq_factor = ",
                     s.high_freq_factor, " need 0 < low < high");
        tcq::require(s.original_max_position_embeddings >= 1, what,
                     ": rope_scaling.original_max_position_embeddings = ", s.original_max_position_embeddings,
                     " must be positive");
    }
}

namespace detail {

/// Typed access to config.json keys with errors naming the key and value.
class keys {
public:
    keys(const nlohmann::json& j, std::string_view what) : j_(j), what_(what) {}

    [[nodiscard]] const nlohmann::json* find(const char* key) const {
        const auto it = j_.find(key);
        return it == j_.end() || it->is_null() ? nullptr : &*it;
    }
    [[nodiscard]] index_t integer(const char* key) const {
        const auto* v = find(key);
        tcq::require(v != nullptr, what_, ": missing field '", key, "'");
        return as_int(*v, key);
    }
    [[nodiscard]] index_t integer(const char* key, index_t dflt) const {
        const auto* v = find(key);
        return v ? as_int(*v, key) : dflt;
    }
    [[nodiscard]] double number(const char* key, double dflt) const {
        const auto* v = find(key);
        if (!v) return dflt;
        tcq::require(v->is_number(), what_, ": field '", key, "' is not a number: ", v->dump());
        return v->get<double>();
    }
    [[nodiscard]] bool flag(const char* key, bool dflt) const {
        const auto* v = find(key);
        if (!v) return dflt;
        tcq::require(v->is_boolean(), what_, ": field '", key, "' is not true/false: ", v->dump());
        return v->get<bool>();
    }
    [[nodiscard]] std::string text(const char* key, std::string dflt) const {
        const auto* v = find(key);
        if (!v) return dflt;
        tcq::require(v->is_string(), what_, ": field '", key, "' is not a string: ", v->dump());
        return v->get<std::string>();
    }
    [[nodiscard]] index_t as_int(const nlohmann::json& v, const char* key) const {
        tcq::require(v.is_number_integer() || v.is_number_unsigned(), what_, ": field '", key,
                     "' is not an integer: ", v.dump());
        tcq::require(v.is_number_unsigned() || v.get<std::int64_t>() >= -1, what_, ": field '", key, "' = ", v.dump(),
                     " is negative");
        tcq::require(!v.is_number_unsigned() || v.get<std::uint64_t>() <= (std::uint64_t{1} << 40), what_,
                     ": field '", key, "' = ", v.dump(), " is too large");
        return static_cast<index_t>(v.get<std::int64_t>());
    }
    [[noreturn]] void unsupported(const char* key, const nlohmann::json& v, std::string_view why) const {
        tcq::fail(what_, ": unsupported ", key, " = ", v.dump(), " (", why, ")");
    }

private:
    const nlohmann::json& j_;
    std::string_view what_;
};

}  // namespace detail

/// Parses config.json text. `what` names the file in errors. Required:
/// hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
/// vocab_size and an `architectures` entry the engine knows; the other keys
/// take the transformers defaults of that architecture.
[[nodiscard]] inline config parse_hf_config(std::string_view text, std::string_view what) {
    const nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
    tcq::require(!j.is_discarded(), what, ": not valid JSON");
    tcq::require(j.is_object(), what, ": the top level is not a JSON object");
    const detail::keys k(j, what);
    config c;

    const auto* arch = k.find("architectures");
    tcq::require(arch != nullptr, what, ": missing field 'architectures'");
    tcq::require(arch->is_array() && arch->size() == 1 && (*arch)[0].is_string(), what,
                 ": field 'architectures' must list exactly one class name: ", arch->dump());
    c.architecture = (*arch)[0].get<std::string>();
    const bool is_llama = c.architecture == "LlamaForCausalLM", is_mistral = c.architecture == "MistralForCausalLM",
               is_qwen2 = c.architecture == "Qwen2ForCausalLM", is_qwen3 = c.architecture == "Qwen3ForCausalLM";
    if (!(is_llama || is_mistral || is_qwen2 || is_qwen3))
        k.unsupported("architectures", *arch,
                      "supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM");
    const char* want_type = is_llama ? "llama" : is_mistral ? "mistral" : is_qwen2 ? "qwen2" : "qwen3";
    const std::string mt = k.text("model_type", want_type);
    tcq::require(mt == want_type, what, ": field 'model_type' = \"", mt, "\" contradicts architectures ",
                 c.architecture, " (expected \"", want_type, "\")");
    if (const auto* q = k.find("quantization_config")) k.unsupported("quantization_config", *q, "already quantized");

    c.dim = k.integer("hidden_size");
    c.hidden_dim = k.integer("intermediate_size");
    c.n_layers = k.integer("num_hidden_layers");
    c.n_heads = k.integer("num_attention_heads");
    c.vocab_size = k.integer("vocab_size");
    tcq::require(c.n_heads >= 1, what, ": field 'num_attention_heads' = ", c.n_heads, " must be positive");
    c.n_kv_heads = k.integer("num_key_value_heads", c.n_heads);
    const bool explicit_head_dim = k.find("head_dim") != nullptr;
    if (explicit_head_dim) {
        c.head_dim = k.integer("head_dim");
    } else {
        tcq::require(c.dim % c.n_heads == 0, what, ": num_attention_heads = ", c.n_heads,
                     " does not divide hidden_size = ", c.dim, " (and no head_dim is given)");
        c.head_dim = c.dim / c.n_heads;
    }
    c.max_seq = k.integer("max_position_embeddings", is_llama ? 2048 : is_mistral ? 131072 : 32768);
    c.rope_theta = k.number("rope_theta", 10000.0);
    c.norm_eps = static_cast<float>(k.number("rms_norm_eps", 1e-6));
    c.tied = k.flag("tie_word_embeddings", false);

    const std::string act = k.text("hidden_act", "silu");
    if (act != "silu") k.unsupported("hidden_act", j["hidden_act"], "only silu (SwiGLU) is implemented");

    if (is_llama) {
        c.qkv_bias = c.o_bias = k.flag("attention_bias", false);
        c.mlp_bias = k.flag("mlp_bias", false);
    } else {
        // These architectures have no such switches in transformers; a true value would be ignored there too.
        for (const char* key : {"attention_bias", "mlp_bias"})
            if (k.flag(key, false) && !(is_qwen3 && key == std::string_view("attention_bias")))
                k.unsupported(key, j[key], "not a switch of this architecture");
        c.qkv_bias = is_qwen2 || (is_qwen3 && k.flag("attention_bias", false));
        c.o_bias = is_qwen3 && k.flag("attention_bias", false);
    }
    c.qk_norm = is_qwen3;

    // Sliding window: Mistral applies it whenever set. Qwen2/3 only with
    // use_sliding_window, and then on layers >= max_window_layers (transformers' layer_types).
    if (is_llama && k.find("sliding_window")) k.unsupported("sliding_window", j["sliding_window"], "Llama has none");
    bool sw_on = is_mistral && k.find("sliding_window") != nullptr;
    if ((is_qwen2 || is_qwen3) && k.flag("use_sliding_window", false)) {
        const index_t mwl = k.integer("max_window_layers", c.n_layers);
        if (mwl > 0 && mwl < c.n_layers)
            k.unsupported("max_window_layers", j["max_window_layers"],
                          "a sliding window on only some layers is not implemented");
        sw_on = mwl == 0;
    }
    if (sw_on) {
        c.sliding_window = k.integer("sliding_window");
        tcq::require(c.sliding_window >= 1, what, ": field 'sliding_window' = ", c.sliding_window,
                     " must be positive");
    }

    if (const auto* rs = k.find("rope_scaling")) {
        tcq::require(rs->is_object(), what, ": field 'rope_scaling' is not an object: ", rs->dump());
        const detail::keys s(*rs, what);
        const std::string type = s.text("rope_type", s.text("type", ""));
        if (type == "default") {
            // transformers treats this as no scaling
        } else if (type == "llama3") {
            llama3_scaling l;
            const auto* f = s.find("factor");
            tcq::require(f != nullptr, what, ": missing field 'rope_scaling.factor'");
            l.factor = s.number("factor", 1);
            l.low_freq_factor = s.number("low_freq_factor", 1);
            l.high_freq_factor = s.number("high_freq_factor", 4);
            l.original_max_position_embeddings = s.integer("original_max_position_embeddings", 8192);
            c.scaling = l;
        } else {
            k.unsupported("rope_scaling.rope_type", nlohmann::json(type), "only \"llama3\" is implemented");
        }
    }
    if (const auto* b = k.find("bos_token_id"); b && b->is_number_integer()) c.bos_token_id = b->get<std::int64_t>();
    if (const auto* e = k.find("eos_token_id"); e && e->is_number_integer()) c.eos_token_id = e->get<std::int64_t>();
    validate(c, what);
    return c;
}

/// The config.json transformers would read back as `c` (rope pairs are not a
/// config key: an interleaved model has to be permuted to the HF layout first).
[[nodiscard]] inline std::string to_hf_config(const config& c) {
    const bool is_llama = c.architecture == "LlamaForCausalLM", is_mistral = c.architecture == "MistralForCausalLM",
               is_qwen3 = c.architecture == "Qwen3ForCausalLM";
    nlohmann::ordered_json j;
    j["architectures"] = {c.architecture};
    j["model_type"] = is_llama ? "llama" : is_mistral ? "mistral" : is_qwen3 ? "qwen3" : "qwen2";
    j["hidden_size"] = c.dim;
    j["intermediate_size"] = c.hidden_dim;
    j["num_hidden_layers"] = c.n_layers;
    j["num_attention_heads"] = c.n_heads;
    j["num_key_value_heads"] = c.n_kv_heads;
    j["head_dim"] = c.head_dim;
    j["vocab_size"] = c.vocab_size;
    j["max_position_embeddings"] = c.max_seq;
    j["rope_theta"] = c.rope_theta;
    j["rms_norm_eps"] = c.norm_eps;
    j["tie_word_embeddings"] = c.tied;
    j["hidden_act"] = "silu";
    if (is_llama) {
        j["attention_bias"] = c.qkv_bias;
        j["mlp_bias"] = c.mlp_bias;
    }
    if (is_qwen3) j["attention_bias"] = c.o_bias;
    if (is_mistral) j["sliding_window"] = c.sliding_window > 0 ? nlohmann::ordered_json(c.sliding_window) : nullptr;
    if (!is_llama && !is_mistral) {
        j["use_sliding_window"] = c.sliding_window > 0;
        if (c.sliding_window > 0) {
            j["sliding_window"] = c.sliding_window;
            j["max_window_layers"] = 0;  // every layer slides
        }
    }
    if (c.scaling)
        j["rope_scaling"] = {{"rope_type", "llama3"},
                             {"factor", c.scaling->factor},
                             {"low_freq_factor", c.scaling->low_freq_factor},
                             {"high_freq_factor", c.scaling->high_freq_factor},
                             {"original_max_position_embeddings", c.scaling->original_max_position_embeddings}};
    else
        j["rope_scaling"] = nullptr;
    if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
    if (c.eos_token_id >= 0) j["eos_token_id"] = c.eos_token_id;
    j["torch_dtype"] = "bfloat16";
    return j.dump(2) + "\n";
}

}  // namespace llama
