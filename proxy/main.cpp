// switchboard: a reverse proxy and load balancer for WebSocket services.
// argv → app::run() → exit code; everything else lives in switchboard_core.
#include "app/cli.h"

int main(int argc, char** argv) {
    return sb::app::run(argc, argv);
}
