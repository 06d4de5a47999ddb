#pragma once
/// @file guard.hpp
/// @brief Failure propagation: a phase either completes on every rank or
/// throws on every rank, naming the failing rank and its cause
/// (docs/distributed.md, "Failures").
///
/// run_phase catches what the phase throws on this rank and ends with a phase
/// agreement carrying the failure. A rank that failed early enters that
/// agreement while the others are still inside the phase: their next
/// agreement pairs with it (same MPI call, same shape), sees the failure and
/// throws collective_error, so nobody waits for a collective that will never
/// come. run_main maps the outcome to an exit status, and calls MPI_Abort as
/// the last resort for an error that escaped every phase.

#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include "tcq/mpi/communicator.hpp"

namespace tcq::mpi {

/// Runs f() on every rank as the phase `name`; throws collective_error on
/// every rank if f threw on any ("rank R failed: phase 'name': cause").
template <class F>
void run_phase(communicator& comm, std::string_view name, F&& f) {
    std::string cause;
    try {
        f();
    } catch (const collective_error&) {
        throw;  // every rank already knows: no further agreement
    } catch (const std::exception& e) {
        cause = detail::cat("phase '", name, "': ", e.what());
    } catch (...) {
        cause = detail::cat("phase '", name, "': unknown exception");
    }
    comm.agree(op::phase, 0, 0, 0, name, cause);
}

/// Runs body(comm) under an MPI environment and a world communicator; returns
/// the process exit status: 0, or 1 after printing "tcq: rank r: <message>"
/// to stderr when a collective failure reached every rank. Any other
/// exception (thrown outside run_phase, so other ranks may be waiting) is
/// printed and ends the whole job through MPI_Abort.
template <class Body>
int run_main(int& argc, char**& argv, Body&& body) {
    std::optional<environment> env;
    std::optional<communicator> comm;
    try {
        env.emplace(argc, argv);
        comm.emplace();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tcq: error: %s\n", e.what());
        return 1;
    }
    // Catch inside the scope of env and comm: their destructors are
    // collective and must not run while other ranks may still wait.
    try {
        return body(*comm);
    } catch (const collective_error& e) {
        std::fprintf(stderr, "tcq: rank %d: error: %s\n", comm->rank(), e.what());
        std::fflush(stderr);
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tcq: rank %d: error outside a checked phase, aborting the job: %s\n", comm->rank(),
                     e.what());
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, 1);
        return 1;
    }
}

}  // namespace tcq::mpi
