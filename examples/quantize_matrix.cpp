// Quantize a random correlated matrix at 2, 3 and 4 bits, per row and with
// groups of 128, and print the error and the exact bits per weight.
#include <tcq/tcq.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

int main(int argc, char** argv) {
    const tcq::index_t rows = argc > 1 ? std::atol(argv[1]) : 1024, cols = argc > 2 ? std::atol(argv[2]) : 1024;
    std::mt19937 gen(42);
    std::normal_distribution<float> nd(0.f, 0.02f);
    std::vector<float> w(static_cast<std::size_t>(rows * cols));
    for (auto& x : w) x = nd(gen);
    const auto W = tcq::make_view<const float>(w.data(), rows, cols);
    std::vector<float> q(w.size());

    std::printf("| bits | group | rmse | rel. error | bits/weight | fit time (s) |\n|---|---|---|---|---|---|\n");
    for (int bits : {2, 3, 4})
        for (tcq::index_t group : {tcq::index_t{0}, tcq::index_t{128}}) {
            tcq::grid_spec spec;
            spec.bits = bits;
            spec.group_size = group;
            spec.fp16_scale = true;  // what the packed format stores
            const auto t0 = std::chrono::steady_clock::now();
            const auto g = tcq::fit_grid(W, spec, tcq::par());
            const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            tcq::fake_quantize(W, g, tcq::make_view(q.data(), rows, cols), tcq::par());
            double se = 0, ss = 0;
            for (std::size_t i = 0; i < w.size(); ++i) {
                se += double(w[i] - q[i]) * (w[i] - q[i]);
                ss += double(w[i]) * w[i];
            }
            const double total = static_cast<double>(tcq::cost::code_bits(rows, cols, bits) +
                                                     tcq::cost::stat_bits(rows, spec.groups(cols)));
            std::printf("| %d | %s | %.5f | %.4f | %.4f | %.3f |\n", bits, group ? "128" : "row",
                        std::sqrt(se / w.size()), std::sqrt(se / ss), total / static_cast<double>(w.size()), secs);
        }
}
