// runlog_tables: the compound tables of the run log (docs/runlog.md) as HDF5 types: a stage's
// and rank 0's per-batch records, and the rows of /links. Shared by the log's writer and reader.
#pragma once
#include <cstdint>

#include "edgepipe/io/h5_attributes.h"
#include "edgepipe/records/metrics.h"
#include "edgepipe/records/trace.h"

namespace edgepipe {

// /ranks/<r>/batches of a stage rank (BatchRecord) and of rank 0 (DispatchRecord).
H5Id batch_record_type();
H5Id dispatch_record_type();

// One row of /links: link number, the job's ranks at its ends, its codec and totals.
struct LinkRow {
  int64_t link, from_rank, to_rank;
  char codec[sizeof(LinkCounters::codec)];
  double frames, bytes_raw, bytes_encoded, bytes_frames, ratio, time_encode, time_decode,
      time_error, error_max_rel, error_rel_l2;
};
H5Id link_row_type();

}  // namespace edgepipe
