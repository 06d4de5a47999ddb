// libFuzzer target: arbitrary bytes → safetensors reader.
// Contract: the reader either throws tcq::error or yields a file whose every
// accessor stays in bounds and which the writer reproduces exactly. Any other
// exception, sanitizer report or trap is a finding.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tcq/io/safetensors.hpp"

namespace st = tcq::safetensors;

namespace {

void check(bool ok) {
    if (!ok) __builtin_trap();
}

void exercise(const st::reader& r) {
    st::writer w;
    for (const auto& t : r.tensors()) {
        const auto b = r.bytes(t.name);
        check(b.size() == static_cast<std::size_t>(t.numel()) * st::dtype_size(t.type));
        // Touch every byte so ASan sees any out-of-range span.
        unsigned sum = 0;
        for (std::byte x : b) sum += static_cast<unsigned>(x);
        (void)sum;
        try {
            switch (t.type) {
                case st::dtype::F32:
                case st::dtype::F64:
                case st::dtype::F16:
                case st::dtype::BF16:
                    (void)r.to_float(t.name);
                    (void)r.to_double(t.name);
                    break;
                case st::dtype::BOOL:
                case st::dtype::U8:
                    (void)r.read_mask(t.name);
                    break;
                default:
                    break;
            }
            if (t.type == st::dtype::F32) (void)r.view<float>(t.name);
        } catch (const tcq::error&) {
            // Documented rejections: rank > 2, misaligned view, mask bytes > 1, F64 overflow.
        }
        w.add(t.name, t.type, t.shape, b);
    }
    for (const auto& [k, v] : r.metadata()) w.set_metadata(k, v);

    // Whatever the reader accepts, the writer must re-emit as a file the reader
    // accepts with identical content, and re-emission must be a fixed point.
    const auto again = w.serialize();
    const auto r2 = st::reader::from_memory(again, "fuzz-rewrite");
    check(r2.tensors().size() == r.tensors().size());
    check(r2.metadata() == r.metadata());
    for (const auto& t : r.tensors()) {
        const auto& u = r2.info(t.name);
        check(u.type == t.type && u.shape == t.shape);
        const auto a = r.bytes(t.name), b = r2.bytes(t.name);
        check(a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        const auto r = st::reader::from_memory({reinterpret_cast<const std::byte*>(data), size}, "fuzz");
        exercise(r);
    } catch (const tcq::error&) {
    }
    return 0;
}
