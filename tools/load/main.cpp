// sb-load: a WebSocket load generator and test client for the benchmarks and the
// integration tests. argv → Options → one LoadRun on one uv loop → one JSON object on
// stdout → exit code (0 after a run, whatever its errors; 1 when it cannot run; 2 on
// bad usage). See `sb-load --help` and load/report.h for the output.
#include <uv.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "common/cli.h"
#include "common/handshake.h"
#include "load/client_context.h"
#include "load/load_run.h"
#include "load/options.h"
#include "load/report.h"

int main(int argc, char** argv) {
    sb::tools::Options options;
    if (int rc = sb::tools::parse_options(argc, argv, options); rc != 0) {
        return rc < 0 ? 0 : rc;
    }
    std::signal(SIGPIPE, SIG_IGN);  // a reset connection is an error to count, not a crash
    sb::tools::raise_descriptor_limit();
    // OpenSSL loads its providers on first use, which takes milliseconds: do it now,
    // not inside the first measured handshake.
    (void)sb::tools::accept_key("warm-up");

    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) return 1;
    int exit_code = 0;
    {
        sb::tools::ClientContext context(&loop);
        std::unique_ptr<sb::tools::TlsContext> tls;  // --tls; outlives the run's clients
        std::string error;
        if (!sb::tools::resolve(options.target.endpoint, context.address, error)) {
            std::fprintf(stderr, "sb-load: --url: %s\n", error.c_str());
            exit_code = 1;
        } else {
            context.host_header = options.target.host_header;
            context.path = options.target.path;
            context.message_size = options.size;
            context.connect_timeout_ns = static_cast<uint64_t>(options.connect_timeout * 1e9);
            if (options.tls) {
                sb::tools::TlsOptions tls_options{
                    options.tls_ca, options.tls_sni,
                    options.tls_version == "1.2" ? TLS1_2_VERSION : TLS1_3_VERSION};
                // Idle mode holds thousands of connections that carry nothing.
                tls = std::make_unique<sb::tools::TlsContext>(
                    tls_options, options.connections, options.mode == sb::tools::Mode::Idle);
                if (!tls->init(error)) {
                    std::fprintf(stderr, "sb-load: %s\n", error.c_str());
                    exit_code = 1;
                }
                context.tls = tls.get();
            }
        }
        if (exit_code == 0) {
            auto run = std::make_unique<sb::tools::LoadRun>(options, context);
            int rc = run->run();
            if (rc != 0) {
                std::fprintf(stderr, "sb-load: cannot start: %s\n", uv_strerror(rc));
                exit_code = 1;
            } else {
                std::string report = sb::tools::make_report(options, run->stats()).dump();
                std::printf("%s\n", report.c_str());
                std::fflush(stdout);
            }
        }
    }
    if (uv_loop_close(&loop) != 0) {
        std::fprintf(stderr, "sb-load: handles left open at exit\n");
        return 1;
    }
    return exit_code;
}
