// report: `edgepipe report RUN.log.h5` prints a run log as a table with units and a verdict;
// `edgepipe report --compare A.log.h5 B.log.h5` puts two runs side by side with ratios B/A.
#pragma once
#include <ostream>
#include <string>

#include "edgepipe/records/runlog.h"

namespace edgepipe {

std::string report_text(const RunLogFile& log, const std::string& name);
std::string compare_text(const RunLogFile& a, const std::string& name_a, const RunLogFile& b,
                         const std::string& name_b);

// argv[1] == "report"; returns the exit code (errors are thrown as edgepipe::Error).
int run_report(int argc, const char* const argv[], std::ostream& out);

}  // namespace edgepipe
