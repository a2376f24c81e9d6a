// cli: the `edgepipe` command: parse, set up threads and MPI, run a command, turn errors into
// an exit status. main() only calls cli_main.
#pragma once

namespace edgepipe {

int cli_main(int argc, char** argv);

}  // namespace edgepipe
