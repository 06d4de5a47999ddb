// The `tcq` command-line tool, run as a process on small generated
// safetensors files and checked bit for bit against the library API.
#include <doctest/doctest.h>

#if !defined(TCQ_CLI_PATH)

#include "skip.hpp"

TEST_CASE("cli: tcq tool not built (TCQ_BUILD_TOOLS=OFF)") {
    tcq_test::skip("no tcq executable in this build (TCQ_BUILD_TOOLS=OFF)");
}

#else

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tcq/gptq/solver.hpp"
#include "tcq/io/safetensors.hpp"
#include "tcq/io/tcq_file.hpp"
#include "tcq/pack/packed_matrix.hpp"
#include "tcq/saliency/scores.hpp"
#include "tcq/select/topk.hpp"
#include "test_util.hpp"

namespace st = tcq::safetensors;
namespace fs = std::filesystem;
using tcq::index_t;

namespace {

/// A scratch directory removed at the end of the test case (kept, for
/// debugging, when the environment variable TCQ_CLI_TEST_KEEP is set).
struct temp_dir {
    fs::path path;
    temp_dir() {
        static int n = 0;
        path = fs::temp_directory_path() /
               ("tcq_cli_test_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~temp_dir() {
        if (std::getenv("TCQ_CLI_TEST_KEEP")) return;
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    [[nodiscard]] std::string operator/(const std::string& f) const { return (path / f).string(); }
};

/// Result of one run of the tool.
struct run_result {
    int status = -1;
    std::string out, err;
};

std::string slurp(const std::string& f) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

/// Runs `tcq <args>` (args are shell words, already quoted where needed).
run_result tcq_run(const temp_dir& d, const std::string& args) {
    const std::string out = d / "stdout.txt", err = d / "stderr.txt";
    const std::string cmd = std::string("'") + TCQ_CLI_PATH + "' " + args + " >'" + out + "' 2>'" + err + "'";
    const int raw = std::system(cmd.c_str());
    run_result r;
    r.status = (raw != -1 && WIFEXITED(raw)) ? WEXITSTATUS(raw) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
}

/// Runs the tool and requires success.
run_result tcq_ok(const temp_dir& d, const std::string& args) {
    run_result r = tcq_run(d, args);
    INFO("tcq ", args, "\nstderr: ", r.err);
    REQUIRE(r.status == 0);
    return r;
}

using test_util::randn;

/// H = (2/n)·XᵀX of `tokens` random correlated tokens; column `dead` (if ≥ 0) is all zero.
std::vector<float> make_hessian(index_t cols, unsigned seed, index_t dead = -1) {
    const index_t tokens = 3 * cols;
    auto x = randn(static_cast<std::size_t>(tokens * cols), seed);
    const auto mix = randn(static_cast<std::size_t>(cols), seed + 1);
    for (index_t t = 0; t < tokens; ++t)
        for (index_t c = 0; c < cols; ++c) {
            auto& v = x[static_cast<std::size_t>(t * cols + c)];
            v = (v + mix[static_cast<std::size_t>(c)] * x[static_cast<std::size_t>(t * cols)]) *
                (1.f + static_cast<float>(c % 5));
            if (c == dead) v = 0.f;
        }
    std::vector<float> h(static_cast<std::size_t>(cols * cols));
    for (index_t i = 0; i < cols; ++i)
        for (index_t j = 0; j < cols; ++j) {
            double s = 0;
            for (index_t t = 0; t < tokens; ++t)
                s += static_cast<double>(x[static_cast<std::size_t>(t * cols + i)]) * x[static_cast<std::size_t>(t * cols + j)];
            h[static_cast<std::size_t>(i * cols + j)] = static_cast<float>(2.0 * s / static_cast<double>(tokens));
        }
    return h;
}

/// The generated layer-wise problem: three matrices of odd shapes.
struct problem {
    struct layer {
        std::string name;
        index_t rows, cols;
    };
    std::vector<layer> layers{{"blk.0.attn.wq", 24, 40}, {"blk.0.attn.wk", 16, 40}, {"blk.1.mlp.w2", 20, 72}};
    std::string W, H, Hmapped, map, G, G2;

    /// Writes W.st (one tensor as BF16), H.st (one Hessian as F64, one with a
    /// dead column), H_shared.st + map.json (q and k share one Hessian),
    /// G.st (|grad|, one tensor F16) and G2.st.
    explicit problem(const temp_dir& d)
        : W(d / "W.st"), H(d / "H.st"), Hmapped(d / "H_shared.st"), map(d / "map.json"), G(d / "G.st"), G2(d / "G2.st") {
        st::writer w, h, hs, g, g2;
        unsigned seed = 11;
        for (const auto& l : layers) {
            const auto n = static_cast<std::size_t>(l.rows * l.cols);
            const auto wv = randn(n, seed++, 0.05f);
            w.add_as(l.name, wv, {l.rows, l.cols}, l.name == "blk.0.attn.wk" ? st::dtype::BF16 : st::dtype::F32);
            const auto hv = make_hessian(l.cols, seed++, l.name == "blk.1.mlp.w2" ? 5 : -1);
            h.add_as(l.name, hv, {l.cols, l.cols}, l.name == "blk.1.mlp.w2" ? st::dtype::F64 : st::dtype::F32);
            auto gv = randn(n, seed++);
            for (auto& x : gv) x = std::fabs(x);
            g.add_as(l.name, gv, {l.rows, l.cols}, l.name == "blk.0.attn.wq" ? st::dtype::F16 : st::dtype::F32);
            for (auto& x : gv) x = x * x;
            g2.add_as(l.name, gv, {l.rows, l.cols}, st::dtype::F32);
            if (l.cols == 40 && !hs.size()) hs.add_as("attn_in", hv, {l.cols, l.cols}, st::dtype::F32);
            if (l.cols == 72) hs.add_as(l.name, hv, {l.cols, l.cols}, st::dtype::F64);
        }
        w.write(W);
        h.write(H);
        hs.write(Hmapped);
        g.write(G);
        g2.write(G2);
        std::ofstream(map) << R"({"blk.0.attn.wq": "attn_in", "blk.0.attn.wk": "attn_in"})";
    }
};

/// Tensor `name` of `file` as floats (the same conversion the tool uses).
std::vector<float> floats(const std::string& file, const std::string& name) {
    return st::reader::open(file).to_float(name);
}

tcq::matrix_view<const float> view(const std::vector<float>& v, index_t rows, index_t cols) {
    return {v.data(), rows, cols};
}

/// Bitwise equality of float arrays.
bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

/// Checks OUT.st tensors of `name` against a quantized matrix, bit for bit.
void check_quantized(const std::string& file, const std::string& name, const tcq::quantized_matrix& q) {
    INFO("tensor ", name);
    const auto r = st::reader::open(file);
    CHECK(r.info(name).type == st::dtype::F32);
    CHECK(same_bits(r.to_float(name), q.values));
    const auto codes = r.view<std::uint8_t>(name + ".codes");
    CHECK(std::equal(codes.data(), codes.data() + codes.size(), q.codes.begin(), q.codes.end()));
    const auto scales = r.to_float(name + ".scales"), zeros = r.to_float(name + ".zeros");
    REQUIRE(scales.size() == q.grid.params.size());
    for (std::size_t i = 0; i < scales.size(); ++i) {
        CHECK(scales[i] == q.grid.params[i].scale);
        CHECK(zeros[i] == q.grid.params[i].zero);
    }
    CHECK(r.contains(name + ".g_idx") == !q.g_idx.empty());
    if (!q.g_idx.empty()) {
        const auto gi = r.view<std::int32_t>(name + ".g_idx");
        CHECK(std::equal(gi.data(), gi.data() + gi.size(), q.g_idx.begin(), q.g_idx.end()));
    }
}

/// GPTQ of one layer of the problem through the library. `mapped`: the
/// Hessians of H_shared.st + map.json (q and k both use q's Hessian).
tcq::gptq_result library_gptq(const problem& p, const problem::layer& l, tcq::gptq_options opt,
                              const tcq::mask& m = {}, bool mapped = false) {
    const auto w = floats(p.W, l.name);
    const auto h = mapped && l.cols == 40 ? floats(p.Hmapped, "attn_in") : floats(p.H, l.name);
    opt.name = l.name;
    return tcq::gptq_quantize(view(w, l.rows, l.cols), view(h, l.cols, l.cols), opt, m);
}

/// A random mask with about 2% of the bits set.
tcq::mask random_mask(index_t rows, index_t cols, unsigned seed) {
    std::mt19937 g(seed);
    tcq::mask m(rows, cols);
    for (index_t i = 0; i < m.size(); ++i)
        if (g() % 50 == 0) m.set(i);
    return m;
}

nlohmann::json read_json(const std::string& f) { return nlohmann::json::parse(slurp(f)); }

}  // namespace

TEST_CASE("cli: gptq matches gptq_quantize bit for bit (default and grouped act-order with mask and map)") {
    temp_dir d;
    const problem p(d);

    SUBCASE("defaults: asymmetric, MSE, damping 0.01, block 128, per-row grid") {
        tcq_ok(d, "gptq --weights '" + p.W + "' --hessians '" + p.H + "' --bits 3 -o '" + (d / "Q.st") +
                      "' --report '" + (d / "r.json") + "' --threads 2 --quiet");
        tcq::gptq_options opt;
        opt.grid.bits = 3;
        for (const auto& l : p.layers) check_quantized(d / "Q.st", l.name, library_gptq(p, l, opt).q);
        const auto rep = read_json(d / "r.json");
        CHECK(rep["command"] == "gptq");
        REQUIRE(rep["tensors"].size() == 3);
        CHECK(rep["tensors"][0]["name"] == "blk.0.attn.wk");  // sorted names
        CHECK(rep["tensors"][2]["dead_columns"] == nlohmann::json::array({5}));
        CHECK(rep["settings"]["damping"] == 0.01);
        CHECK(rep["settings"]["block_size"] == 128);
        CHECK(rep["total_kept"] == 0);
    }

    SUBCASE("--torch-order: U in the reference's operation order") {
        tcq_ok(d, "gptq --weights '" + p.W + "' --hessians '" + p.H + "' --bits 2 --torch-order -o '" + (d / "Qt.st") +
                      "' --report '" + (d / "rt.json") + "' --threads 2 --quiet");
        tcq::gptq_options opt;
        opt.grid.bits = 2;
        opt.hinv.method = tcq::hinv_method::torch;
        for (const auto& l : p.layers) check_quantized(d / "Qt.st", l.name, library_gptq(p, l, opt).q);
        CHECK(read_json(d / "rt.json")["settings"]["torch_order"] == true);
    }

    SUBCASE("--group --act-order --sym --damp --block --fp16-scale with U8/BOOL masks and --hessian-map") {
        st::writer mw;
        std::map<std::string, tcq::mask> masks;
        unsigned seed = 3;
        for (const auto& l : p.layers) {
            masks[l.name] = random_mask(l.rows, l.cols, seed++);
            if (l.name == "blk.0.attn.wq") {
                std::vector<std::uint8_t> u8(static_cast<std::size_t>(l.rows * l.cols));
                for (index_t i = 0; i < masks[l.name].size(); ++i) u8[static_cast<std::size_t>(i)] = masks[l.name].test(i);
                mw.add(l.name, u8, {l.rows, l.cols});
            } else {
                mw.add_mask(l.name, masks[l.name]);
            }
        }
        mw.write(d / "M.st");
        tcq_ok(d, "gptq --weights '" + p.W + "' --hessians '" + p.Hmapped + "' --hessian-map '" + p.map +
                      "' --mask '" + (d / "M.st") +
                      "' --bits 4 --group 16 --act-order --sym --damp 0.05 --block 32 --fp16-scale -o '" +
                      (d / "Q.st") + "' --report '" + (d / "r.json") + "' --quiet");
        tcq::gptq_options opt;
        opt.grid.bits = 4;
        opt.grid.group_size = 16;
        opt.grid.symmetric = true;
        opt.grid.fp16_scale = true;
        opt.act_order = true;
        opt.hinv.damping.relative = 0.05;
        opt.block_size = 32;
        for (const auto& l : p.layers) {
            const auto q = library_gptq(p, l, opt, masks[l.name], true).q;
            check_quantized(d / "Q.st", l.name, q);
            CHECK(q.kept.count() == masks[l.name].count());
        }
        const auto rep = read_json(d / "r.json");
        CHECK(rep["tensors"][1]["hessian"] == "attn_in");
    }

    SUBCASE("--static-groups --no-mse, 2 bits") {
        tcq_ok(d, "gptq --weights '" + p.W + "' --hessians '" + p.H + "' --bits 2 --group 8 --static-groups --no-mse -o '" +
                      (d / "Q.st") + "' --quiet --report '" + (d / "r.json") + "'");
        tcq::gptq_options opt;
        opt.grid.bits = 2;
        opt.grid.group_size = 8;
        opt.grid.mse.enabled = false;
        opt.static_groups = true;
        for (const auto& l : p.layers) check_quantized(d / "Q.st", l.name, library_gptq(p, l, opt).q);
    }
}

TEST_CASE("cli: score matches compute_scores bit for bit for every method") {
    temp_dir d;
    const problem p(d);
    tcq_ok(d, "gptq --weights '" + p.W + "' --hessians '" + p.H + "' --bits 3 -o '" + (d / "Q.st") + "' --quiet --report '" +
                  (d / "r.json") + "'");
    const std::string inputs = " --weights '" + p.W + "' --contrast '" + (d / "Q.st") + "' --grads '" + p.G +
                               "' --grads-sq '" + p.G2 + "' --hessians '" + p.H + "'";
    for (const auto method : tcq::all_score_methods) {
        const std::string m(tcq::to_string(method));
        INFO("method ", m);
        tcq_ok(d, "score --method " + m + inputs + " --seed 7 -o '" + (d / "S.st") + "' --quiet --report '" +
                      (d / "r.json") + "'");
        tcq::gptq_options opt;
        opt.grid.bits = 3;
        for (std::size_t i = 0; i < p.layers.size(); ++i) {
            const auto& l = p.layers[i];
            const auto w = floats(p.W, l.name), q = floats(d / "Q.st", l.name), g = floats(p.G, l.name),
                       g2 = floats(p.G2, l.name), h = floats(p.H, l.name);
            const auto u = library_gptq(p, l, opt).report.u_diag;
            std::vector<float> hd(static_cast<std::size_t>(l.cols));
            for (index_t j = 0; j < l.cols; ++j) hd[static_cast<std::size_t>(j)] = h[static_cast<std::size_t>(j * l.cols + j)];
            tcq::score_inputs in;
            in.W = view(w, l.rows, l.cols);
            in.Q = view(q, l.rows, l.cols);
            in.grad_abs = view(g, l.rows, l.cols);
            in.grad_sq = view(g2, l.rows, l.cols);
            in.u_diag = u;
            in.h_diag = hd;
            // matrices in sorted-name order get seeds 7, 8, 9
            in.seed = 7 + (l.name == "blk.0.attn.wk" ? 0 : l.name == "blk.0.attn.wq" ? 1 : 2);
            std::vector<float> s(w.size());
            tcq::compute_scores(method, in, tcq::matrix_view<float>(s.data(), l.rows, l.cols));
            CHECK(same_bits(floats(d / "S.st", l.name), s));
        }
    }
    // Inputs a method does not read are ignored with a note.
    const auto r = tcq_ok(d, "score --method magnitude --weights '" + p.W + "' --grads '" + p.G + "' -o '" + (d / "S.st") +
                                 "' --report '" + (d / "r.json") + "'");
    CHECK(r.err.find("ignoring --grads") != std::string::npos);
}

TEST_CASE("cli: select matches select_topk (global ties by tensor name, per row, bits per weight)") {
    temp_dir d;
    // Scores with many exact ties across and within tensors.
    const std::vector<std::pair<std::string, std::pair<index_t, index_t>>> shapes = {
        {"b", {6, 10}}, {"a", {5, 7}}, {"c", {3, 130}}};
    std::map<std::string, std::vector<float>> scores;
    st::writer sw;
    unsigned seed = 1;
    for (const auto& [name, rc] : shapes) {
        std::mt19937 g(seed++);
        std::vector<float> s(static_cast<std::size_t>(rc.first * rc.second));
        for (auto& x : s) x = static_cast<float>(g() % 4);
        scores[name] = s;
        sw.add(name, s, {rc.first, rc.second});
    }
    sw.write(d / "S.st");
    const auto check = [&](const std::string& args, const tcq::budget& b, tcq::select_scope scope) {
        tcq_ok(d, "select --scores '" + (d / "S.st") + "' " + args + " -o '" + (d / "M.st") + "' --quiet --report '" +
                      (d / "r.json") + "'");
        std::vector<tcq::scored_matrix> mats;  // sorted names: a, b, c
        for (const auto& [name, s] : scores) {
            index_t rows = 0, cols = 0;
            for (const auto& [n, rc] : shapes)
                if (n == name) rows = rc.first, cols = rc.second;
            mats.push_back({name, view(s, rows, cols)});
        }
        const auto sel = tcq::select_topk(mats, b, scope);
        const auto r = st::reader::open(d / "M.st");
        for (std::size_t i = 0; i < mats.size(); ++i) {
            INFO("args ", args, ", tensor ", mats[i].name);
            CHECK(r.info(mats[i].name).type == st::dtype::BOOL);
            CHECK(r.read_mask(mats[i].name) == sel.masks[i]);
        }
        return sel;
    };
    SUBCASE("global count: ties go to tensor 'a' first, then by flat index") {
        const auto sel = check("--count 20", tcq::budget::of_count(20), tcq::select_scope::global);
        CHECK(sel.selected == 20);
        const auto rep = read_json(d / "r.json");
        CHECK(rep["selected"] == 20);
        CHECK(rep["thresholds"][0]["tensor"].is_string());
    }
    SUBCASE("global ratio (default scope)") { check("--ratio 0.1", tcq::budget::of_ratio(0.1), tcq::select_scope::global); }
    SUBCASE("per matrix ratio") {
        check("--ratio 0.25 --scope matrix", tcq::budget::of_ratio(0.25), tcq::select_scope::per_matrix);
    }
    SUBCASE("per row count") { check("--count 2 --scope row", tcq::budget::of_count(2), tcq::select_scope::per_row); }
    SUBCASE("target bits per weight") {
        tcq::grid_spec g;
        g.bits = 3;
        g.group_size = 8;
        const auto sel = check("--target-bpw 16 --bits 3 --group 8",
                               tcq::budget::of_bits_per_weight(16, g), tcq::select_scope::global);
        CHECK(sel.selected > 0);
        const auto rep = read_json(d / "r.json");
        CHECK(rep["bits"]["bits_per_weight"].get<double>() <= 16);
    }
}

TEST_CASE("cli: pack, inspect and unpack agree with gptq_quantize + pack + unpack") {
    temp_dir d;
    const problem p(d);
    st::writer mw;
    std::map<std::string, tcq::mask> masks;
    unsigned seed = 21;
    for (const auto& l : p.layers) {
        masks[l.name] = random_mask(l.rows, l.cols, seed++);
        mw.add_mask(l.name, masks[l.name]);
    }
    mw.write(d / "M.st");
    tcq_ok(d, "pack --weights '" + p.W + "' --hessians '" + p.H + "' --mask '" + (d / "M.st") +
                  "' --bits 3 --group 16 --act-order -o '" + (d / "model.tcq") + "' --calibration demo --quiet --report '" +
                  (d / "r.json") + "'");
    tcq::gptq_options opt;
    opt.grid.bits = 3;
    opt.grid.group_size = 16;
    opt.grid.fp16_scale = true;
    opt.act_order = true;
    std::uint64_t total_bits = 0;
    index_t weights = 0;
    std::map<std::string, tcq::quantized_matrix> expect;
    for (const auto& l : p.layers) {
        const auto pm = tcq::pack(library_gptq(p, l, opt, masks[l.name]).q);
        total_bits += pm.bits_used().total();
        weights += l.rows * l.cols;
        expect[l.name] = tcq::unpack(pm.view());
    }
    const auto f = tcq::packed_file::open(d / "model.tcq");
    CHECK(f.metadata().method == "gptq");
    CHECK(f.metadata().bits == 3);
    CHECK(f.metadata().calibration == "demo");
    REQUIRE(f.size() == 3);

    tcq_ok(d, "unpack '" + (d / "model.tcq") + "' -o '" + (d / "U.st") + "' --masks '" + (d / "UM.st") + "' --quiet");
    const auto um = st::reader::open(d / "UM.st");
    for (const auto& l : p.layers) {
        check_quantized(d / "U.st", l.name, expect[l.name]);
        CHECK(um.read_mask(l.name) == masks[l.name]);
    }

    const auto r = tcq_ok(d, "inspect '" + (d / "model.tcq") + "' --json");
    const auto js = nlohmann::json::parse(r.out);
    CHECK(js["bits"]["total"] == total_bits);
    CHECK(js["bits"]["weights"] == weights);
    CHECK(js["metadata"]["method"] == "gptq");
    CHECK(js["tensors"].size() == 3);
    const auto table = tcq_ok(d, "inspect '" + (d / "model.tcq") + "'");
    CHECK(table.out.find("bits/weight") != std::string::npos);
    CHECK(table.out.find("blk.1.mlp.w2") != std::string::npos);
}

TEST_CASE("cli: tacq equals contrast GPTQ, tacq scores, global top-k, masked GPTQ, pack") {
    temp_dir d;
    const problem p(d);
    tcq_ok(d, "tacq --weights '" + p.W + "' --hessians '" + p.Hmapped + "' --hessian-map '" + p.map + "' --grads '" + p.G +
                  "' --bits 3 --ratio 0.02 -o '" + (d / "model.tcq") + "' --masks '" + (d / "M.st") +
                  "' --quiet --threads 2 --report '" + (d / "r.json") + "'");
    tcq::gptq_options opt;
    opt.grid.bits = 3;
    opt.grid.fp16_scale = true;
    // Library: contrast, scores, one global top-k over names in sorted order.
    std::vector<problem::layer> sorted = p.layers;
    std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    std::vector<std::vector<float>> scores;
    for (const auto& l : sorted) {
        const auto w = floats(p.W, l.name), g = floats(p.G, l.name);
        const auto q = library_gptq(p, l, opt, {}, true).q;
        tcq::score_inputs in;
        in.W = view(w, l.rows, l.cols);
        in.Q = q.values_view();
        in.grad_abs = view(g, l.rows, l.cols);
        scores.emplace_back(w.size());
        tcq::compute_scores(tcq::score_method::tacq, in, tcq::matrix_view<float>(scores.back().data(), l.rows, l.cols));
    }
    std::vector<tcq::scored_matrix> mats;
    for (std::size_t i = 0; i < sorted.size(); ++i) mats.push_back({sorted[i].name, view(scores[i], sorted[i].rows, sorted[i].cols)});
    const auto sel = tcq::select_topk(mats, tcq::budget::of_ratio(0.02));
    CHECK(sel.selected > 0);
    const auto mr = st::reader::open(d / "M.st");
    const auto f = tcq::packed_file::open(d / "model.tcq");
    CHECK(f.metadata().method == "tacq");
    for (std::size_t i = 0; i < sorted.size(); ++i) {
        INFO("tensor ", sorted[i].name);
        CHECK(mr.read_mask(sorted[i].name) == sel.masks[i]);
        const auto pm = tcq::pack(library_gptq(p, sorted[i], opt, sel.masks[i], true).q);
        const auto a = tcq::unpack(f.find(sorted[i].name)), b = tcq::unpack(pm.view());
        CHECK(same_bits(a.values, b.values));
        CHECK(a.codes == b.codes);
        CHECK(a.kept == sel.masks[i]);
    }
    const auto rep = read_json(d / "r.json");
    CHECK(rep["selected"] == sel.selected);
}

TEST_CASE("cli: usage errors exit 2 with the usage text; help exits 0") {
    temp_dir d;
    const problem p(d);
    const std::string wh = " --weights '" + p.W + "' --hessians '" + p.H + "' -o '" + (d / "o.st") + "'";
    const std::vector<std::string> cases = {std::string(""), std::string("frobnicate"), "gptq" + wh, "gptq --bits" , "gptq --bits x" + wh,
          "gptq --bits 9" + wh, "gptq --bits 3 --frob" + wh, "gptq --bits 3 --static-groups" + wh,
          "gptq --bits 3 --act-order=yes" + wh, "gptq --bits 3 --bits 4" + wh, "gptq --bits 3 extra" + wh,
          "gptq --bits 3 --weights '" + p.W + "' -o x.st", "pack --bits 5" + wh,
          "score --method nope --weights '" + p.W + "' -o s.st", "score --method tacq --weights '" + p.W + "' -o s.st",
          "select --scores s.st -o m.st", "select --scores s.st --ratio 0.1 --count 3 -o m.st",
          "select --scores s.st --ratio 0.1 --scope everywhere -o m.st", "select --scores s.st --ratio 2 -o m.st",
          "select --scores s.st --target-bpw 4 -o m.st", "inspect", "unpack a.tcq", "tacq --bits 3 --threads -1" + wh};
    for (const std::string& args : cases) {
        INFO("tcq ", args);
        const auto r = tcq_run(d, args);
        CHECK(r.status == 2);
        CHECK(r.err.find("tcq: usage error: ") == 0);
        CHECK(r.err.find("usage: tcq") != std::string::npos);
    }
    for (const std::string args : {"--help", "gptq --help", "tacq -h", "--version"}) {
        INFO("tcq ", args);
        const auto r = tcq_run(d, args);
        CHECK(r.status == 0);
        CHECK(r.out.find("tcq") != std::string::npos);
    }
}

TEST_CASE("cli: malformed inputs exit 1 with a message naming the problem") {
    temp_dir d;
    const problem p(d);
    const auto expect_error = [&](const std::string& args, const std::string& needle) {
        INFO("tcq ", args);
        const auto r = tcq_run(d, args);
        INFO("stderr: ", r.err);
        CHECK(r.status == 1);
        CHECK(r.err.find("tcq: error: ") == 0);
        CHECK(r.err.find(needle) != std::string::npos);
    };
    const std::string out = " -o '" + (d / "o.st") + "' --quiet";
    std::ofstream(d / "garbage.st") << "this is not a safetensors file";
    {
        st::writer w;
        w.add("v", std::vector<float>{1, 2, 3}, {3});
        w.write(d / "vec.st");
        st::writer h;
        h.add("blk.0.attn.wq", std::vector<float>(9, 1.f), {3, 3});
        h.write(d / "badH.st");
        st::writer m;
        std::vector<std::uint8_t> bad(24 * 40, 0);
        bad[17] = 2;
        m.add("blk.0.attn.wq", bad, {24, 40});
        m.write(d / "badM.st");
        st::writer nanw;
        std::vector<float> nv(24 * 40, 0.f);
        nv[3] = std::nanf("");
        nanw.add("blk.0.attn.wq", nv, {24, 40});
        nanw.write(d / "nanW.st");
        st::writer one;
        one.add("blk.0.attn.wq", std::vector<float>(24 * 40, 0.5f), {24, 40});
        one.write(d / "oneW.st");
        st::writer i32;
        i32.add("blk.0.attn.wq", std::vector<std::int32_t>(24 * 40, 1), {24, 40});
        i32.write(d / "intW.st");
        std::ofstream(d / "bad.json") << "{\"a\": ";
        std::ofstream(d / "unknown.json") << R"({"no.such.weight": "attn_in"})";
        std::ofstream(d / "bad.tcq") << "not a tcq file at all, not even close; padding padding padding padding";
    }
    expect_error("gptq --weights '" + (d / "missing.st") + "' --hessians '" + p.H + "' --bits 3" + out, "does not exist");
    expect_error("gptq --weights '" + (d / "garbage.st") + "' --hessians '" + p.H + "' --bits 3" + out, "garbage.st");
    expect_error("gptq --weights '" + (d / "vec.st") + "' --hessians '" + p.H + "' --bits 3" + out, "rank 2");
    expect_error("gptq --weights '" + (d / "nanW.st") + "' --hessians '" + p.H + "' --bits 3" + out, "non-finite");
    expect_error("gptq --weights '" + (d / "intW.st") + "' --hessians '" + p.H + "' --bits 3" + out, "I32");
    expect_error("gptq --weights '" + p.W + "' --hessians '" + (d / "badH.st") + "' --bits 3" + out, "no tensor");
    expect_error("gptq --weights '" + p.W + "' --hessians '" + p.Hmapped + "' --bits 3" + out, "--hessian-map");
    expect_error("gptq --weights '" + (d / "oneW.st") + "' --hessians '" + (d / "badH.st") + "' --bits 3" + out,
                 "needs a 40x40 Hessian");
    expect_error("gptq --weights '" + p.W + "' --hessians '" + p.Hmapped + "' --hessian-map '" + (d / "bad.json") +
                     "' --bits 3" + out,
                 "invalid JSON");
    expect_error("gptq --weights '" + p.W + "' --hessians '" + p.Hmapped + "' --hessian-map '" + (d / "unknown.json") +
                     "' --bits 3" + out,
                 "no.such.weight");
    expect_error("gptq --weights '" + p.W + "' --hessians '" + p.H + "' --mask '" + (d / "badM.st") + "' --bits 3" + out,
                 "has no tensor 'blk.0.attn.wk'");
    expect_error("score --method tacq --weights '" + p.W + "' --contrast '" + p.W + "' --grads '" + p.H + "'" + out,
                 "is 40x40, the weight is 16x40");
    expect_error("inspect '" + (d / "bad.tcq") + "'", "bad.tcq");
    expect_error("unpack '" + (d / "missing.tcq") + "'" + out, "missing.tcq");
    // A mask value other than 0/1, in a file that has every tensor.
    {
        st::writer m;
        for (const auto& l : p.layers) {
            std::vector<std::uint8_t> v(static_cast<std::size_t>(l.rows * l.cols), 0);
            v[3] = 2;
            m.add(l.name, v, {l.rows, l.cols});
        }
        m.write(d / "badM2.st");
    }
    expect_error("gptq --weights '" + p.W + "' --hessians '" + p.H + "' --mask '" + (d / "badM2.st") + "' --bits 3" + out,
                 "is not 0 or 1");
    CHECK_FALSE(fs::exists(d / "o.st"));
}

#endif  // TCQ_CLI_PATH
