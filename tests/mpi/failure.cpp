// A job whose rank F fails; run by tests/mpi.cmake under mpiexec, which
// checks that every rank exits non-zero and names rank F and the cause.
//   mpi_failure throw F   rank F throws inside a phase
//   mpi_failure nan F     rank F meets a NaN gradient
//   mpi_failure escape F  rank F throws outside any phase (MPI_Abort path)
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "tcq/mpi/guard.hpp"
#include "tcq/saliency/accumulator.hpp"

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "throw";
    const int F = argc > 2 ? std::atoi(argv[2]) : 1;
    return tcq::mpi::run_main(argc, argv, [&](tcq::mpi::communicator& comm) {
        std::vector<float> g(12, 0.5f);
        if (comm.rank() == F && mode == "nan") g[7] = NAN;
        if (comm.rank() == F && mode == "escape") throw tcq::error("injected failure outside a phase");
        tcq::mpi::run_phase(comm, "gradients", [&] {
            if (comm.rank() == F && mode == "throw") throw tcq::error("injected failure");
            tcq::grad_accumulator acc(3, 4, tcq::grad_stats::abs_sum, "layers.0.wq");
            acc.add({g.data(), 3, 4});
            std::int64_t n = acc.samples();
            comm.allreduce_sum(std::span<std::int64_t>(&n, 1), "sample count");
        });
        return 0;
    });
}
