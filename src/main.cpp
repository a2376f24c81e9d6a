#include "edgepipe/cli/cli.h"

int main(int argc, char** argv) { return edgepipe::cli_main(argc, argv); }
