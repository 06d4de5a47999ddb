#pragma once
/// @file tensors.hpp
/// @brief What the `tcq` subcommands share: loading float matrices, Hessians
/// (with an optional name mapping) and masks from safetensors files, writing
/// quantized matrices, progress lines and JSON reports.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tcq/core/error.hpp"
#include "tcq/core/mask.hpp"
#include "tcq/core/matrix_view.hpp"
#include "tcq/io/atomic_file.hpp"
#include "tcq/io/safetensors.hpp"
#include "tcq/quant/quantized.hpp"

namespace tcq::cli {

namespace st = tcq::safetensors;

/// An owned row-major float matrix.
struct float_matrix {
    index_t rows = 0;
    index_t cols = 0;
    std::vector<float> data;

    /// Read-only view.
    [[nodiscard]] matrix_view<const float> view() const { return {data.data(), rows, cols}; }
    /// Mutable view.
    [[nodiscard]] matrix_view<float> view() { return {data.data(), rows, cols}; }
};

/// Opens a safetensors file; `role` ("weights", "hessians", …) names it in errors.
inline st::reader open_tensors(const std::string& path, std::string_view role) {
    require(std::filesystem::exists(path), role, " file '", path, "' does not exist");
    return st::reader::open(path);
}

/// Throws unless tensor `name` of `r` is a rank-2 tensor; returns its (rows, cols).
inline std::pair<index_t, index_t> matrix_extent(const st::reader& r, const std::string& name, std::string_view role) {
    const auto& t = r.info(name);
    if (t.shape.size() != 2) {
        std::string shape = "[";
        for (std::size_t i = 0; i < t.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(t.shape[i]);
        fail(role, " file '", r.source(), "': tensor '", name, "' has shape ", shape + "]",
             ", expected a matrix (rank 2); tcq processes every tensor of the file, so store only matrices");
    }
    return {t.shape[0], t.shape[1]};
}

/// Reads tensor `name` (F32/F16/BF16/F64, rank 2) as float. `role` names the file in errors.
inline float_matrix read_matrix(const st::reader& r, const std::string& name, std::string_view role) {
    require(r.contains(name), role, " file '", r.source(), "' has no tensor '", name, "'");
    const auto [rows, cols] = matrix_extent(r, name, role);
    const auto type = r.info(name).type;
    require(type == st::dtype::F32 || type == st::dtype::F16 || type == st::dtype::BF16 || type == st::dtype::F64,
            role, " file '", r.source(), "': tensor '", name, "' has dtype ", st::dtype_name(type),
            ", expected F32, F16, BF16 or F64");
    float_matrix m;
    m.rows = rows;
    m.cols = cols;
    m.data = r.to_float(name);
    require_finite(m.view(), detail::cat(role, " file '", r.source(), "': tensor '", name, "'"));
    return m;
}

/// Reads tensor `name` and checks that it is rows × cols, like the weight it belongs to.
inline float_matrix read_matrix_like(const st::reader& r, const std::string& name, std::string_view role,
                                     index_t rows, index_t cols) {
    float_matrix m = read_matrix(r, name, role);
    require(m.rows == rows && m.cols == cols, role, " file '", r.source(), "': tensor '", name, "' is ", m.rows, "x",
            m.cols, ", the weight is ", rows, "x", cols);
    return m;
}

/// The rank-2 tensor names of a weights file, sorted (the reader's order).
/// Every tensor must be a matrix: anything else is an error, not skipped.
inline std::vector<std::string> weight_names(const st::reader& r) {
    std::vector<std::string> names = r.names();
    require(!names.empty(), "weights file '", r.source(), "' holds no tensors");
    for (const auto& n : names) (void)matrix_extent(r, n, "weights");
    return names;
}

/// Where each weight's Hessian lives: a safetensors file plus an optional
/// name mapping {"weight_name": "hessian_name"} (a JSON object of strings).
/// Unmapped weights use their own name. Hessians are read once and cached,
/// so q/k/v mapped to one Hessian share it.
class hessian_source {
public:
    hessian_source(const std::string& path, const std::optional<std::string>& map_path)
        : reader_(open_tensors(path, "hessians")) {
        if (map_path) map_ = load_map(*map_path);
    }

    /// Throws unless every key of the mapping names one of `weights` and every
    /// weight's Hessian exists; called before any work starts.
    void check(const std::vector<std::string>& weights) const {
        for (const auto& [w, h] : map_) {
            require(std::binary_search(weights.begin(), weights.end(), w), "hessian map names weight '", w,
                    "', which is not a tensor of the weights file");
            (void)h;
        }
        for (const auto& w : weights) {
            const std::string& h = name_for(w);
            if (!reader_.contains(h)) {
                if (h == w)
                    fail("hessians file '", reader_.source(), "' has no tensor '", w,
                         "' (the Hessian of weight '", w, "'; map other names with --hessian-map)");
                fail("hessians file '", reader_.source(), "' has no tensor '", h, "' (mapped from weight '", w, "')");
            }
        }
    }

    /// Name of the Hessian of weight `w`.
    [[nodiscard]] const std::string& name_for(const std::string& w) const {
        const auto it = map_.find(w);
        return it == map_.end() ? w : it->second;
    }

    /// The cols × cols Hessian of weight `w` (cached).
    const float_matrix& get(const std::string& w, index_t cols) {
        const std::string& h = name_for(w);
        auto it = cache_.find(h);
        if (it == cache_.end()) it = cache_.emplace(h, read_matrix(reader_, h, "hessians")).first;
        const float_matrix& m = it->second;
        require(m.rows == cols && m.cols == cols, "hessians file '", reader_.source(), "': tensor '", h, "' is ",
                m.rows, "x", m.cols, ", weight '", w, "' needs a ", cols, "x", cols, " Hessian");
        return m;
    }

    /// Drops cached Hessians (memory) once no later weight uses them.
    void release(const std::string& w, std::span<const std::string> remaining) {
        const std::string& h = name_for(w);
        for (const auto& r : remaining)
            if (name_for(r) == h) return;
        cache_.erase(h);
    }

private:
    static std::map<std::string, std::string> load_map(const std::string& path) {
        std::ifstream in(path);
        require(static_cast<bool>(in), "hessian map '", path, "': cannot open");
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(in);
        } catch (const nlohmann::json::exception& e) {
            fail("hessian map '", path, "': invalid JSON: ", e.what());
        }
        require(j.is_object(), "hessian map '", path, "': expected a JSON object {\"weight\": \"hessian\"}");
        std::map<std::string, std::string> m;
        for (const auto& [k, v] : j.items()) {
            require(v.is_string(), "hessian map '", path, "': value of '", k, "' is not a string");
            m.emplace(k, v.get<std::string>());
        }
        return m;
    }

    st::reader reader_;
    std::map<std::string, std::string> map_;
    std::map<std::string, float_matrix> cache_;
};

/// The inputs of every GPTQ-based command: the weights and their names, the
/// Hessians (checked to cover every weight) and, optionally, the masks.
struct solve_inputs {
    st::reader weights;
    std::vector<std::string> names;
    hessian_source hessians;
    std::optional<st::reader> masks;
};

/// Opens and cross-checks the files of a solve before any work starts.
inline solve_inputs open_solve_inputs(const std::string& w_path, const std::string& h_path,
                                      const std::optional<std::string>& map_path,
                                      const std::optional<std::string>& mask_path) {
    auto W = open_tensors(w_path, "weights");
    auto names = weight_names(W);
    hessian_source H(h_path, map_path);
    H.check(names);
    std::optional<st::reader> M;
    if (mask_path) {
        M.emplace(open_tensors(*mask_path, "mask"));
        for (const auto& n : names)
            require(M->contains(n), "mask file '", M->source(), "' has no tensor '", n, "' (masks use the weight's name)");
    }
    return {std::move(W), std::move(names), std::move(H), std::move(M)};
}

/// The mask of weight `name` (BOOL or U8 0/1, rows × cols) from a masks file.
inline mask read_mask_for(const st::reader& r, const std::string& name, index_t rows, index_t cols) {
    require(r.contains(name), "mask file '", r.source(), "' has no tensor '", name, "' (masks use the weight's name)");
    const auto [mr, mc] = matrix_extent(r, name, "mask");
    require(mr == rows && mc == cols, "mask file '", r.source(), "': tensor '", name, "' is ", mr, "x", mc,
            ", the weight is ", rows, "x", cols);
    return r.read_mask(name);
}

/// Adds a quantized matrix under `name`: `name` (F32 values, kept weights at
/// their final values), `name.codes` (U8 rows × cols, 0 at kept weights),
/// `name.scales` and `name.zeros` (F32 rows × groups), and under act-order
/// `name.g_idx` (I32, one group per column).
inline void add_quantized(st::writer& w, const std::string& name, const quantized_matrix& q) {
    const index_t G = q.grid.groups();
    std::vector<float> scales(static_cast<std::size_t>(q.rows() * G)), zeros(scales.size());
    for (index_t r = 0; r < q.rows(); ++r)
        for (index_t g = 0; g < G; ++g) {
            scales[static_cast<std::size_t>(r * G + g)] = q.grid.at(r, g).scale;
            zeros[static_cast<std::size_t>(r * G + g)] = q.grid.at(r, g).zero;
        }
    w.add(name, q.values, {q.rows(), q.cols()});
    w.add(name + ".codes", q.codes, {q.rows(), q.cols()});
    w.add(name + ".scales", scales, {q.rows(), G});
    w.add(name + ".zeros", zeros, {q.rows(), G});
    if (!q.g_idx.empty()) w.add(name + ".g_idx", q.g_idx, {q.cols()});
}

/// Progress lines on stderr ("tcq gptq: …"), silenced by --quiet.
class progress {
public:
    progress(std::string command, bool quiet) : prefix_("tcq " + std::move(command) + ": "), quiet_(quiet) {}

    /// Prints one line made of `parts`.
    template <class... A>
    void operator()(const A&... parts) const {
        if (!quiet_) std::cerr << prefix_ << detail::cat(parts...) << '\n' << std::flush;
    }

private:
    std::string prefix_;
    bool quiet_;
};

/// Seconds since `t0`.
inline double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Writes a JSON report to `path`, or pretty-prints it to stderr when no path is given.
inline void emit_report(const nlohmann::json& report, const std::optional<std::string>& path) {
    if (!path) {
        std::cerr << report.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
        return;
    }
    write_atomically(*path, detail::cat("report '", *path, "'"), [&](std::ostream& out) {
        out << report.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    });
}

}  // namespace tcq::cli
