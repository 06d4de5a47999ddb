// Downstream use of tcq::mpi: a one-rank (or mpiexec) job that agrees on a sum.
#include <tcq/mpi/guard.hpp>

#include <cstdio>

int main(int argc, char** argv) {
    return tcq::mpi::run_main(argc, argv, [](tcq::mpi::communicator& comm) {
        std::int64_t one = 1;
        comm.allreduce_sum(std::span<std::int64_t>(&one, 1), "consumer sum");
        std::printf("tcq::mpi consumer: %lld of %d ranks\n", static_cast<long long>(one), comm.size());
        return one == comm.size() ? 0 : 1;
    });
}
