#include "edgepipe/records/runlog_tables.h"

#include <cstddef>
#include <vector>

namespace edgepipe {

H5Id batch_record_type() {
  return h5_compound_type(
      sizeof(BatchRecord),
      {
          {"seq", offsetof(BatchRecord, seq), true},
          {"t_begin_s", offsetof(BatchRecord, t_begin), false},
          {"t_end_s", offsetof(BatchRecord, t_end), false},
          {"time_recv_wait_s", offsetof(BatchRecord, time_recv_wait), false},
          {"time_decode_s", offsetof(BatchRecord, time_decode), false},
          {"time_compute_s", offsetof(BatchRecord, time_compute), false},
          {"time_send_wait_s", offsetof(BatchRecord, time_send_wait), false},
          {"time_encode_s", offsetof(BatchRecord, time_encode), false},
          {"time_compute_wait_s", offsetof(BatchRecord, time_compute_wait), false},
          {"time_probe_s", offsetof(BatchRecord, time_probe), false},
          {"time_other_s", offsetof(BatchRecord, time_other), false},
          {"bytes_in", offsetof(BatchRecord, bytes_in), false},
          {"bytes_out", offsetof(BatchRecord, bytes_out), false},
      });
}

H5Id dispatch_record_type() {
  return h5_compound_type(sizeof(DispatchRecord),
                          {
                              {"seq", offsetof(DispatchRecord, seq), true},
                              {"t_sent_s", offsetof(DispatchRecord, t_sent), false},
                              {"t_arrived_s", offsetof(DispatchRecord, t_arrived), false},
                              {"time_read_s", offsetof(DispatchRecord, time_read), false},
                              {"time_encode_s", offsetof(DispatchRecord, time_encode), false},
                              {"time_decode_s", offsetof(DispatchRecord, time_decode), false},
                              {"time_write_s", offsetof(DispatchRecord, time_write), false},
                              {"bytes_out", offsetof(DispatchRecord, bytes_out), false},
                              {"bytes_in", offsetof(DispatchRecord, bytes_in), false},
                          });
}

H5Id link_row_type() {
  H5Id t = h5_compound_type(sizeof(LinkRow), {{"link", offsetof(LinkRow, link), true},
                                              {"from_rank", offsetof(LinkRow, from_rank), true},
                                              {"to_rank", offsetof(LinkRow, to_rank), true}});
  h5_insert_text_member(t, "codec", offsetof(LinkRow, codec), sizeof(LinkRow::codec));
  const std::vector<H5Field> rest = {{"frames", offsetof(LinkRow, frames), false},
                                     {"bytes_raw", offsetof(LinkRow, bytes_raw), false},
                                     {"bytes_encoded", offsetof(LinkRow, bytes_encoded), false},
                                     {"bytes_frames", offsetof(LinkRow, bytes_frames), false},
                                     {"ratio", offsetof(LinkRow, ratio), false},
                                     {"time_encode_s", offsetof(LinkRow, time_encode), false},
                                     {"time_decode_s", offsetof(LinkRow, time_decode), false},
                                     {"time_error_s", offsetof(LinkRow, time_error), false},
                                     {"error_max_rel", offsetof(LinkRow, error_max_rel), false},
                                     {"error_rel_l2", offsetof(LinkRow, error_rel_l2), false}};
  for (const H5Field& f : rest)
    h5_check(H5Tinsert(t.get(), f.name, f.offset, H5T_NATIVE_DOUBLE), f.name);
  return t;
}

}  // namespace edgepipe
