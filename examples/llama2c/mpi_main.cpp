// tcq-llama2c-mpi: `quantize` data-parallel under mpirun. Rank r calibrates
// on its contiguous whole chunks of the calibration windows; partial sums are
// combined over the fixed chunk tree (docs/distributed.md), so the tcq file
// that rank 0 writes is byte-identical for any rank count (same
// --sample-chunk). Progress and results come from rank 0 only.
//   mpirun -np 2 tcq-llama2c-mpi quantize --model M --calib F --out OUT [...]
// Exit codes: 0 ok, 1 failure (every rank, naming the failing rank), 2 usage.

#include <chrono>
#include <optional>
#include <cstdio>
#include <string>
#include <vector>

#include "cli.hpp"
#include "l2c.hpp"
#include "quant_cli.hpp"
#include "tcq/mpi/data_parallel.hpp"
#include "tcq/mpi/guard.hpp"
#include "tcq_adapter.hpp"
#include "tcq_file.hpp"

namespace {

using l2c::cli::option;
using l2c::cli::parsed;
using l2c::cli::usage_error;
using tcq::index_t;

std::vector<option> with(std::vector<option> a, const std::vector<option>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

const l2c::cli::command quantize_cmd{
    "quantize",
    "data-parallel quantize (TaCQ by default); rank 0 writes the tcq file",
    with(l2c::quant_cli::quant_flags,
         {{"sample-chunk", "N", "windows per accumulation chunk, even (default 8); the result depends on it, "
                                "never on the rank count"},
          {"method", "NAME", "rtn, gptq, tacq, spqr, magnitude, fisher, grad_delta, wanda, random (default tacq)"},
          {"bits", "B", "base bit width (default 3)"},
          {"out", "FILE", "tcq file to write (rank 0)", false, true}}),
    nullptr};

int quantize(tcq::mpi::communicator& comm, const parsed& p) {
    const bool lead = comm.rank() == 0;
    const auto t0 = std::chrono::steady_clock::now();
    const auto pol = l2c::quant_cli::policy(p);
    const auto chunk = p.integer("sample-chunk", 8, 1, 1 << 20);
    // Chunks of stacked sequences in the engine (l2c::seqs_per_chunk) must not straddle ranks.
    if (chunk % l2c::seqs_per_chunk) throw usage_error("--sample-chunk must be a multiple of 2");
    auto o = l2c::quant_cli::quant_options(p, tcq::parse_quant_method(p.value_or("method", "tacq")),
                                          static_cast<int>(p.integer("bits", 3, 1, 8)), pol);
    // Bytes this rank moved, attributed to the phase named by the last progress line.
    std::vector<std::pair<std::string, std::uint64_t>> phase_bytes{{"setup", 0}};
    std::uint64_t mark = 0;
    o.progress = [&](const std::string& s) {
        const std::string phase = s.substr(0, s.find(':'));
        phase_bytes.back().second += comm.bytes_moved() - mark;
        mark = comm.bytes_moved();
        if (phase != phase_bytes.back().first) phase_bytes.push_back({phase, 0});
        if (lead) std::fprintf(stderr, "[tcq] %s\n", s.c_str());
    };

    std::optional<l2c::model> m;
    l2c::token_batch mine;
    std::optional<tcq::mpi::data_parallel> dp;
    tcq::mpi::run_phase(comm, "load", [&] {
        m.emplace(l2c::load_checkpoint(*p.value("model")));
        const auto texts = l2c::quant_cli::calibration_texts(p);
        const auto all = l2c::quant_cli::calibration(p, texts, l2c::quant_cli::single_seed(p));
        const index_t n = all.count;
        dp.emplace(comm, n, chunk);
        const auto [s0, s1] = dp->samples();
        mine = l2c::token_batch(s1 - s0, all.length);
        for (index_t s = s0; s < s1; ++s) std::copy(all.row(s).begin(), all.row(s).end(), mine.row(s - s0).begin());
    });
    o.sample_chunk = chunk;
    o.dist = &*dp;
    tcq::pipeline_result r;
    tcq::mpi::run_phase(comm, "quantize", [&] {
        l2c::tcq_adapter ad(*m, mine, pol, l2c::quant_cli::true_sequential(p));
        tcq::pipeline pipe(ad);
        r = pipe.run(o);
    });
    double bpw = 0;
    tcq::mpi::run_phase(comm, "write", [&] {
        if (!lead) return;
        tcq::file_metadata meta;
        meta.calibration = std::to_string(dp->total_samples()) + " windows of 256 tokens from";
        for (const auto& f : p.values("calib")) meta.calibration += " " + f;
        meta.calibration += ", seed " + p.value_or("seed", "0") + ", chunks of " + std::to_string(chunk);
        bpw = l2c::save_tcq(r, meta, *p.value("out"), pol);
    });
    if (!lead) return 0;
    std::printf("%s at %d bits on %d ranks: %.4f bits/weight, %lld 16-bit weights\n",
                std::string(tcq::display_name(o.method)).c_str(), o.gptq.grid.bits, comm.size(), bpw,
                static_cast<long long>(r.kept));
    std::printf("time (rank 0): gradients %.2fs, contrast %.2fs, scores %.2fs, selection %.2fs, final %.2fs, "
                "total %.2fs\n",
                r.seconds_gradients, r.seconds_contrast, r.seconds_scores, r.seconds_select, r.seconds_final,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    phase_bytes.back().second += comm.bytes_moved() - mark;
    std::printf("communication (rank 0, sent + received): %llu collectives, %.3f MB:",
                static_cast<unsigned long long>(comm.collectives()), static_cast<double>(comm.bytes_moved()) / 1e6);
    for (const auto& [ph, b] : phase_bytes)
        if (b) std::printf(" %s %.3f MB;", ph.c_str(), static_cast<double>(b) / 1e6);
    std::printf("\n");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return tcq::mpi::run_main(argc, argv, [&](tcq::mpi::communicator& comm) {
        const bool lead = comm.rank() == 0;
        if (argc < 2 || std::string_view(argv[1]) != "quantize") {
            if (lead) std::fputs(l2c::cli::usage(quantize_cmd).c_str(), stderr);
            return 2;
        }
        try {
            return quantize(comm, l2c::cli::parse(quantize_cmd, argc, argv, 2));
        } catch (const usage_error& e) {
            // Every rank parses the same argv, so every rank gets here.
            if (lead) std::fprintf(stderr, "tcq-llama2c-mpi quantize: %s\n\n%s", e.what(), l2c::cli::usage(quantize_cmd).c_str());
            return 2;
        }
    });
}
