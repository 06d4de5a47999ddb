// How an engine's own tensor type joins tcq without a copy: specialize
// tcq::tensor_adapter once, then pass tcq::as_view(tensor) to any kernel.
#include <tcq/tcq.hpp>

#include <cstdio>
#include <vector>

namespace myengine {
/// A made-up engine tensor: 2-D, float, with an explicit row pitch in bytes.
struct Tensor {
    float* data;
    int rows, cols;
    int pitch_bytes;
};
}  // namespace myengine

/// The one customization point: return a matrix_view over the tensor's memory.
template <>
struct tcq::tensor_adapter<myengine::Tensor> {
    static tcq::matrix_view<float> view(const myengine::Tensor& t) {
        tcq::require(t.pitch_bytes % static_cast<int>(sizeof(float)) == 0,
                     "myengine::Tensor: pitch ", t.pitch_bytes, " is not a multiple of 4");
        return {t.data, t.rows, t.cols, t.pitch_bytes / static_cast<tcq::index_t>(sizeof(float))};
    }
};

int main() {
    const int rows = 4, cols = 10, pitch = 16 * 4;  // rows padded to 16 floats
    std::vector<float> storage(rows * 16, 0.f);
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) storage[r * 16 + c] = 0.1f * static_cast<float>(c - r);
    myengine::Tensor t{storage.data(), rows, cols, pitch};

    auto w = tcq::as_view(t);  // no copy: same pointer, stride 16
    tcq::grid_spec spec;
    spec.bits = 2;
    const auto g = tcq::fit_grid(w, spec);
    tcq::fake_quantize(w, g);  // in place, inside the engine's own buffer
    std::printf("row 0 after 2-bit fake-quantization:");
    for (int c = 0; c < cols; ++c) std::printf(" %.3f", storage[c]);
    std::printf("\n");
}
