// Host wrappers of tcq's CUDA kernels (see cuda_runner.hpp).
#include "cuda_runner.hpp"

#include <memory>
#include <vector>

#include "tcq/core/error.hpp"
#include "tcq/cuda/fake_quant.cuh"
#include "tcq/cuda/pack.cuh"

namespace tcq::cuda_runner {

namespace {

void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) fail("CUDA: ", what, " failed: ", cudaGetErrorString(e));
}

/// One device allocation, freed on scope exit.
template <class T>
class device_array {
public:
    explicit device_array(std::size_t n) : n_(n) {
        if (n_) check(cudaMalloc(reinterpret_cast<void**>(&p_), n_ * sizeof(T)), "cudaMalloc");
    }
    explicit device_array(std::span<const T> host) : device_array(host.size()) {
        if (n_) check(cudaMemcpy(p_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy to device");
    }
    device_array(const device_array&) = delete;
    device_array& operator=(const device_array&) = delete;
    ~device_array() {
        if (p_) cudaFree(p_);
    }
    void to_host(T* dst) const {
        if (n_) check(cudaMemcpy(dst, p_, n_ * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy to host");
    }
    T* get() const { return p_; }

private:
    T* p_ = nullptr;
    std::size_t n_ = 0;
};

/// The packed arrays on the device, and the view the kernels take.
struct device_packed {
    explicit device_packed(const host_packed& h)
        : codes(h.codes), scales(h.scales), zeros(h.zeros), g_idx(h.g_idx), values(h.values), low_cols(h.low_cols),
          bitmap(h.bitmap), skips(h.skips) {
        view.codes = codes.get();
        view.scales = scales.get();
        view.zeros = zeros.get();
        view.g_idx = h.act_order ? g_idx.get() : nullptr;
        view.values = h.values.empty() ? nullptr : values.get();
        view.low_cols = low_cols.get();
        view.bitmap = bitmap.get();
        view.skips = skips.get();
        view.rows = h.rows;
        view.cols = h.cols;
        view.groups = h.groups;
        view.group_size = h.group_size;
        view.bits = h.bits;
        view.act_order = h.act_order;
        view.bf16 = h.bf16;
    }
    device_array<std::uint8_t> codes;
    device_array<std::uint16_t> scales;
    device_array<std::uint8_t> zeros;
    device_array<std::uint16_t> g_idx;
    device_array<std::uint16_t> values;
    device_array<std::uint8_t> low_cols;
    device_array<std::uint64_t> bitmap;
    device_array<std::uint32_t> skips;
    cuda::packed_device_view view;
};

std::size_t count(index_t a, index_t b) { return static_cast<std::size_t>(a) * static_cast<std::size_t>(b); }

}  // namespace

bool device_available(std::string& why) {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        why = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(e);
        return false;
    }
    if (n == 0) {
        why = "no CUDA device";
        return false;
    }
    return true;
}

void fake_quantize(const float* W, index_t rows, index_t cols, std::span<const grid_param> params, index_t groups,
                   index_t group_cols, float maxq, float* out) {
    require(params.size() == count(rows, groups), "cuda_runner::fake_quantize: ", params.size(),
            " grid params, expected ", count(rows, groups));
    const device_array<float> dW(std::span<const float>(W, count(rows, cols)));
    const device_array<grid_param> dp(params);
    const device_array<float> dout(count(rows, cols));
    check(cuda::fake_quantize(dW.get(), cols, dout.get(), cols, rows, cols, dp.get(), groups, group_cols, maxq),
          "fake_quantize launch");
    check(cudaDeviceSynchronize(), "fake_quantize");
    dout.to_host(out);
}

void dequantize(const host_packed& W, float* out) {
    const device_packed d(W);
    const device_array<float> dout(count(W.rows, W.cols));
    check(cuda::dequantize(d.view, dout.get(), W.cols), "dequantize launch");
    check(cudaDeviceSynchronize(), "dequantize");
    dout.to_host(out);
}

void gemv_batch(const host_packed& W, const float* X, int n, float* Y) {
    require(n >= 1 && n <= cuda::max_vectors, "cuda_runner::gemv_batch: ", n, " vectors, expected 1..", cuda::max_vectors);
    const device_packed d(W);
    const device_array<float> dX(std::span<const float>(X, count(n, W.cols)));
    const device_array<float> dY(count(n, W.rows));
    check(cuda::gemv_batch(d.view, dX.get(), W.cols, dY.get(), W.rows, n), "gemv_batch launch");
    check(cudaDeviceSynchronize(), "gemv_batch");
    dY.to_host(Y);
}

void gemv_int8(const host_packed& W, const float* x, float* y) {
    require(!W.act_order && W.group_size % 64 == 0, "cuda_runner::gemv_int8: unsupported layout");
    const device_packed d(W);
    const index_t nb = (W.cols + 63) / 64, padded = nb * 64, kx = int8_xblock_codes(W.group_size);
    std::vector<float> xp(static_cast<std::size_t>(padded), 0.f);
    std::copy(x, x + W.cols, xp.begin());
    const device_array<float> dxf{std::span<const float>(xp)};
    const device_array<std::int8_t> dxq(static_cast<std::size_t>(padded));
    const device_array<float> dsx(static_cast<std::size_t>((nb + kx - 1) / kx));
    const std::vector<float> zeros(static_cast<std::size_t>((W.groups + 15) / 16 * 16), 0.f);
    const device_array<float> dxz{std::span<const float>(zeros)};
    const device_array<float> dy(static_cast<std::size_t>(W.rows));
    cuda::int8_device_activations a;
    a.xq = dxq.get();
    a.sx = dsx.get();
    a.xz = dxz.get();
    a.xf = dxf.get();
    check(cuda::gemv_int8(d.view, a, dy.get()), "gemv_int8 launch");
    check(cudaDeviceSynchronize(), "gemv_int8");
    dy.to_host(y);
}

namespace {

/// Mean seconds of `iters` calls of launch(i), timed with CUDA events.
template <class F>
double time_launches(int iters, F&& launch) {
    cudaEvent_t t0, t1;
    check(cudaEventCreate(&t0), "cudaEventCreate");
    check(cudaEventCreate(&t1), "cudaEventCreate");
    launch(0);  // warm-up
    check(cudaEventRecord(t0), "cudaEventRecord");
    for (int i = 0; i < iters; ++i) launch(i);
    check(cudaEventRecord(t1), "cudaEventRecord");
    check(cudaEventSynchronize(t1), "timed launches");
    float ms = 0.f;
    check(cudaEventElapsedTime(&ms, t0, t1), "cudaEventElapsedTime");
    cudaEventDestroy(t0);
    cudaEventDestroy(t1);
    return static_cast<double>(ms) * 1e-3 / iters;
}

}  // namespace

double gemv_seconds(const host_packed& W, int iters, int copies) {
    require(iters > 0 && copies > 0, "cuda_runner::gemv_seconds: iters ", iters, " and copies ", copies,
            " must be positive");
    std::vector<std::unique_ptr<device_packed>> d;
    for (int i = 0; i < copies; ++i) d.push_back(std::make_unique<device_packed>(W));
    const std::vector<float> x(static_cast<std::size_t>(W.cols), 1.f);
    const device_array<float> dx{std::span<const float>(x)};
    const device_array<float> dy(static_cast<std::size_t>(W.rows));
    return time_launches(iters, [&](int i) {
        check(cuda::gemv(d[static_cast<std::size_t>(i % copies)]->view, dx.get(), dy.get()), "gemv launch");
    });
}

double copy_seconds(std::size_t bytes, int iters) {
    require(iters > 0, "cuda_runner::copy_seconds: iters ", iters, " must be positive");
    const device_array<std::uint8_t> a(bytes), b(bytes);
    return time_launches(iters, [&](int) {
        check(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice), "cudaMemcpyAsync");
    });
}

}  // namespace tcq::cuda_runner
