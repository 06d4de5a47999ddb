// doctest main for tests run under mpiexec: every rank runs every case (the
// cases call collectives), rank 0 reports; the exit status is non-zero if any
// rank failed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <fstream>

#include "tcq/mpi/guard.hpp"

int main(int argc, char** argv) {
    return tcq::mpi::run_main(argc, argv, [&](tcq::mpi::communicator& comm) {
        doctest::Context ctx(argc, argv);
        std::ofstream null("/dev/null");
        if (comm.rank() != 0) ctx.setCout(&null);
        int rc = ctx.run();
        // Every rank's verdict: a failure on rank 2 must fail the run from rank 0's view too.
        std::int32_t bad = rc != 0;
        comm.allreduce_max(std::span<std::int32_t>(&bad, 1), "test verdict");
        if (bad && comm.rank() == 0 && rc == 0) std::fprintf(stderr, "tcq mpi tests: another rank failed\n");
        return bad ? 1 : 0;
    });
}
