// Downstream use of tcq: quantize a matrix and check the result is sane.
#include <tcq/tcq.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
    const tcq::index_t rows = 9, cols = 70;
    std::vector<float> w(rows * cols);
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.37f * static_cast<float>(i));
    tcq::grid_spec spec;
    spec.bits = 3;
    const auto g = tcq::fit_grid(tcq::make_view<const float>(w.data(), rows, cols), spec);
    std::vector<float> q(w.size());
    tcq::fake_quantize(tcq::make_view<const float>(w.data(), rows, cols), g, tcq::make_view(q.data(), rows, cols));
    double err = 0;
    for (std::size_t i = 0; i < w.size(); ++i) err += (w[i] - q[i]) * (w[i] - q[i]);
    std::printf("tcq %s consumer: rmse %.4f\n", tcq::version_string, std::sqrt(err / w.size()));
    return err > 0 && err / w.size() < 0.05 ? 0 : 1;
}
